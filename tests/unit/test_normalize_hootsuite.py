"""Hootsuite normalizer. The `hootsuite/` fixtures are constructed: the callbacks from the assignment callback
fields of reference 001 and PROVIDERS.md (form and JSON, the SSO token made with `tests.support`'s secret),
the REST batch from PROVIDERS.md's message-state webhooks, the stream events from reference 000's shapes."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor import cloudevents
from processor.normalize import normalize
from processor.records import Event, Invalid, Normalized, RawRecord
from tests.fixtures import fixture_bytes
from tests.unit.rawrecords import raw_record
from tests.unit.strategies import JSON_VALUES, normalized_unless_dead_letter

CALLBACK_FORM = fixture_bytes("hootsuite/callback_form.txt")
CALLBACK_JSON = fixture_bytes("hootsuite/callback.json")
REST_BATCH = fixture_bytes("hootsuite/rest_batch.json")
STREAM_SENT = fixture_bytes("hootsuite/stream_message_sent.json")
STREAM_MESSAGE = fixture_bytes("hootsuite/stream_message.json")
SSO_TOKEN = orjson.loads(CALLBACK_JSON)["sso_token"]
FORM = "application/x-www-form-urlencoded"
RECEIVED = "2026-11-28T16:00:00.123Z"
RAW = "hookstream.raw.hootsuite/0/42"
REASONS = {"invalid_json", "invalid_form", "schema", "missing_id"}
PING = {"seq_no": "1", "type": "com.hootsuite.ping.event.v1", "data": {}}


def _raw(body: bytes, route: str = "events", content_type: str | None = "application/json") -> RawRecord:
    raw = raw_record("hootsuite", body, route=route)
    headers = {name: value for name, value in raw.headers.items() if name != "content-type"}
    if content_type is not None:
        headers["content-type"] = content_type.encode()
    return dataclasses.replace(raw, headers=headers)


def _documents(raw: RawRecord) -> list[dict[str, Any]]:
    return [cloudevents.to_document(event, raw) for event in normalize(raw).events]


def _events(payload: object) -> list[Event]:
    return normalize(_raw(orjson.dumps(payload))).events


def _invalid(raw: RawRecord) -> Invalid:
    with pytest.raises(Invalid) as raised:
        normalize(raw)
    assert raised.value.detail
    return raised.value


def _callback(**changes: str | None) -> RawRecord:
    fields = orjson.loads(CALLBACK_JSON) | changes
    body = orjson.dumps({name: value for name, value in fields.items() if value is not None})
    return _raw(body, route="callback")


def _message(state: object = "SENT", message: object = None, **data: object) -> dict[str, Any]:
    message = {"id": "11223344556"} if message is None else message
    fields = {"state": state, "organization": {"id": "814203"}, "message": message, **data}
    return {"seq_no": "42", "type": "com.hootsuite.messages.event.v1", "data": fields}


ASSIGNMENT_CLOUDEVENT = {
    "specversion": "1.0",
    "id": "hootsuite:assignment:654321:RESOLVED:2026-11-28-15-59-47",
    "source": "urn:hookstream:hootsuite",
    "type": "com.hootsuite.assignment.resolved",
    "subject": "assignment/654321",
    "time": "2026-11-28T15:59:47Z",
    "datacontenttype": "application/json",
    "dataschema": "urn:hookstream:schema:com.hootsuite.assignment.resolved:v1",
    "data": {
        "action": "Assignment",
        "sso_i": "421335",
        "sso_ts": "1795881598",
        "assignmentId": "654321",
        "status": "RESOLVED",
        "messageId": "tkt-18342",
        "message": "Where is my refund? Order #18342",
        "toType": "TEAM",
        "toTeamId": "9911",
        "toTeamName": "Support EMEA",
        "creatorId": "421335",
        "creatorName": "Ana Ruiz",
        "fromId": "421335",
        "fromName": "Ana Ruiz",
        "toId": "",
        "toName": "Support EMEA",
        "createdDate": "2026-11-28-15-40-12",
        "modifiedDate": "2026-11-28-15-59-47",
    },
    "hsstatus": "RESOLVED",
    "hsreceivedat": RECEIVED,
    "hsraw": RAW,
}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (CALLBACK_FORM, FORM),
        (CALLBACK_FORM, None),
        (CALLBACK_JSON, "application/json"),
        (CALLBACK_JSON, None),
    ],
)
def test_the_assignment_callback_form_or_json_becomes_this_exact_cloudevent(
    body: bytes, content_type: str | None
) -> None:
    raw = _raw(body, route="callback", content_type=content_type)
    assert _documents(raw) == [ASSIGNMENT_CLOUDEVENT]


@pytest.mark.parametrize("body", [CALLBACK_FORM, CALLBACK_JSON])
def test_the_sso_token_never_leaves_the_normalizer(body: bytes) -> None:
    raw = _raw(body, route="callback", content_type=FORM if body is CALLBACK_FORM else "application/json")
    (event,) = normalize(raw).events
    assert "sso_token" not in event.data
    assert SSO_TOKEN.encode() not in cloudevents.encode(event, raw)


def test_an_open_assignment_in_lowercase_is_still_open() -> None:
    (event,) = normalize(_callback(status="open")).events
    assert (event.type, event.id, event.extensions) == (
        "com.hootsuite.assignment.open",
        "hootsuite:assignment:654321:OPEN:2026-11-28-15-59-47",
        {"hsstatus": "OPEN"},
    )


@pytest.mark.parametrize(
    ("modified", "time"),
    [
        ("2026-11-28 15:59:47", "2026-11-28T15:59:47Z"),
        ("2026-11-28-15-59-47", "2026-11-28T15:59:47Z"),
        ("2026-11-28T15:59:47.120Z", "2026-11-28T15:59:47.120Z"),
        ("2026-11-28T16:59:47+01:00", "2026-11-28T15:59:47Z"),
        ("last Tuesday", RECEIVED),
    ],
)
def test_the_modified_date_in_any_of_its_formats_is_the_event_time(modified: str, time: str) -> None:
    (event,) = normalize(_callback(modifiedDate=modified)).events
    assert event.time == time
    assert event.id == f"hootsuite:assignment:654321:RESOLVED:{modified}", "the date as given"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (_callback(assignmentId=None), "missing_id"),
        (_callback(assignmentId=" "), "missing_id"),
        (_callback(status=None), "schema"),
        (_callback(status="CLOSED"), "schema"),
        (_callback(modifiedDate=None), "schema"),
        (_callback(modifiedDate=""), "schema"),
        (_raw(b'{"assignmentId": ', route="callback"), "invalid_json"),
        (_raw(b"[1]", route="callback"), "invalid_json"),
        (_raw(b"assignmentId=1&no-equals-sign", route="callback", content_type=FORM), "invalid_form"),
        (_raw(b"assignmentId=\xff", route="callback", content_type=FORM), "invalid_form"),
    ],
)
def test_a_callback_that_cannot_be_an_assignment_is_invalid_with_a_reason(
    raw: RawRecord, reason: str
) -> None:
    assert _invalid(raw).reason == reason


def test_a_rest_batch_becomes_its_message_events_in_order_and_its_ping_is_counted() -> None:
    raw = _raw(REST_BATCH)
    elements = orjson.loads(REST_BATCH)
    common = {"specversion": "1.0", "source": "urn:hookstream:hootsuite"}
    assert normalize(raw).pings == 1
    assert _documents(raw) == [
        {
            **common,
            "id": "hootsuite:message:11223344556:SCHEDULED",
            "type": "com.hootsuite.message.scheduled",
            "subject": "message/11223344556",
            "time": "2026-11-28T15:58:02.417Z",
            "datacontenttype": "application/json",
            "dataschema": "urn:hookstream:schema:com.hootsuite.message.scheduled:v1",
            "data": elements[0]["data"],
            "hsstatus": "SCHEDULED",
            "hsseq": "7243198612409866241",
            "hsreceivedat": RECEIVED,
            "hsraw": RAW,
        },
        {
            **common,
            "id": "hootsuite:message:11223344556:SENT",
            "type": "com.hootsuite.message.sent",
            "subject": "message/11223344556",
            "time": "2026-11-28T15:59:01Z",
            "datacontenttype": "application/json",
            "dataschema": "urn:hookstream:schema:com.hootsuite.message.sent:v1",
            "data": elements[2]["data"],
            "hsstatus": "SENT",
            "hsseq": "7243198612409866243",
            "hsreceivedat": RECEIVED,
            "hsraw": RAW,
        },
        {
            **common,
            "id": "hootsuite:message:11223344999:SEND_FAILED_PERMANENTLY",
            "type": "com.hootsuite.message.failed",
            "subject": "message/11223344999",
            "time": "2026-11-28T14:59:03.250Z",
            "datacontenttype": "application/json",
            "dataschema": "urn:hookstream:schema:com.hootsuite.message.failed:v1",
            "data": elements[3]["data"],
            "hsstatus": "SEND_FAILED_PERMANENTLY",
            "hsseq": "7243198612409866244",
            "hsreceivedat": RECEIVED,
            "hsraw": RAW,
        },
    ]


def test_a_batch_of_only_pings_is_counted_and_publishes_nothing() -> None:
    assert normalize(_raw(orjson.dumps([PING, PING | {"seq_no": "2"}]))) == Normalized([], pings=2)


@pytest.mark.parametrize(
    ("state", "kind"),
    [
        ("SCHEDULED", "scheduled"),
        ("SUBMITTED", "submitted"),
        ("PENDING_APPROVAL", "pending_approval"),
        ("APPROVED", "approved"),
        ("SENT", "sent"),
        ("SEND_FAILED_PERMANENTLY", "failed"),
        ("FAILED", "failed"),
        ("REJECTED", "rejected"),
        ("DELETED", "deleted"),
        ("sent", "sent"),
    ],
)
def test_every_message_state_has_its_type_and_keeps_its_own_name(state: str, kind: str) -> None:
    (event,) = _events([_message(state)])
    assert event.type == f"com.hootsuite.message.{kind}"
    assert event.id == f"hootsuite:message:11223344556:{state.upper()}"
    assert event.extensions == {"hsstatus": state, "hsseq": "42"}


def test_a_message_event_without_timestamp_or_seq_no_is_timed_at_receipt_without_hsseq() -> None:
    element = _message(timestamp="not a time")
    del element["seq_no"]
    (event,) = _events([element])
    assert (event.time, event.extensions) == (RECEIVED, {"hsstatus": "SENT"})


def test_other_platform_kinds_are_published_by_seq_no_or_content() -> None:
    comment = {"seq_no": "77", "type": "com.hootsuite.comments.event.v1", "data": {"comment": {"id": "c1"}}}
    app = {"type": "com.hootsuite.apps.event.v1", "data": {"app": {"id": "a1"}, "installed": True}}
    first, second = _events([comment, app])
    assert (first.type, first.id, first.subject, first.data) == (
        "com.hootsuite.comments",
        "hootsuite:comments:77",
        None,
        comment["data"],
    )
    assert (second.type, second.subject, second.extensions) == ("com.hootsuite.apps", None, {})
    assert second.id.startswith("hootsuite:apps:")
    assert second.id == _events([app])[0].id, "the same content, the same id"


@pytest.mark.parametrize(
    ("batch", "reason"),
    [
        ([], "schema"),
        ([PING, "not an object"], "schema"),
        ([{"seq_no": "1", "data": {}}], "schema"),
        ([{"seq_no": "1", "type": "message.sent", "data": {}}], "schema"),
        ([{"seq_no": "1", "type": "com.hootsuite.messages.event.v2", "data": {}}], "schema"),
        ([{"seq_no": "1", "type": "com.hootsuite.comments.event.v1\n", "data": {}}], "schema"),
        ([{"seq_no": "1", "type": "com.hootsuite.comments.event.v1"}], "schema"),
        ([_message(state="LOST")], "schema"),
        ([_message(state=None)], "schema"),
        ([_message(message={"text": "no id"})], "missing_id"),
        ([_message(message="11223344556")], "missing_id"),
        ([_message(), _message(state="LOST")], "schema"),
    ],
)
def test_a_batch_with_anything_unusable_is_invalid_as_a_whole(batch: list[Any], reason: str) -> None:
    assert _invalid(_raw(orjson.dumps(batch))).reason == reason


def test_the_stream_message_sent_event_becomes_this_exact_cloudevent() -> None:
    assert _documents(_raw(STREAM_SENT)) == [
        {
            "specversion": "1.0",
            "id": "hootsuite:message:11223344556:SENT",
            "source": "urn:hookstream:hootsuite",
            "type": "com.hootsuite.message.sent",
            "subject": "message/11223344556",
            "time": "2026-11-28T15:59:01Z",
            "datacontenttype": "application/json",
            "dataschema": "urn:hookstream:schema:com.hootsuite.message.sent:v1",
            "data": orjson.loads(STREAM_SENT)["data"],
            "hsstatus": "SENT",
            "hsreceivedat": RECEIVED,
            "hsraw": RAW,
        }
    ]


def test_the_stream_message_event_becomes_this_exact_cloudevent() -> None:
    assert _documents(_raw(STREAM_MESSAGE)) == [
        {
            "specversion": "1.0",
            "id": "hootsuite:stream:17841405793187218_1029",
            "source": "urn:hookstream:hootsuite",
            "type": "com.hootsuite.stream.message",
            "time": RECEIVED,
            "datacontenttype": "application/json",
            "dataschema": "urn:hookstream:schema:com.hootsuite.stream.message:v1",
            "data": orjson.loads(STREAM_MESSAGE)["data"],
            "hsreceivedat": RECEIVED,
            "hsraw": RAW,
        }
    ]


def test_a_stream_message_without_id_is_identified_by_its_content() -> None:
    (event,) = _events({"type": "stream.message", "data": {"network": "X", "post": {"id": "9"}}})
    assert event.id.startswith("hootsuite:stream:")
    assert len(event.id) == len("hootsuite:stream:") + 24


@pytest.mark.parametrize(
    ("data", "message_id"),
    [({"id": 5}, "5"), ({"messageId": "m-7"}, "m-7"), ({"message": {"id": "m-8"}}, "m-8")],
)
def test_a_failed_stream_message_is_found_by_any_of_its_id_fields(
    data: dict[str, Any], message_id: str
) -> None:
    (event,) = _events({"type": "message.failed", "data": data})
    assert (event.type, event.id, event.subject, event.extensions) == (
        "com.hootsuite.message.failed",
        f"hootsuite:message:{message_id}:FAILED",
        f"message/{message_id}",
        {"hsstatus": "FAILED"},
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (_raw(b"{nope"), "invalid_json"),
        (_raw(b""), "invalid_json"),
        (_raw(b'"message.sent"'), "schema"),
        (_raw(b'{"type": "message.sent"}'), "schema"),
        (_raw(b'{"type": "message.sent", "data": []}'), "schema"),
        (_raw(b'{"type": "message.sent", "data": {"text": "no id"}}'), "missing_id"),
        (_raw(b'{"type": "message.vanished", "data": {"id": "1"}}'), "schema"),
        (_raw(b'{"type": "message.", "data": {"id": "1"}}'), "schema"),
        (_raw(b'{"type": "message.sent\\n", "data": {"id": "1"}}'), "schema"),
        (_raw(b'{"type": "stream.refresh", "data": {}}'), "schema"),
        (_raw(b'{"type": 5, "data": {}}'), "schema"),
        (_raw(STREAM_SENT, route="poll"), "schema"),
        (dataclasses.replace(_raw(STREAM_SENT), headers={"hs-source": b"hootsuite"}), "schema"),
    ],
)
def test_an_events_delivery_that_is_no_known_event_is_invalid_with_a_reason(
    raw: RawRecord, reason: str
) -> None:
    assert _invalid(raw).reason == reason


_TYPES = st.sampled_from(
    [
        "com.hootsuite.messages.event.v1",
        "com.hootsuite.ping.event.v1",
        "com.hootsuite.comments.event.v1",
        "message.sent",
        "message.failed",
        "stream.message",
    ]
)
_DATA = st.fixed_dictionaries(
    {},
    optional={
        "state": st.sampled_from(["SENT", "FAILED", "x"]) | JSON_VALUES,
        "message": JSON_VALUES,
        "id": JSON_VALUES,
    },
)
_ELEMENT = st.fixed_dictionaries(
    {"type": _TYPES | JSON_VALUES, "data": _DATA | JSON_VALUES}, optional={"seq_no": JSON_VALUES}
)
_CALLBACK_FIELDS = {
    "assignmentId": st.sampled_from(["654321", " "]) | st.text(),
    "status": st.sampled_from(["OPEN", "resolved", "CLOSED"]) | st.text(),
    "modifiedDate": st.sampled_from(
        ["2026-11-28 15:59:47", "2026-11-28-15-59-47", "9999-12-31T23:59:59-01:00"]
    )
    | st.text(),
}
_CALLBACK = st.fixed_dictionaries({"sso_token": st.just(SSO_TOKEN)}, optional=_CALLBACK_FIELDS)
_HOOTSUITE_SHAPED = _ELEMENT | st.lists(_ELEMENT, max_size=4) | _CALLBACK
_ROUTES = st.sampled_from(["callback", "events", "post"])
_CONTENT_TYPES = st.sampled_from([None, "application/json", FORM, "text/plain"])


def assert_only_normalized_or_invalid(raw: RawRecord) -> None:
    """Either events fit to publish and counted pings, or a dead letter with one of our reasons."""
    outcome = normalized_unless_dead_letter(raw, REASONS)
    if outcome is None:
        return
    assert outcome.events or outcome.pings
    for event in outcome.events:
        assert event.source == "urn:hookstream:hootsuite"
        assert event.id.startswith("hootsuite:")
        assert event.time.endswith("Z")
        assert all(isinstance(value, str | int | bool) for value in event.extensions.values())
        assert SSO_TOKEN.encode() not in cloudevents.encode(event, raw)


@given(st.binary(), _ROUTES, _CONTENT_TYPES)
def test_random_bytes_only_ever_normalize_or_are_invalid(
    body: bytes, route: str, content_type: str | None
) -> None:
    assert_only_normalized_or_invalid(_raw(body, route=route, content_type=content_type))


@given(JSON_VALUES | _HOOTSUITE_SHAPED, _ROUTES, _CONTENT_TYPES)
def test_random_json_only_ever_normalizes_or_is_invalid(
    payload: Any, route: str, content_type: str | None
) -> None:
    assert_only_normalized_or_invalid(_raw(orjson.dumps(payload), route=route, content_type=content_type))


@given(_CALLBACK, st.dictionaries(st.text(), st.text(), max_size=3))
def test_random_callback_forms_only_ever_normalize_or_are_invalid(
    fields: dict[str, str], extra: dict[str, str]
) -> None:
    assert_only_normalized_or_invalid(
        _raw(urlencode(fields | extra).encode(), route="callback", content_type=FORM)
    )
