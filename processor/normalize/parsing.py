"""Parsing helpers the normalizers share; each failure is an `Invalid` with its dead-letter reason."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson

from processor.records import Invalid, RawRecord
from processor.timefmt import from_datetime, from_epoch_ms

INVALID_JSON = "invalid_json"
INVALID_FORM = "invalid_form"
SCHEMA = "schema"
MISSING_ID = "missing_id"


def json_value(raw: RawRecord) -> Any:
    try:
        return orjson.loads(raw.value)
    except orjson.JSONDecodeError as exc:
        raise Invalid(INVALID_JSON, str(exc)) from None


def json_object(raw: RawRecord) -> dict[str, Any]:
    value = json_value(raw)
    if not isinstance(value, dict):
        raise Invalid(SCHEMA, f"expected a JSON object, got {type(value).__name__}")
    return value


def field(mapping: dict[str, Any], name: str, kind: type | tuple[type, ...], *, reason: str = SCHEMA) -> Any:
    """`mapping[name]` if it is present and of `kind`, else Invalid(reason)."""
    value = mapping.get(name)
    if value is None:
        raise Invalid(reason, f"{name!r} is missing")
    if not isinstance(value, kind) or isinstance(value, bool):
        raise Invalid(reason, f"{name!r} has the wrong type ({type(value).__name__})")
    return value


def identifier(mapping: dict[str, Any], name: str) -> str:
    """An id field: a non-empty string or an integer, as text; missing_id otherwise."""
    value = field(mapping, name, (str, int), reason=MISSING_ID)
    text = str(value).strip()
    if not text:
        raise Invalid(MISSING_ID, f"{name!r} is empty")
    return text


def optional_identifier(value: Any, *names: str) -> str | None:
    """The first of `names` in `value` (if it is an object) that is a non-empty string or an integer."""
    if not isinstance(value, dict):
        return None
    for name in names:
        candidate = value.get(name)
        if isinstance(candidate, str | int) and not isinstance(candidate, bool) and str(candidate).strip():
            return str(candidate).strip()
    return None


def content_hash(value: Any) -> str:
    """An id for an object that carries none: it stays the same when the sender delivers it again.
    The first 24 hex digits of SHA-256 over its JSON with sorted keys."""
    try:
        encoded = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:  # nested deeper than orjson writes
        raise Invalid(SCHEMA, f"cannot hash the content: {exc}") from None
    return hashlib.sha256(encoded).hexdigest()[:24]


def event_time(moment: datetime | None, raw: RawRecord) -> str:
    """The provider's own time of the event where it has one, else when we received it (SPEC §2)."""
    return from_epoch_ms(raw.received_at_ms) if moment is None else from_datetime(moment)
