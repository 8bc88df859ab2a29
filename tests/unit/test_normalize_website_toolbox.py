from __future__ import annotations

import orjson
import pytest

from processor import cloudevents
from processor.normalize import normalize
from processor.records import Invalid
from tests.support import USER_CREATED, user_created_cloudevent
from tests.unit.rawrecords import raw_record


def test_the_documented_user_created_example_becomes_this_exact_cloudevent() -> None:
    raw = raw_record("websitetoolbox", USER_CREATED)
    (event,) = normalize(raw).events
    assert cloudevents.to_document(event, raw) == user_created_cloudevent(
        received_at="2026-11-28T16:00:00.123Z", raw="hookstream.raw.websitetoolbox/0/42"
    )


def test_encoding_is_compact_json_of_that_document() -> None:
    raw = raw_record("websitetoolbox", USER_CREATED)
    (event,) = normalize(raw).events
    assert orjson.loads(cloudevents.encode(event, raw)) == cloudevents.to_document(event, raw)


def _envelope(**changes: object) -> bytes:
    envelope = orjson.loads(USER_CREATED)
    envelope.update(changes)
    return orjson.dumps({k: v for k, v in envelope.items() if v is not None})


def test_an_unknown_but_well_formed_type_is_published_under_its_own_name() -> None:
    raw = raw_record(
        "websitetoolbox",
        _envelope(
            type="poll.vote.cast", id=99, data={"object": {"object": "Poll", "pollId": 7}}, mode="test"
        ),
    )
    (event,) = normalize(raw).events
    assert (event.type, event.id, event.subject) == (
        "com.websitetoolbox.poll.vote.cast",
        "websitetoolbox:99",
        "poll/7",
    )
    assert event.extensions == {"hsmode": "test"}
    assert event.time == "2026-11-28T16:00:00.123Z", "no provider time for this type: the receive time"


def test_a_string_id_is_kept_as_it_is() -> None:
    (event,) = normalize(raw_record("websitetoolbox", _envelope(id="evt_abc"))).events
    assert event.id == "websitetoolbox:evt_abc"


def test_an_object_without_its_id_has_no_subject() -> None:
    raw = raw_record("websitetoolbox", _envelope(type="topic.created", data={"object": {"object": "Topic"}}))
    (event,) = normalize(raw).events
    assert event.subject is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe\x00", "invalid_json"),
        (b"", "invalid_json"),
        (b"[1, 2]", "schema"),
        (_envelope(id=None), "missing_id"),
        (_envelope(id=""), "missing_id"),
        (_envelope(id=True), "missing_id"),
        (_envelope(type=None), "schema"),
        (_envelope(type="User Created"), "schema"),
        (_envelope(type=5), "schema"),
        (_envelope(data=None), "schema"),
        (_envelope(data={"object": "User"}), "schema"),
    ],
)
def test_malformed_events_are_invalid_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(Invalid) as raised:
        normalize(raw_record("websitetoolbox", body))
    assert raised.value.reason == reason
    assert raised.value.detail


def test_a_record_of_no_known_source_is_invalid() -> None:
    with pytest.raises(Invalid) as raised:
        normalize(raw_record("carrier-pigeon", USER_CREATED))
    assert raised.value.reason == "unknown_source"


@pytest.mark.parametrize("seconds", [253402300800, 2**63 - 1, 2**64 - 1, -5, 0])
def test_a_join_time_no_timestamp_can_hold_is_the_receive_time(seconds: int) -> None:
    envelope = orjson.loads(USER_CREATED)
    envelope["data"]["object"]["joinDateTimestamp"] = seconds
    (event,) = normalize(raw_record("websitetoolbox", orjson.dumps(envelope))).events
    assert event.time == "2026-11-28T16:00:00.123Z"


@pytest.mark.parametrize("received_at", [b"999999999999999", b"253402300800000", b"\xd9\xa1\xd9\xa2", b"-1"])
def test_a_receive_time_header_out_of_range_falls_back_to_the_record_timestamp(received_at: bytes) -> None:
    raw = raw_record("websitetoolbox", USER_CREATED, extra_headers={"hs-received-at": received_at})
    (event,) = normalize(raw).events
    assert cloudevents.to_document(event, raw)["hsreceivedat"] == "2026-11-28T16:00:00.126Z"
