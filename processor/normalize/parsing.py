"""Parsing helpers the normalizers share; each failure is an `Invalid` with its dead-letter reason."""

from __future__ import annotations

from typing import Any

import orjson

from processor.records import Invalid, RawRecord

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
