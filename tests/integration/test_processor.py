"""The processor on the real broker: deduplication across deliveries, workers and restarts, dead
letters, and every raw record accounted for."""

from __future__ import annotations

import re
import signal
from collections import Counter

import aiohttp
import orjson
import pytest
from aiokafka import TopicPartition

from hookstream import clients
from hookstream.settings import Settings
from hookstream.topics import Topics
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
from tests.support import EVENTS_TOKEN, FORUM_TOKEN, USER_CREATED, forum_event

pytestmark = pytest.mark.long(130)

GUARANTEES = ["at_least_once", "exactly_once"]


def ids(records: list[object]) -> Counter[str]:
    return Counter(orjson.loads(record.value)["id"] for record in records)  # type: ignore[attr-defined]


@pytest.mark.parametrize("guarantee", GUARANTEES)
async def test_the_same_delivery_three_times_over_http_is_one_event(
    stack: Stack, bootstrap: str, namespace: str, guarantee: str
) -> None:
    stack.env.update(
        {"HOOKSTREAM_WEBSITETOOLBOX_TOKEN": FORUM_TOKEN, "HOOKSTREAM_PROCESSING_GUARANTEE": guarantee}
    )
    receivers = await stack.receivers()
    worker = await stack.worker()
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            url = f"{receivers.url}/webhooks/websitetoolbox/{FORUM_TOKEN}"
            async with session.post(url, data=USER_CREATED) as response:
                assert response.status == 200
        async with session.post(url, data=forum_event(1535)) as response:
            assert response.status == 200

    async def all_counted() -> bool:
        published = await metric(worker, "hookstream_events_published_total")
        return published == 2 and await metric(worker, "hookstream_duplicates_total") == 2

    await eventually(all_counted, what="two events published and two duplicates counted")
    events = await read_topic(bootstrap, Topics(namespace).events, 2)
    assert ids(events) == {"websitetoolbox:1534": 1, "websitetoolbox:1535": 1}


