"""The registry of normalizers: `hs-source` → `normalize(raw) -> Normalized`, and of the schemas of the
events they emit. Adding a sender is a module here and a line in `NORMALIZERS` and in `SCHEMAS`."""

from __future__ import annotations

from collections.abc import Callable

from processor.normalize import hootsuite, standard, website_toolbox, x
from processor.normalize.schema import DataSchema
from processor.records import Invalid, Normalized, RawRecord

Normalizer = Callable[[RawRecord], Normalized]

NORMALIZERS: dict[str, Normalizer] = {
    website_toolbox.NAME: website_toolbox.normalize,
    x.NAME: x.normalize,
    hootsuite.NAME: hootsuite.normalize,
    standard.NAME: standard.normalize,
}
SCHEMAS: tuple[DataSchema, ...] = (
    *website_toolbox.SCHEMAS,
    *x.SCHEMAS,
    *hootsuite.SCHEMAS,
    *standard.SCHEMAS,
)

UNKNOWN_SOURCE = "unknown_source"


def normalize(raw: RawRecord) -> Normalized:
    """Dispatch on the record's `hs-source` header; raises Invalid for anything that is not an event."""
    source = raw.source
    normalizer = NORMALIZERS.get(source or "")
    if normalizer is None:
        raise Invalid(UNKNOWN_SOURCE, f"no normalizer for hs-source {source!r}")
    return normalizer(raw)
