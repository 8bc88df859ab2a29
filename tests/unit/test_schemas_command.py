"""`hookstream schemas [--check]`: the checked-in contract matches the code; a stale file or a change that
breaks a published schema without a new version fails."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from hookstream.cli import main
from processor.contract.files import breaking_changes, run
from processor.normalize import SCHEMAS
from processor.normalize.schema import DataSchema
from processor.normalize.x import POST_MATCHED
from tests.contract import ROOT

OTHERS = tuple(schema for schema in SCHEMAS if schema is not POST_MATCHED)


def _post_matched(change: Any, *, version: int = 1) -> tuple[DataSchema, ...]:
    """The schemas with `change` applied to a copy of com.x.post.matched's body."""
    body = copy.deepcopy(POST_MATCHED.body)
    change(body)
    return (*OTHERS, dataclasses.replace(POST_MATCHED, body=body, version=version))


@pytest.fixture
def published(tmp_path: Path) -> Path:
    assert run(tmp_path, check=False) == 0
    return tmp_path


def test_the_checked_in_contract_matches_the_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "--check", "--root", str(ROOT)]) == 0
    assert capsys.readouterr().out.startswith(f"ok: {len(SCHEMAS)} data schemas")


def test_a_missing_or_edited_file_is_stale_until_written_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, check=True) == 1
    assert not (tmp_path / "asyncapi.yaml").exists(), "--check writes nothing"
    assert run(tmp_path, check=False) == 0
    assert run(tmp_path, check=True) == 0
    edited = tmp_path / "schemas" / POST_MATCHED.file_name
    edited.write_text(edited.read_text().replace("the post", "a post"))
    capsys.readouterr()
    assert run(tmp_path, check=True) == 1
    assert capsys.readouterr().out == f"stale: schemas/{POST_MATCHED.file_name} (run `hookstream schemas`)\n"
    assert main(["schemas", "--root", str(tmp_path)]) == 0
    assert run(tmp_path, check=True) == 0


def _remove_rules(body: dict[str, Any]) -> None:
    del body["properties"]["matching_rules"]
    body["required"].remove("matching_rules")


def _retype_id(body: dict[str, Any]) -> None:
    body["properties"]["data"]["properties"]["id"]["type"] = "string"


def _require_includes(body: dict[str, Any]) -> None:
    body["required"].append("includes")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_remove_rules, "data.matching_rules removed"),
        (
            _retype_id,
            'data.data.id retyped (type ["string","integer"], pattern "\\\\S" → type "string", pattern',
        ),
        (_require_includes, "data.includes newly required"),
    ],
)
def test_a_breaking_change_fails_unless_the_version_is_bumped(
    published: Path, capsys: pytest.CaptureFixture[str], change: Any, problem: str
) -> None:
    before = (published / "schemas" / POST_MATCHED.file_name).read_bytes()
    capsys.readouterr()
    assert run(published, check=True, schemas=_post_matched(change)) == 1
    out = capsys.readouterr().out
    assert f"breaking: {POST_MATCHED.file_name}: {problem}" in out
    assert "bump its version" in out
    assert run(published, check=False, schemas=_post_matched(change)) == 1, "writing refuses it too"
    assert (published / "schemas" / POST_MATCHED.file_name).read_bytes() == before

    bumped = _post_matched(change, version=2)
    assert run(published, check=False, schemas=bumped) == 0
    assert run(published, check=True, schemas=bumped) == 0
    assert (published / "schemas" / POST_MATCHED.file_name).read_bytes() == before, "v1 stays published"
    assert (published / "schemas" / "com.x.post.matched.v2.json").is_file()


def test_describing_another_field_or_rewording_needs_no_new_version(published: Path) -> None:
    def describe(body: dict[str, Any]) -> None:
        body["properties"]["data"]["properties"]["lang"] = {"description": "the post's language, BCP 47"}
        body["description"] = "reworded"

    assert run(published, check=True, schemas=_post_matched(describe)) == 1, "stale until written"
    assert run(published, check=False, schemas=_post_matched(describe)) == 0
    assert run(published, check=True, schemas=_post_matched(describe)) == 0


def test_typing_a_field_that_was_any_value_is_a_retyping(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def type_lang(body: dict[str, Any]) -> None:
        body["properties"]["data"]["properties"]["lang"] = {"type": "string"}

    capsys.readouterr()
    assert run(published, check=True, schemas=_post_matched(type_lang)) == 1
    assert 'data.data.lang retyped (any → type "string")' in capsys.readouterr().out


def test_a_schema_the_code_no_longer_declares_is_not_withdrawn_silently(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run(published, check=False, schemas=OTHERS) == 1
    assert f"breaking: {POST_MATCHED.file_name}: the code no longer declares com.x.post.matched" in (
        capsys.readouterr().out
    )
    assert (published / "schemas" / POST_MATCHED.file_name).exists()


@pytest.mark.parametrize(
    ("published_schema", "current", "found"),
    [
        ({"type": "object"}, {"type": "object", "description": "new words"}, []),
        ({"properties": {"a": {}}}, {"properties": {"a": {}, "b": {"description": "new"}}}, []),
        ({"properties": {"a": {}}}, {"properties": {}}, ["data.a removed"]),
        (
            {"additionalProperties": True},
            {"additionalProperties": False},
            ["data retyped (additionalProperties true → additionalProperties false)"],
        ),
        ({"required": ["a"]}, {}, []),
        (
            {"items": {"type": "string"}},
            {"items": {"type": "integer"}},
            ['data[] retyped (type "string" → type "integer")'],
        ),
        (
            {"anyOf": [{"required": ["a"]}]},
            {"anyOf": [{"required": ["a", "b"]}]},
            ["data(anyOf[0]).b newly required"],
        ),
        ({"anyOf": [{}, {}]}, {"anyOf": [{}]}, ["data: anyOf has 1 alternatives, was 2"]),
        ({"properties": {"x": {"not": {}}}}, {"properties": {"x": {}}}, ["data.x retyped (not {} → any)"]),
    ],
)
def test_breaking_changes_field_by_field(
    published_schema: dict[str, Any], current: dict[str, Any], found: list[str]
) -> None:
    assert breaking_changes(published_schema, current) == found