async def test_copies_handled_by_two_different_workers_are_one_event(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    first, second = await stack.worker(), await stack.worker()
    topic = Topics(namespace).raw("websitetoolbox")
    copies = [(topic, USER_CREATED, raw_headers("websitetoolbox"), partition) for partition in (0, 1, 2)]
    await produce(bootstrap, copies)

    async def both_normalized() -> bool:
        counts = [await metric(w, "hookstream_raw_records_total") for w in (first, second)]
        return sum(counts) == 3 and min(counts) > 0

    await eventually(both_normalized, what="each worker to normalize at least one of the three copies")
    (event,) = await read_topic(bootstrap, Topics(namespace).events, 1)
    assert orjson.loads(event.value)["id"] == "websitetoolbox:1534"

    async def two_duplicates() -> bool:
        return sum([await metric(w, "hookstream_duplicates_total") for w in (first, second)]) == 2

    await eventually(two_duplicates, what="two duplicates counted")
    assert len(await read_topic(bootstrap, Topics(namespace).events, 1)) == 1


@pytest.mark.parametrize(
    ("guarantee", "store"),
    [("at_least_once", "memory://"), ("exactly_once", "memory://"), ("exactly_once", "rocksdb://")],
)
async def test_a_duplicate_after_a_worker_restart_is_still_one_event(
    stack: Stack, bootstrap: str, namespace: str, guarantee: str, store: str
) -> None:
    stack.env.update({"HOOKSTREAM_PROCESSING_GUARANTEE": guarantee, "HOOKSTREAM_STORE": store})
    topic = Topics(namespace).raw("websitetoolbox")
    worker = await stack.worker()
    await produce(bootstrap, [(topic, USER_CREATED, raw_headers("websitetoolbox"), None)])
    await read_topic(bootstrap, Topics(namespace).events, 1)
    assert worker.stop(signal.SIGTERM) == 0

    restarted = await stack.worker()
    await produce(
        bootstrap,
        [
            (topic, USER_CREATED, raw_headers("websitetoolbox"), None),
            (topic, forum_event(1536), raw_headers("websitetoolbox"), None),
        ],
    )

    async def duplicate_counted() -> bool:
        return await metric(restarted, "hookstream_duplicates_total") == 1

    await eventually(duplicate_counted, what="the restarted worker to recognise the duplicate")
    events = await read_topic(bootstrap, Topics(namespace).events, 2)
    assert ids(events) == {"websitetoolbox:1534": 1, "websitetoolbox:1536": 1}
    if store == "rocksdb://":  # handed over in good order: the store was kept, not read again
        took_over = [line for line in restarted.log_text().splitlines() if "took over partition" in line]
        resumed = [line for line in took_over if re.search(r"count=1 records_read=0 resumed_at=\d+$", line)]
        assert resumed, took_over


@pytest.mark.parametrize("guarantee", GUARANTEES)
async def test_raw_records_read_again_leave_one_dead_letter_and_one_event(
    stack: Stack, bootstrap: str, namespace: str, guarantee: str
) -> None:
    """What a crash before Faust's commit does: the normalize stage reads records again. Their event
    and their dead letter both meet their first copies in the dedup stage and are not published twice."""
    stack.env["HOOKSTREAM_PROCESSING_GUARANTEE"] = guarantee
    topics = Topics(namespace)
    raw = TopicPartition(topics.raw("websitetoolbox"), 0)
    worker = await stack.worker()
    headers = raw_headers("websitetoolbox")
    await produce(bootstrap, [(raw.topic, b"{oops", headers, 0), (raw.topic, USER_CREATED, headers, 0)])
    await read_topic(bootstrap, topics.dlq, 1)
    await read_topic(bootstrap, topics.events, 1)
    assert worker.stop(signal.SIGTERM) == 0

    rewind = clients.consumer(
        Settings(kafka_bootstrap=bootstrap), group_id=namespace, enable_auto_commit=False
    )
    await rewind.start()
    try:
        rewind.assign([raw])
        await rewind.commit({raw: 0})  # the normalize stage's group starts over on both records
    finally:
        await rewind.stop()
    restarted = await stack.worker()

    async def both_recognised() -> bool:
        return await metric(restarted, "hookstream_duplicates_total") == 2

    await eventually(both_recognised, what="the dead letter and the event recognised as seen")
    assert await metric(restarted, "hookstream_raw_records_total") == 2, "both were read again"
    assert [record.value for record in await read_all(bootstrap, topics.dlq)] == [b"{oops"]
    assert ids(await read_all(bootstrap, topics.events)) == {"websitetoolbox:1534": 1}


async def test_malformed_records_go_to_the_dead_letter_topic_with_their_reason(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    worker = await stack.worker()
    topics = Topics(namespace)
    poison = [
        (topics.raw("websitetoolbox"), b"\x00\xffnot json", raw_headers("websitetoolbox"), None),
        (
            topics.raw("websitetoolbox"),
            b'{"type": "user.created", "data": {"object": {}}}',
            raw_headers("websitetoolbox"),
            None,
        ),
        (topics.raw("x"), b"{}", {"hs-source": b"carrier-pigeon"}, None),
    ]
    await produce(bootstrap, poison)
    dead = await read_topic(bootstrap, topics.dlq, 3)
    reasons = {record.value: dict(record.headers)["hs-error"] for record in dead}
    assert reasons == {
        b"\x00\xffnot json": b"invalid_json",
        b'{"type": "user.created", "data": {"object": {}}}': b"missing_id",
        b"{}": b"unknown_source",
    }
    for record in dead:
        headers = dict(record.headers)
        assert headers["hs-origin"].count(b"/") == 2
        assert headers["hs-error-detail"]
    assert (
        await metric(worker, "hookstream_dead_letters_total", source="websitetoolbox", reason="invalid_json")
        == 1
    )
    assert (
        await metric(worker, "hookstream_dead_letters_total", source="unknown", reason="unknown_source") == 1
    )


async def test_one_hootsuite_array_of_three_is_three_events_in_order_for_their_subject(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    stack.env["HOOKSTREAM_HOOTSUITE_EVENTS_TOKEN"] = EVENTS_TOKEN
    receivers = await stack.receivers()
    await stack.worker()
    states = ["PENDING_APPROVAL", "SCHEDULED", "SENT"]
    batch = [
        {
            "seq_no": str(100 + n),
            "type": "com.hootsuite.messages.event.v1",
            "data": {
                "state": state,
                "organization": {"id": "814203"},
                "message": {"id": "m-1"},
                "timestamp": f"2026-11-28T15:0{n}:00Z",
            },
        }
        for n, state in enumerate(states)
    ]
    async with aiohttp.ClientSession() as session:
        url = f"{receivers.url}/webhooks/hootsuite/events/{EVENTS_TOKEN}"
        async with session.post(
            url, data=orjson.dumps(batch), headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 200
    events = await read_topic(bootstrap, Topics(namespace).events, 3)
    assert [record.key for record in events] == [b"message/m-1"] * 3
    assert [orjson.loads(record.value)["type"] for record in events] == [
        "com.hootsuite.message.pending_approval",
        "com.hootsuite.message.scheduled",
        "com.hootsuite.message.sent",
    ]
    assert [orjson.loads(record.value)["hsseq"] for record in events] == ["100", "101", "102"]


async def test_every_raw_record_is_an_event_a_duplicate_a_ping_or_a_dead_letter(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    topics = Topics(namespace)
    forum, hootsuite = topics.raw("websitetoolbox"), topics.raw("hootsuite")
    ping = b'[{"seq_no": "1", "type": "com.hootsuite.ping.event.v1", "data": {}}]'
    records = [(forum, forum_event(n, user_id=n), raw_headers("websitetoolbox"), None) for n in range(40)]
    records += [(forum, forum_event(n, user_id=n), raw_headers("websitetoolbox"), None) for n in range(10)]
    records += [(hootsuite, ping, raw_headers("hootsuite", route="events"), None) for _ in range(5)]
    records += [(forum, b"<html>not json</html>", raw_headers("websitetoolbox"), None) for _ in range(5)]
    stack.create_topics()
    await produce(bootstrap, records)
    worker = await stack.worker()

    async def accounted() -> dict[str, float] | None:
        counts = {
            name: await metric(worker, f"hookstream_{name}_total")
            for name in ("raw_records", "events_published", "duplicates", "pings", "dead_letters")
        }
        outcomes = (
            counts["events_published"] + counts["duplicates"] + counts["pings"] + counts["dead_letters"]
        )
        return counts if counts["raw_records"] == len(records) and outcomes == len(records) else None

    counts = await eventually(accounted, what="all 60 raw records accounted for")
    assert counts == {
        "raw_records": 60,
        "events_published": 40,
        "duplicates": 10,
        "pings": 5,
        "dead_letters": 5,
    }
    assert len(await read_all(bootstrap, topics.events)) == 40
    assert len(await read_all(bootstrap, topics.dlq)) == 5


async def test_exactly_once_survives_a_sigkill_mid_stream(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    stack.env["HOOKSTREAM_PROCESSING_GUARANTEE"] = "exactly_once"
    topics = Topics(namespace)
    total = 3000
    stack.create_topics()
    await produce(
        bootstrap,
        [
            (topics.raw("websitetoolbox"), forum_event(n, user_id=n), raw_headers("websitetoolbox"), None)
            for n in range(total)
        ],
    )
    victim = await stack.worker()

    async def midway() -> bool:
        return await metric(victim, "hookstream_events_published_total") >= total // 5

    await eventually(midway, what="the first worker to publish a fifth of the events")
    victim.stop(signal.SIGKILL)
    await stack.worker()

    async def all_committed() -> bool:
        return await caught_up(bootstrap, f"{namespace}-dedup", topics.keyed) and await caught_up(
            bootstrap, namespace, topics.raw("websitetoolbox")
        )

    await eventually(all_committed, timeout=120, what="both stages to commit everything after the restart")
    published = ids(await read_all(bootstrap, topics.events))
    assert len(published) == total, "no event lost"
    assert max(published.values()) == 1, "no event twice (read_committed)"
