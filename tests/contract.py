"""The published contract, checked as a consumer would check it: against the checked-in files
(`schemas/`, `asyncapi.yaml`), read with `jsonschema`, not against the code that generated them."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import orjson
import yaml
from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator

from processor.normalize import SCHEMAS

ROOT = Path(__file__).parents[1]
SCHEMAS_DIR = ROOT / "schemas"
ASYNCAPI = ROOT / "asyncapi.yaml"
ENVELOPE = "cloudevent.json"
_URN = re.compile(r"urn:hookstream:schema:(?P<name>[A-Za-z0-9._-]+):v(?P<version>[0-9]+)")
_BY_URN = {schema.urn: schema for schema in SCHEMAS}
_OWN_TYPES = {schema.name for schema in SCHEMAS if not schema.parameters}


@functools.cache
def schema_document(file_name: str) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads((SCHEMAS_DIR / file_name).read_bytes())
    Draft202012Validator.check_schema(document)
    return document


@functools.cache
def validator(file_name: str) -> Validator:
    return Draft202012Validator(schema_document(file_name))


@functools.cache
def asyncapi_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(ASYNCAPI.read_text())
    return document


def errors(validator_: Validator, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:200]}"
        for e in validator_.iter_errors(instance)
    ]


def assert_publishable(document: dict[str, Any]) -> None:
    """`document` (a published CloudEvent) validates against the envelope and the data schema its
    `dataschema` names, declares only attributes the envelope lists, and names the schema of its type."""
    assert not errors(validator(ENVELOPE), document), errors(validator(ENVELOPE), document)
    undeclared = set(document) - set(schema_document(ENVELOPE)["properties"])
    assert not undeclared, f"attributes the envelope schema does not declare: {undeclared}"
    match = _URN.fullmatch(document["dataschema"])
    assert match is not None
    data_errors = errors(validator(f"{match['name']}.v{match['version']}.json"), document["data"])
    assert not data_errors, (document["type"], data_errors)
    schema = _BY_URN[document["dataschema"]]
    if schema.parameters:
        assert document["type"] not in _OWN_TYPES, "a type with a schema of its own uses its family's"
    else:
        assert document["type"] == schema.name


def dead_letter_headers_errors(headers: dict[str, str]) -> list[str]:
    """What is wrong with a dead letter's headers, by asyncapi.yaml's `deadLetterHeaders`."""
    schema = asyncapi_document()["components"]["schemas"]["deadLetterHeaders"]
    return errors(Draft202012Validator(schema), headers)
