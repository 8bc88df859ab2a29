"""`hookstream replay` and `hookstream dlq redrive` on the real broker, next to a running worker; and
their pure parts (what one record becomes), which need no broker."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import orjson
import pytest

from hookstream.topics import Topics
from processor.records import Invalid, RawRecord
from processor.redrive import redrive_output, restore
from processor.replay import to_outputs
from processor.route import Routes
from tests.integration.harness import (
    Stack,
    caught_up,
    eventually,
    metric,
    produce,
    raw_headers,
    read_all,
    read_topic,
)
from tests.support import HOOKSTREAM
from tests.support import forum_event as support_forum_event

FORUM = "websitetoolbox"


def forum_event(event_id: int) -> bytes:
    return support_forum_event(event_id, user_id=event_id * 10)


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(HOOKSTREAM), *args],
        env=stack.environment({}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def deliveries(topics: Topics, values: list[bytes]) -> list[tuple[str, bytes, dict[str, bytes], int | None]]:
    """Raw forum records, as the receivers write them."""
    return [(topics.raw(FORUM), value, raw_headers(FORUM), None) for value in values]


def iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def documents(records: list[object]) -> list[dict[str, object]]:
    return [orjson.loads(record.value) for record in records]  # type: ignore[attr-defined]


# -- the pure parts --


def raw(value: bytes, **headers: bytes) -> RawRecord:
    """A forum raw record at hookstream.raw.websitetoolbox/1/7, `headers` (`hs_error`…) added."""
    extra = {name.replace("_", "-"): header for name, header in headers.items()}
    return RawRecord("hookstream.raw.websitetoolbox", 1, 7, None, value, raw_headers(FORUM) | extra, 0)


def test_a_replayed_event_goes_to_its_routed_topics_marked_last_and_keyed_by_subject() -> None:
    outputs = to_outputs(raw(forum_event(1534)), Routes(Topics()))
    assert [o.topic for o in outputs] == ["hookstream.events", "hookstream.websitetoolbox.user.created"]
    document = orjson.loads(outputs[0].value)
    assert document["id"] == "websitetoolbox:1534"
    assert list(document)[-1] == "hsreplay"
    assert document["hsreplay"] is True
    assert document["hsraw"] == "hookstream.raw.websitetoolbox/1/7"
    assert {o.key for o in outputs} == {b"user/15340"}
    assert dict(outputs[0].headers)["content-type"] == b"application/cloudevents+json"


def test_a_record_that_does_not_normalize_is_invalid_with_the_pipelines_reason() -> None:
    with pytest.raises(Invalid) as invalid:
        to_outputs(raw(b"{not json"), Routes(Topics()))
    assert invalid.value.reason == "invalid_json"


def test_a_dead_letter_is_restored_to_its_raw_topic_without_the_dead_letter_headers() -> None:
    dead = raw(forum_event(1), hs_error=b"schema", hs_error_detail=b"x", hs_origin=b"hs.raw.x/2/40")
    restored = restore(dead, Topics("hs"))
    assert (restored.topic, restored.partition, restored.offset) == ("hs.raw.x", 2, 40)
    assert not {"hs-error", "hs-error-detail", "hs-origin"} & set(restored.headers)
    assert restored.headers["hs-source"] == b"websitetoolbox"
    output = redrive_output(dead, Topics("hs"))
    assert (output.topic, output.value) == ("hs.raw.x", dead.value)


def test_a_dead_letter_never_chooses_a_foreign_topic() -> None:
    foreign = raw(forum_event(1), hs_error=b"schema", hs_origin=b"payments.ledger/0/1")
    assert restore(foreign, Topics("hs")).topic == "hs.raw.websitetoolbox"  # from hs-source instead
    unknown = raw(forum_event(1), hs_source=b"nobody", hs_origin=b"payments.ledger/0/1")
    with pytest.raises(Invalid, match="no_raw_topic"):
        restore(unknown, Topics("hs"))


# -- on the broker --


async def test_replay_republishes_a_time_range_bypassing_dedup(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    topics = Topics(namespace)
    stack.create_topics()
    await produce(bootstrap, deliveries(topics, [forum_event(n) for n in (1, 2, 3)]))
    earlier = await read_topic(bootstrap, topics.raw(FORUM), 3)
    first_ms, since_ms = min(r.timestamp for r in earlier), max(r.timestamp for r in earlier) + 1
    later = [forum_event(4), forum_event(5), b'{"id": 6, "type": "user.cre']  # the last one is cut short
    await produce(bootstrap, deliveries(topics, later))
    everything = await read_topic(bootstrap, topics.raw(FORUM), 6)
    assert min(r.timestamp for r in everything if r.value in later) >= since_ms
    await stack.worker()
    originals = await read_topic(bootstrap, topics.events, 5)
    await eventually(lambda: caught_up(bootstrap, f"{namespace}-dedup", topics.keyed), what="dedup done")

    result = cli(stack, "replay", "--source", FORUM, "--since", iso(since_ms))
    assert "replay: 3 records read, 2 events published" in result.stdout
    assert "1 invalid (invalid_json 1)" in result.stdout
    assert "invalid_json" in result.stderr  # the record is listed with its origin

    events = await read_all(bootstrap, topics.events)
    assert len(events) == 7
    replayed = [d for d in documents(events) if d.get("hsreplay")]
    assert sorted(str(d["id"]) for d in replayed) == ["websitetoolbox:4", "websitetoolbox:5"]
    assert all(d["hsreplay"] is True for d in replayed)
    before = {(r.partition, r.offset, r.value) for r in originals}
    assert before <= {(r.partition, r.offset, r.value) for r in events}
    assert not any("hsreplay" in d for d in documents(originals))
    assert len(await read_all(bootstrap, topics.for_type("com.websitetoolbox.user.created"))) == 7

    result = cli(stack, "replay", "--source", FORUM, "--since", str(first_ms), "--until", str(since_ms))
    assert "replay: 3 records read, 3 events published" in result.stdout
    assert len(await read_all(bootstrap, topics.events)) == 10


def dead_letter(
    topics: Topics, value: bytes, origin: str | None, reason: bytes
) -> tuple[str, bytes, dict[str, bytes], int | None]:
    headers = raw_headers(FORUM) | {"hs-error": reason, "hs-error-detail": b"rejected by an old bug"}
    if origin is not None:
        headers["hs-origin"] = origin.encode()
    return (topics.dlq, value, headers, None)


async def test_redrive_publishes_what_now_normalizes_once_and_skips_what_still_fails(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    topics = Topics(namespace)
    stack.create_topics()
    raw_topic = topics.raw(FORUM)
    await produce(
        bootstrap,
        [
            dead_letter(topics, forum_event(11), f"{raw_topic}/0/3", b"schema"),
            dead_letter(topics, forum_event(12), f"{raw_topic}/2/9", b"schema"),
            dead_letter(topics, forum_event(13), None, b"normalizer_error"),  # hs-source says where
            dead_letter(topics, b'{"id": 14, "type": "user.cre', f"{raw_topic}/1/4", b"invalid_json"),
        ],
    )
    worker = await stack.worker()

    result = cli(stack, "dlq", "redrive")
    assert "4 dead letters read, 3 redriven, 1 still failing (invalid_json 1)" in result.stdout
    assert f"still failing {raw_topic}/1/4: invalid_json" in result.stderr

    await read_topic(bootstrap, topics.events, 3)
    await eventually(lambda: caught_up(bootstrap, namespace, raw_topic), what="the raw topic normalized")
    await eventually(lambda: caught_up(bootstrap, f"{namespace}-dedup", topics.keyed), what="dedup done")
    events = documents(await read_all(bootstrap, topics.events))
    assert sorted(str(d["id"]) for d in events) == [f"websitetoolbox:{n}" for n in (11, 12, 13)]
    redriven = await read_all(bootstrap, raw_topic)
    assert sorted(r.value for r in redriven) == sorted(forum_event(n) for n in (11, 12, 13))
    names = {name for record in redriven for name, _ in record.headers}
    assert not names & {"hs-error", "hs-error-detail", "hs-origin"}
    assert await metric(worker, "hookstream_dead_letters_total") == 0

    again = cli(stack, "dlq", "redrive")
    assert "0 dead letters read, 0 redriven, 0 still failing" in again.stdout
