"""The consumer contract (SPEC §10): what hookstream publishes validates against the checked-in schemas,
and `asyncapi.yaml` is a valid AsyncAPI 3.0 document of every topic.

The official AsyncAPI 3.0.0 JSON Schema is test data: tests/data/asyncapi-3.0.0.schema.json, copied
unchanged from the npm package `@asyncapi/specs` 6.11.1 (`schemas/3.0.0.json`), Apache-2.0, licence in
tests/data/asyncapi-specs.LICENSE.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from hookstream import headers as H
from hookstream import settings as hookstream_settings
from hookstream.topics import Topics
from processor import cloudevents
from processor.metrics import ProcessorMetrics
from processor.normalize import SCHEMAS, normalize
from processor.outputs import published, unwritable
from processor.pipeline import Pipeline
from processor.records import RawRecord
from processor.route import Routes
from tests.contract import ROOT, assert_publishable, asyncapi_document, dead_letter_headers_errors, errors
from tests.fixtures import FIXTURES, fixture_bytes
from tests.unit.rawrecords import raw_record
from tests.unit.strategies import JSON_VALUES

TOPICS = Topics()
FORM = b"application/x-www-form-urlencoded"
STANDARD = {"hs-name": b"acme", "hs-http-webhook-id": b"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"}


def fixture_record(name: str, body: bytes | None = None) -> RawRecord:
    """The raw record a receiver writes for the fixture `name` (`source/file`), with `body` instead of
    the fixture's own where given."""
    source = name.split("/")[0]
    body = fixture_bytes(name) if body is None else body
    if source == "hootsuite":
        callback = "callback" in name
        headers = {"content-type": FORM} if name.endswith(".txt") else {}
        return raw_record(source, body, route="callback" if callback else "events", extra_headers=headers)
    if source == "standard":
        return raw_record(source, body, extra_headers=STANDARD, key=STANDARD["hs-http-webhook-id"])
    return raw_record(source, body)


FIXTURE_NAMES = sorted(str(path.relative_to(FIXTURES)) for path in FIXTURES.glob("*/*.*"))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_event_of_every_fixture_validates_against_its_schemas(name: str) -> None:
    raw = fixture_record(name)
    events = normalize(raw).events
    assert events
    for event in events:
        assert_publishable(orjson.loads(cloudevents.encode(event, raw)))


@pytest.mark.parametrize(
    ("source", "payload", "dataschema"),
    [
        (
            "websitetoolbox",
            {"id": 9, "type": "poll.vote.cast", "data": {"object": {}}},
            "com.websitetoolbox.forum-event",
        ),
        ("x", {"for_user_id": "1", "poll_vote_events": [{"id": "p"}]}, "com.x.account-activity"),
        (
            "hootsuite",
            [{"type": "com.hootsuite.comments.event.v1", "data": {}}],
            "com.hootsuite.platform-event",
        ),
    ],
)
def test_a_type_without_a_schema_of_its_own_names_its_familys(
    source: str, payload: Any, dataschema: str
) -> None:
    route = "events" if source == "hootsuite" else "post"
    raw = raw_record(source, orjson.dumps(payload), route=route)
    (event,) = normalize(raw).events
    assert event.dataschema == f"urn:hookstream:schema:{dataschema}:v1"
    assert_publishable(cloudevents.to_document(event, raw))


@functools.cache
def _pipeline() -> Pipeline:
    """One normalize stage for every example (it keeps nothing between records but its counters)."""
    return Pipeline(hookstream_settings.Settings(), ProcessorMetrics(), Routes(TOPICS))


