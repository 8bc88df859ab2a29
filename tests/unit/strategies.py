"""Hypothesis strategies the normalizer tests share, and the one way they judge an outcome."""

from __future__ import annotations

from collections.abc import Collection

from hypothesis import strategies as st

from processor.normalize import normalize
from processor.records import Invalid, Normalized, RawRecord

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def normalized_unless_dead_letter(raw: RawRecord, reasons: Collection[str]) -> Normalized | None:
    """What `raw` normalizes to; None when it is a dead letter, whose reason must be one of `reasons`."""
    try:
        return normalize(raw)
    except Invalid as invalid:
        reason = invalid.reason
    assert reason in reasons
    return None
