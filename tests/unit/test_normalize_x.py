"""X normalizer. `x/filtered_stream_post.json` is the example payload of reference 003, verbatim; the
`x/account_activity_*.json` fixtures are constructed from PROVIDERS.md's Account Activity shapes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor import cloudevents
from processor.normalize import normalize
from processor.records import Event, Invalid
from tests.fixtures import fixture_bytes
from tests.unit.rawrecords import raw_record
from tests.unit.strategies import JSON_VALUES, normalized_unless_dead_letter

POST = fixture_bytes("x/filtered_stream_post.json")
TWEETS = fixture_bytes("x/account_activity_tweet_create.json")
FAVORITE = fixture_bytes("x/account_activity_favorite.json")
FOLLOW = fixture_bytes("x/account_activity_follow.json")
RECEIVED = "2026-11-28T16:00:00.123Z"
RAW = "hookstream.raw.x/0/42"
REASONS = {"invalid_json", "schema", "missing_id"}


def _events(payload: object) -> list[Event]:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return normalize(raw_record("x", body)).events


def _documents(body: bytes) -> list[dict[str, Any]]:
    raw = raw_record("x", body)
    return [cloudevents.to_document(event, raw) for event in normalize(raw).events]


def _invalid(payload: object) -> Invalid:
    with pytest.raises(Invalid) as raised:
        _events(payload)
    assert raised.value.detail
    return raised.value


def _post(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = orjson.loads(POST)
    payload.update(changes)
    return payload


def test_the_documented_filtered_stream_post_becomes_this_exact_cloudevent() -> None:
    assert _documents(POST) == [
        {
            "specversion": "1.0",
            "id": "x:post:1346889436626259968",
            "source": "urn:hookstream:x",
            "type": "com.x.post.matched",
            "subject": "post/1346889436626259968",
            "time": "2021-01-06T18:40:40Z",
            "datacontenttype": "application/json",
            "dataschema": "urn:hookstream:schema:com.x.post.matched:v1",
            "data": orjson.loads(POST),
            "hstags": "api-posts",
            "hsreceivedat": RECEIVED,
            "hsraw": RAW,
        }
    ]


def test_a_tweet_create_batch_becomes_one_event_per_tweet_in_order() -> None:
    tweets = orjson.loads(TWEETS)["tweet_create_events"]
    common = {"specversion": "1.0", "source": "urn:hookstream:x", "type": "com.x.tweet_create"}
    assert _documents(TWEETS) == [
        {
            **common,
            "id": "x:tweet_create:1050118621198921728",
            "subject": "post/1050118621198921728",
            "time": "2018-10-10T20:19:24Z",
            "datacontenttype": "application/json",
            "dataschema": "urn:hookstream:schema:com.x.tweet_create:v1",
            "data": tweets[0],
            "hsforuser": "2244994945",
            "hsreceivedat": RECEIVED,
            "hsraw": RAW,
        },
        {
            **common,
            "id": "x:tweet_create:1050119036317736961",
            "subject": "post/1050119036317736961",
            "time": "2018-10-10T20:21:03.512Z",
            "datacontenttype": "application/json",
            "dataschema": "urn:hookstream:schema:com.x.tweet_create:v1",
            "data": tweets[1],
            "hsforuser": "2244994945",
            "hsreceivedat": RECEIVED,
            "hsraw": RAW,
        },
    ]


def test_a_favorite_is_about_the_favorited_post() -> None:
    assert _documents(FAVORITE) == [
        {
            "specversion": "1.0",
            "id": "x:favorite:a7ba59eb2f6fd4b5a1ac4d36ec8c4ddf",
            "source": "urn:hookstream:x",
            "type": "com.x.favorite",
            "subject": "post/1050118621198921728",
            "time": "2018-03-26T16:33:26Z",
            "datacontenttype": "application/json",
            "dataschema": "urn:hookstream:schema:com.x.favorite:v1",
            "data": orjson.loads(FAVORITE)["favorite_events"][0],
            "hsforuser": "2244994945",
            "hsreceivedat": RECEIVED,
            "hsraw": RAW,
        }
    ]


def test_a_follow_has_no_id_so_its_content_hash_stands_in() -> None:
    assert _documents(FOLLOW) == [
        {
            "specversion": "1.0",
            "id": "x:follow:ae5858065dd74e6b0f38665d",
            "source": "urn:hookstream:x",
            "type": "com.x.follow",
            "subject": "user/2244994945",
            "time": "2018-02-02T16:25:49.178Z",
            "datacontenttype": "application/json",
            "dataschema": "urn:hookstream:schema:com.x.follow:v1",
            "data": orjson.loads(FOLLOW)["follow_events"][0],
            "hsforuser": "2244994945",
            "hsreceivedat": RECEIVED,
            "hsraw": RAW,
        }
    ]


def test_the_content_hash_ignores_key_order_and_whitespace() -> None:
    element = orjson.loads(FOLLOW)["follow_events"][0]
    reordered = dict(reversed(list(element.items())))
    body = b'{"follow_events": [ ' + orjson.dumps(reordered) + b' ], "for_user_id": 2244994945}'
    (event,) = _events(body)
    assert event.id == "x:follow:ae5858065dd74e6b0f38665d"
    assert event.extensions == {"hsforuser": "2244994945"}


@pytest.mark.parametrize(
    ("rules", "hstags"),
    [
        ([{"id": "1", "tag": "a"}, {"id": "2", "tag": "b"}, {"id": "3", "tag": "a"}], "a,b"),
        ([{"id": "1", "tag": "cats, dogs"}, {"id": "2", "tag": "birds"}], "cats_ dogs,birds"),
        ([{"id": "1"}, {"id": "2", "tag": ""}, {"id": "3", "tag": " "}, {"id": "4", "tag": "x"}], "x"),
        ([{"id": "1", "tag": 7}, "not a rule", {"id": "2", "tag": "kept"}], "kept"),
    ],
)
def test_rule_tags_in_order_once_each_without_commas_inside(rules: list[Any], hstags: str) -> None:
    (event,) = _events(_post(matching_rules=rules))
    assert event.extensions == {"hstags": hstags}


@pytest.mark.parametrize("rules", [[], [{"id": "1"}], [{"id": "1", "tag": ""}]])
def test_a_post_without_any_rule_tag_has_no_hstags(rules: list[Any]) -> None:
    (event,) = _events(_post(matching_rules=rules))
    assert event.extensions == {}
    assert event.type == "com.x.post.matched"


def test_a_post_without_a_readable_created_at_is_timed_at_receipt() -> None:
    (event,) = _events(_post(data={"id": 99, "created_at": "yesterday"}))
    assert (event.id, event.subject, event.time) == ("x:post:99", "post/99", RECEIVED)


def _activity(**batches: Any) -> dict[str, Any]:
    return {"for_user_id": "3001969357", **batches}


def test_every_kind_of_a_mixed_batch_in_key_then_array_order() -> None:
    dm = {"type": "message_create", "id": "954491830116155396", "created_timestamp": "1516403560557"}
    events = _events(
        _activity(
            direct_message_events=[dm],
            follow_events=[{"type": "unfollow", "target": {"id_str": "1"}}, {"target": {"id": 2}}],
            tweet_delete_events=[{"status": {"id": "601430178305220608"}, "timestamp_ms": "1432228155593"}],
            apps={"268278": {"id": "268278", "name": "Our app"}},
        )
    )
    assert [(e.type, e.subject) for e in events] == [
        ("com.x.direct_message", "message/954491830116155396"),
        ("com.x.follow", "user/1"),
        ("com.x.follow", "user/2"),
        ("com.x.tweet_delete", "post/601430178305220608"),
    ]
    assert (events[0].id, events[3].id) == (
        "x:direct_message:954491830116155396",
        "x:tweet_delete:601430178305220608",
    )
    assert events[0].time == "2018-01-19T23:12:40.557Z"
    assert events[3].time == "2015-05-21T17:09:15.593Z"
    assert events[1].id != events[2].id
    assert all(e.extensions == {"hsforuser": "3001969357"} for e in events)


@pytest.mark.parametrize(
    ("kind", "element", "subject"),
    [
        ("block", {"created_timestamp": "1518127020304", "target": {"id": "3001969357"}}, "user/3001969357"),
        ("mute", {"target": {"id": 3001969357}, "source": {"id": "1"}}, "user/3001969357"),
        ("direct_message_indicate_typing", {"sender_id": "3284025577", "target": {}}, "user/3284025577"),
        ("direct_message_mark_read", {"sender_id": 3284025577, "last_read_event_id": "9"}, "user/3284025577"),
        ("tweet_create", {"text": "no id at all"}, None),
        ("favorite", {"id": "f1", "favorited_status": {}}, None),
        ("poll_vote", {"id": "pv1", "poll": {"id": "p1"}}, None),
    ],
)
def test_the_subject_is_the_best_entity_id_of_each_kind(
    kind: str, element: dict[str, Any], subject: str | None
) -> None:
    (event,) = _events(_activity(**{f"{kind}_events": [element]}))
    assert (event.type, event.subject) == (f"com.x.{kind}", subject)


def test_a_user_event_object_is_one_event_identified_by_its_content() -> None:
    revoke = {"revoke": {"date_time": "2018-05-24T09:48:12+00:00", "target": {"app_id": "13090192"}}}
    (event,) = _events(_activity(user_event=revoke))
    assert event.type == "com.x.user_event"
    assert event.id.startswith("x:user_event:")
    assert len(event.id) == len("x:user_event:") + 24
    assert (event.subject, event.time, event.data) == (None, RECEIVED, revoke)


def test_a_replay_job_status_is_one_event() -> None:
    status = {"webhook_id": "1234", "job_state": "Complete", "job_id": "1095098195724558337"}
    (event,) = _events({"replay_job_status": status})
    assert (event.type, event.id, event.subject, event.data) == (
        "com.x.replay_job_status",
        "x:replay_job_status:1095098195724558337",
        None,
        status,
    )
    (hashed,) = _events({"replay_job_status": {"job_state": "Failed"}})
    assert hashed.id.startswith("x:replay_job_status:")
    assert hashed.id != event.id


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"", "invalid_json"),
        ([1, 2], "schema"),
        ({}, "schema"),
        ({"data": {"id": "1"}}, "schema"),
        (_post(data={"text": "no id"}), "missing_id"),
        (_post(data={"id": ""}), "missing_id"),
        (_post(data={"id": True}), "missing_id"),
        (_activity(), "schema"),
        (_activity(tweet_create_events=[], follow_events=[]), "schema"),
        (
            _activity(**{"tweet_create_events\n": [{"id": "1"}], "Follow_events": [{}], "_events": [{}]}),
            "schema",
        ),
        (_activity(tweet_create_events=["not an object"]), "schema"),
        (_activity(tweet_create_events={"id": "1"}), "schema"),
        (_activity(user_event=[{"revoke": {}}]), "schema"),
        ({"for_user_id": None, "follow_events": [{}]}, "schema"),
        ({"for_user_id": "", "follow_events": [{}]}, "schema"),
        ({"follow_events": [{"target": {"id": "1"}}]}, "schema"),
        ({"replay_job_status": "Complete"}, "schema"),
    ],
)
def test_what_cannot_become_events_is_invalid_with_a_reason(payload: object, reason: str) -> None:
    assert _invalid(payload).reason == reason


def test_an_element_nested_too_deeply_to_hash_is_invalid_not_a_crash() -> None:
    deep = b'{"for_user_id": "1", "follow_events": [{"n": ' + b"[" * 300 + b"]" * 300 + b"}]}"
    assert _invalid(deep).reason == "schema"


_X_SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "data": st.dictionaries(st.sampled_from(["id", "created_at", "text"]), JSON_VALUES) | JSON_VALUES,
        "matching_rules": st.lists(
            st.dictionaries(st.sampled_from(["id", "tag"]), JSON_VALUES) | JSON_VALUES
        ),
        "for_user_id": JSON_VALUES,
        "tweet_create_events": st.lists(
            st.dictionaries(st.sampled_from(["id", "id_str", "created_at"]), JSON_VALUES)
        ),
        "follow_events": JSON_VALUES,
        "tweet_delete_events": st.lists(
            st.fixed_dictionaries({"status": JSON_VALUES, "timestamp_ms": JSON_VALUES})
        ),
        "user_event": JSON_VALUES,
        "replay_job_status": JSON_VALUES,
    },
)


def assert_only_normalized_or_invalid(body: bytes) -> None:
    """Either events fit to publish, or a dead letter with one of our reasons; never anything else."""
    outcome = normalized_unless_dead_letter(raw_record("x", body), REASONS)
    if outcome is None:
        return
    assert outcome.events
    assert outcome.pings == 0
    for event in outcome.events:
        assert event.source == "urn:hookstream:x"
        assert event.id.startswith("x:")
        assert event.time.endswith("Z")
        assert all(isinstance(value, str | int | bool) for value in event.extensions.values())
        cloudevents.encode(event, raw_record("x", body))


@given(st.binary())
def test_random_bytes_only_ever_normalize_or_are_invalid(body: bytes) -> None:
    assert_only_normalized_or_invalid(body)


@given(JSON_VALUES | _X_SHAPED)
def test_random_json_only_ever_normalizes_or_is_invalid(payload: Any) -> None:
    assert_only_normalized_or_invalid(orjson.dumps(payload))