def _published(raw: RawRecord) -> list[tuple[str, bytes | None, bytes, dict[str, str]]]:
    """What the worker publishes for `raw`: its keyed records as the dedup stage passes them on."""
    pipeline = _pipeline()
    return [
        (output.topic, output.key, output.value, {name: value.decode() for name, value in output.headers})
        for keyed in pipeline.outputs_of(raw)
        for output in published(keyed)
    ]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document, depth first: object keys and array indexes."""
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    return [path] + [found for key, child in children for found in _paths(child, (*path, key))]


def _mutated(name: str, value: Any, place: int) -> bytes:
    """The fixture (a form becomes `{}`) with the value at one place anywhere in it replaced by `value`."""
    document = orjson.loads(fixture_bytes(name)) if name.endswith(".json") else {}
    path = _paths(document)[place % len(_paths(document))]
    if not path:
        return orjson.dumps(value)
    holder = document
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    return orjson.dumps(document)


@settings(max_examples=200, deadline=None)  # the first example builds the validators
@given(
    st.sampled_from(FIXTURE_NAMES),
    st.one_of(st.none(), JSON_VALUES, st.binary(max_size=64)),
    st.integers(min_value=0, max_value=200),
)
def test_whatever_the_worker_publishes_validates_against_the_contract(
    name: str, value: Any, place: int
) -> None:
    """A fixture as it is (`None`), with a value anywhere in it replaced by generated JSON, or generated
    bytes: every record the worker would publish is a valid event on its topics, keyed by subject else
    id, or a dead letter whose headers asyncapi.yaml describes."""
    body = value if isinstance(value, bytes) else None if value is None else _mutated(name, value, place)
    for topic, key, value_bytes, headers in _published(fixture_record(name, body)):
        if topic == TOPICS.dlq:
            assert not dead_letter_headers_errors(headers), dead_letter_headers_errors(headers)
            continue
        document = orjson.loads(value_bytes)
        assert_publishable(document)
        assert key == (document.get("subject") or document["id"]).encode()
        assert headers == {"content-type": "application/cloudevents+json"}


def test_a_dead_letter_of_a_record_no_receiver_wrote_is_still_documented() -> None:
    raw = RawRecord("hookstream.raw.x", 3, 7, None, b"\xff", {"hs-source": b"pigeon"}, 0)
    ((topic, _, value, headers),) = _published(raw)
    assert (topic, value, headers[H.ERROR], headers[H.ORIGIN]) == (
        TOPICS.dlq,
        b"\xff",
        "unknown_source",
        "hookstream.raw.x/3/7",
    )
    assert not dead_letter_headers_errors(headers)
    assert dead_letter_headers_errors({H.SOURCE: "x"}), "the reason headers are required"


def test_the_dead_letter_of_an_event_kafka_refused_is_documented_too() -> None:
    (keyed,) = _pipeline().outputs_of(fixture_record("websitetoolbox/user_created.json"))
    record = SimpleNamespace(
        topic=TOPICS.keyed, partition=1, offset=5, key=keyed.key, value=keyed.value, headers=keyed.headers
    )
    letter = unwritable(TOPICS.dlq, record, "MessageSizeTooLargeError")
    headers = {name: value.decode() for name, value in letter.headers}
    assert headers[H.ERROR] == "unwritable"
    assert not dead_letter_headers_errors(headers)
    assert_publishable(orjson.loads(letter.value))


def test_asyncapi_yaml_is_a_valid_asyncapi_3_document() -> None:
    schema = orjson.loads((ROOT / "tests/data/asyncapi-3.0.0.schema.json").read_bytes())
    validator = Draft7Validator(schema)
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    assert not errors(validator, document)
    broken = orjson.loads(orjson.dumps(document))
    broken["channels"]["events"]["bindings"]["kafka"]["partitions"] = 0
    assert errors(validator, broken), "the official schema checks the Kafka bindings too"


def test_asyncapi_yaml_has_every_topic_every_schema_and_the_security_of_spec_7() -> None:
    document = asyncapi_document()
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {*TOPICS.all_raw, TOPICS.events, TOPICS.dlq, "hookstream.x.tag.{tag}"} <= addresses
    assert {TOPICS.for_type(schema.event_type) for schema in SCHEMAS if not schema.parameters} <= addresses
    assert {"hookstream.websitetoolbox.{forumType}", "hookstream.{senderName}.{payloadType}"} <= addresses
    messages = document["components"]["messages"]
    for schema in SCHEMAS:
        envelope, event = messages[schema.name]["payload"]["allOf"]
        assert (ROOT / envelope["$ref"]).is_file()
        assert (ROOT / event["properties"]["data"]["$ref"]).is_file()
        assert event["properties"]["dataschema"] == {"const": schema.urn}
    assert set(document["channels"]["events"]["messages"]) == {schema.name for schema in SCHEMAS}
    schemes = document["components"]["securitySchemes"]
    production = [ref["$ref"].rsplit("/", 1)[1] for ref in document["servers"]["production"]["security"]]
    assert sorted(schemes[name]["type"] for name in production) == [
        "X509",
        "plain",
        "scramSha256",
        "scramSha512",
    ]
    assert (document["servers"]["local"]["protocol"], document["servers"]["production"]["protocol"]) == (
        "kafka",
        "kafka-secure",
    )
