"""The Hootsuite callback body, form-urlencoded or JSON, read the same way by receivers and processor.

The receiver verifies the SSO fields it reads here and the processor normalizes the fields it reads here:
one parser, so both sides always see the same values.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson

JSON = "json"
FORM = "form"


class UnreadableBody(ValueError):
    """Neither a JSON object nor a form: `kind` says which parse was attempted."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def body_kind(body: bytes, content_type: str | None) -> str:
    """JSON or form, by content type, else by the first byte (Hootsuite's own sample sends forms)."""
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        if media.endswith(("/json", "+json")):
            return JSON
        if media == "application/x-www-form-urlencoded":
            return FORM
    return JSON if body.lstrip()[:1] == b"{" else FORM


def parse_fields(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The body's top-level fields. A form field given twice keeps its first value."""
    kind = body_kind(body, content_type)
    if kind == JSON:
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UnreadableBody(JSON, str(exc)) from None
        if not isinstance(value, dict):
            raise UnreadableBody(JSON, f"expected a JSON object, got {type(value).__name__}")
        return value
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body.strip()))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnreadableBody(FORM, str(exc)) from None
    fields: dict[str, Any] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def text_field(fields: dict[str, Any], name: str) -> str | None:
    """A field as text: strings as they are, integers in decimal; anything else is absent."""
    value = fields.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)
