"""The consumer contract of an event's `data` (SPEC §10), declared beside the normalizer that makes it.

Each normalizer module declares a `DataSchema` per event type it emits (or per family, where the type has
a variable part) and stamps its URN on every event as `dataschema`; `hookstream schemas` writes them to
`schemas/<name>.v<N>.json`. A schema states what the normalizer relies on and so guarantees, typed, and
lets every other field of the provider through (`additionalProperties: true`): providers add fields, and
a consumer must not break when they do. Fields hookstream passes through without checking are described
but not typed, because a type the normalizer does not enforce would be a promise it cannot keep.

Changing a published schema in a way that breaks a reader (a field removed, retyped or newly required)
needs a new `version`; `hookstream schemas --check` refuses it otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
DIALECT = "https://json-schema.org/draft/2020-12/schema"
URN_PREFIX = "urn:hookstream:schema:"
_PARAMETER = re.compile(r"\{([A-Za-z]+)\}")


@dataclass(frozen=True, slots=True)
class DataSchema:
    """The schema of `data` for one event type, or for a family of types (`type_template` with
    `{parameters}`, e.g. `com.websitetoolbox.{forumType}`)."""

    name: str
    version: int
    description: str
    body: JSON
    type_template: str = ""
    parameters: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.version < 1 or not re.fullmatch(r"[A-Za-z0-9._-]+", self.name):
            raise ValueError(
                f"schema {self.name!r} v{self.version}: a name of [A-Za-z0-9._-] and a version ≥ 1"
            )
        if set(_PARAMETER.findall(self.event_type)) != set(self.parameters):
            raise ValueError(f"schema {self.name!r}: its type template and parameters disagree")

    @property
    def urn(self) -> str:
        return f"{URN_PREFIX}{self.name}:v{self.version}"

    @property
    def file_name(self) -> str:
        return f"{self.name}.v{self.version}.json"

    @property
    def event_type(self) -> str:
        """The event type this schema describes, or its families' template."""
        return self.type_template or self.name

    def document(self) -> JSON:
        """The JSON Schema 2020-12 document as it is published (its description is the schema's own)."""
        body = {key: value for key, value in self.body.items() if key != "description"}
        return {
            "$schema": DIALECT,
            "$id": self.urn,
            "title": self.name,
            "description": self.description,
            **body,
        }


def object_schema(description: str, properties: Mapping[str, JSON] | None = None, *required: str) -> JSON:
    """A JSON object with these properties (those named in `required` always present), others allowed."""
    schema: JSON = {"type": "object", "description": description}
    if properties:
        schema["properties"] = dict(properties)
    if required:
        schema["required"] = list(required)
    schema["additionalProperties"] = True
    return schema


def id_field(description: str) -> JSON:
    """An id as the normalizers accept one: a string with a non-space character, or an integer."""
    return {"type": ["string", "integer"], "pattern": r"\S", "description": description}


def text(description: str, *, non_blank: bool = False) -> JSON:
    return {"type": "string", "description": description} | ({"pattern": r"\S"} if non_blank else {})


def passed_through(description: str) -> JSON:
    """A provider field hookstream reads where it can but does not check: any JSON value."""
    return {"description": description}


ABSENT: JSON = {"not": {}, "description": "never present: hookstream removes it"}
