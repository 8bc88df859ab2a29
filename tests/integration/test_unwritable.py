"""What parses and then cannot be written, on the real broker (SPEC §2 Routing): types and tags that can
be no topic, names that collide, events larger than a topic takes, an output topic that refuses, and a
fuzz of every sender's raw records with canaries. Each is followed by a normal event that must arrive:
nothing a sender sends may stop a partition. The pure parts: tests/unit/test_unwritable.py."""

from __future__ import annotations

import time
from collections import Counter

import aiohttp
import orjson
import pytest
from aiokafka.admin import NewTopic

from hookstream import clients
from hookstream.settings import Settings
from hookstream.topics import Topics
from processor.metrics import ProcessorMetrics
from processor.pipeline import Pipeline
from processor.records import RawRecord
from processor.route import Routes
from tests.fixtures import fixture_bytes
from tests.fuzzing import Mutator, fuzz_records
from tests.integration.harness import (
    DEFAULT_WAIT_S,
    Service,
    Stack,
    caught_up,
    eventually,
    metric,
    produce,
    raw_headers,
    read_all,
)
from tests.support import (
    FORUM_TOKEN,
    HOOTSUITE_SECRET,
    SENDERS,
    X_SECRET,
    forum_event,
    sso_form,
    x_signature,
)

GUARANTEES = ["at_least_once", "exactly_once"]
CANARY_EVERY = 1000  # raw records between the canaries of every raw partition
OUTCOMES = (
    "hookstream_events_published_total",
    "hookstream_duplicates_total",
    "hookstream_pings_total",
    "hookstream_dead_letters_total",
)


def x_post(post_id: str, tag: str) -> bytes:
    post = orjson.loads(fixture_bytes("x/filtered_stream_post.json"))
    post["data"]["id"] = post_id
    post["matching_rules"] = [{"id": "1", "tag": tag}]
    return orjson.dumps(post)


def x_tweet_create(post_id: str) -> bytes:
    batch = orjson.loads(fixture_bytes("x/account_activity_tweet_create.json"))
    element = batch["tweet_create_events"][0] | {"id": int(post_id), "id_str": post_id}
    return orjson.dumps(batch | {"tweet_create_events": [element]})


def standard(event_type: str, subject: str) -> bytes:
    return orjson.dumps({"type": event_type, "subject": subject, "data": {"id": "inv_1"}})


async def deliver(url: str, body: bytes, headers: dict[str, str] | None = None) -> None:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        assert response.status == 200, await response.text()


async def accounted(
    worker: Service, raw: int, outcomes: int | None = None, timeout: float = DEFAULT_WAIT_S
) -> dict[str, float]:
    """Each count, once the worker has read `raw` raw records and counted `outcomes` (default: one a
    record) events, duplicates, pings and dead letters: nothing short of that, and nothing beyond."""
    counts: dict[str, float] = {}

    async def counted() -> bool:
        counts.update({name: await metric(worker, name) for name in OUTCOMES})
        read = await metric(worker, "hookstream_raw_records_total")
        return read == raw and sum(counts.values()) >= (outcomes or raw)

    what = f"{raw} raw records read and {outcomes or raw} outcomes counted"
    await eventually(counted, what=what, timeout=timeout)
    assert sum(counts.values()) == (outcomes or raw), counts
    return counts


@pytest.mark.parametrize("guarantee", GUARANTEES)
async def test_types_tags_and_sizes_that_can_be_no_topic_stop_nothing(
    stack: Stack, bootstrap: str, namespace: str, guarantee: str
) -> None:
    stack.env.update({**SENDERS, "HOOKSTREAM_PROCESSING_GUARANTEE": guarantee})
    topics = Topics(namespace)
    receivers = await stack.receivers()
    worker = await stack.worker()
    forum_url = f"{receivers.url}/webhooks/websitetoolbox/{FORUM_TOKEN}"
    long_type = orjson.loads(forum_event(2001, user_id=77)) | {"type": "user." + "a" * 240}
    await deliver(forum_url, orjson.dumps(long_type))
    await deliver(forum_url, forum_event(2002, user_id=77))
    for body in (x_post("9001", "q" * 250), x_tweet_create("9001"), x_post("9002", "api.posts")):
        await deliver(
            f"{receivers.url}/webhooks/x", body, {"x-twitter-webhooks-signature": x_signature(X_SECRET, body)}
        )
    body = x_post("9003", "api_posts")
    await deliver(
        f"{receivers.url}/webhooks/x", body, {"x-twitter-webhooks-signature": x_signature(X_SECRET, body)}
    )
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    now, modified = int(time.time()), "2026-11-28 15:00:00"
    oversized = sso_form(HOOTSUITE_SECRET, now, assignmentId="7" * 450_000, modifiedDate=modified)
    await deliver(f"{receivers.url}/webhooks/hootsuite/callback", oversized, form)
    await deliver(
        f"{receivers.url}/webhooks/hootsuite/callback",
        sso_form(HOOTSUITE_SECRET, now, modifiedDate=modified),
        form,
    )
    # A sender named `io` is refused at startup now; a raw record written before that must still be safe.
    io = [
        (
            topics.raw("standard"),
            standard(t, "customer/42"),
            raw_headers("standard", hs_name=b"io", hs_http_webhook_id=m),
            0,
        )
        for t, m in (("internal.keyed", b"m1"), ("invoice.paid", b"m2"))
    ]
    await produce(bootstrap, io)

    counts = await accounted(worker, raw=10)
    assert counts == {
        "hookstream_events_published_total": 9,
        "hookstream_duplicates_total": 0,
        "hookstream_pings_total": 0,
        "hookstream_dead_letters_total": 1,
    }, "every raw record is one event or one dead letter"
    for reason, events in (("too_long", 2), ("collision", 1), ("reserved", 1)):
        assert await metric(worker, "hookstream_unroutable_total", reason=reason) == events, reason
    assert await metric(worker, "hookstream_dead_letters_total", reason="unwritable") == 1

    firehose = Counter(
        orjson.loads(record.value)["id"] for record in await read_all(bootstrap, topics.events)
    )
    assert len(firehose) == 9, firehose
    assert set(firehose.values()) == {1}, f"each once: {firehose}"
    (dead,) = await read_all(bootstrap, topics.dlq)
    assert dead.value == oversized
    assert dict(dead.headers)["hs-error"] == b"unwritable"
    names = await topic_names(bootstrap)
    colliding = {f"{namespace}.x.tag.api.posts", f"{namespace}.x.tag.api_posts"}
    assert len(colliding & names) == 1, "whichever came first has its topic; the other has none"
    assert f"{namespace}.invoice.paid" in names  # `io.` is stripped like `com.`
    assert {n for n in names if n.startswith(f"{namespace}.internal.")} <= {topics.keyed, topics.seen}
    assert len(await read_all(bootstrap, topics.for_type("com.websitetoolbox.user.created"))) == 1


@pytest.mark.parametrize("guarantee", GUARANTEES)
async def test_an_output_topic_that_refuses_an_event_gets_its_dead_letter_and_moves_on(
    stack: Stack, bootstrap: str, namespace: str, guarantee: str
) -> None:
    small = f"{namespace}-crm-small"
    admin = clients.admin(Settings(kafka_bootstrap=bootstrap))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(small, 1, 1, topic_configs={"max.message.bytes": "600"})])
    finally:
        await admin.close()
    routes = stack.workdir / "routes.toml"
    routes.write_text(f'[[route]]\ntype = "com.websitetoolbox.user.*"\ntopics = ["{small}"]\n')
    stack.env.update({"HOOKSTREAM_PROCESSING_GUARANTEE": guarantee})
    stack.create_topics()
    topics = Topics(namespace)
    # Two events of one user meet in one batch of the dedup stage: the topic refuses a batch of two.
    after = orjson.loads(forum_event(3002)) | {"type": "post.created"}
    await produce(
        bootstrap,
        [
            (topics.raw("websitetoolbox"), value, raw_headers("websitetoolbox"), 0)
            for value in (forum_event(3001, user_id=5), forum_event(3003, user_id=5), orjson.dumps(after))
        ],
    )
    worker = await stack.worker(HOOKSTREAM_ROUTES=str(routes))

    counts = await accounted(worker, raw=3)
    assert counts["hookstream_events_published_total"] == 1
    assert counts["hookstream_dead_letters_total"] == 2
    dead = await read_all(bootstrap, topics.dlq)
    assert sorted(orjson.loads(d.value)["id"] for d in dead) == ["websitetoolbox:3001", "websitetoolbox:3003"]
    for letter in dead:
        headers = dict(letter.headers)
        assert headers["hs-error"] == b"unwritable"
        assert small.encode() in headers["hs-error-detail"]
    firehose = [orjson.loads(r.value)["id"] for r in await read_all(bootstrap, topics.events)]
    assert "websitetoolbox:3002" in firehose
    if guarantee == "exactly_once":  # the refusal aborted the transaction: the dead letters stand alone
        assert firehose == ["websitetoolbox:3002"]


def canary(source: str, n: int) -> tuple[bytes, dict[str, bytes], str]:
    """A valid raw record of `source` with its own id, and the id its event must have."""
    if source == "websitetoolbox":
        return forum_event(900_000 + n, user_id=n), raw_headers(source), f"websitetoolbox:{900_000 + n}"
    if source == "x":
        return x_post(f"8{n:08d}", "canary"), raw_headers(source, hs_auth=b"hmac-sha256"), f"x:post:8{n:08d}"
    if source == "hootsuite":
        message = orjson.loads(fixture_bytes("hootsuite/stream_message.json"))
        message["data"]["id"] = f"canary-{n}"
        return orjson.dumps(message), raw_headers(source, route="events"), f"hootsuite:stream:canary-{n}"
    headers = raw_headers(source, hs_name=b"acme", hs_http_webhook_id=f"canary-{n}".encode())
    return standard("canary.sent", f"canary/{n}"), headers, f"standard:acme:canary-{n}"


async def test_fuzzed_raw_records_of_every_sender_lose_nothing_and_stop_nothing(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    """Seeded mutations of every sender's real payloads and headers, straight onto the raw topics, with a
    valid canary on every raw partition before, amid and after them: every canary arrives, every raw
    record is accounted for, and none is a normalizer bug."""
    stack.env.update({"HOOKSTREAM_PROCESSING_GUARANTEE": "exactly_once"})
    stack.create_topics()
    topics, partitions = Topics(namespace), 3
    mutator, total = Mutator(seed=1201), fuzz_records(1500)
    records: list[tuple[str, bytes, dict[str, bytes], int | None]] = []
    canaries: set[str] = set()
    for n, delivery in enumerate(mutator.deliveries(total, int(time.time() * 1000))):
        if n % CANARY_EVERY == 0 or n == total - 1:
            for source in ("websitetoolbox", "x", "hootsuite", "standard"):
                for partition in range(partitions):
                    value, headers, event_id = canary(source, len(canaries))
                    records.append((topics.raw(source), value, headers, partition))
                    canaries.add(event_id)
        records.append((topics.raw(delivery.source), delivery.value, delivery.headers, n % partitions))
    await produce(bootstrap, records)
    worker = await stack.worker()

    outcomes, timeout = expected_outcomes(records), max(DEFAULT_WAIT_S, len(records) / 100)
    counts = await accounted(worker, raw=len(records), outcomes=outcomes, timeout=timeout)
    assert await metric(worker, "hookstream_dead_letters_total", reason="normalizer_error") == 0
    arrived = {orjson.loads(record.value)["id"] for record in await read_all(bootstrap, topics.events)}
    assert canaries <= arrived, f"canaries missing: {sorted(canaries - arrived)[:5]}"
    assert await caught_up(bootstrap, f"{namespace}-dedup", topics.keyed)
    print(f"fuzz: {len(records)} raw records ({len(canaries)} canaries), outcomes {counts}")


def expected_outcomes(records: list[tuple[str, bytes, dict[str, bytes], int | None]]) -> int:
    """How many outcomes (events, pings, dead letters; duplicates among the events) the records come to,
    by the normalize stage's own pure part: the worker must account for every one of them."""
    metrics = ProcessorMetrics()
    pipeline = Pipeline(Settings(), metrics, Routes(Topics()))
    outputs = sum(
        len(pipeline.outputs_of(RawRecord(topic, 0, n, None, value, headers, int(time.time() * 1000))))
        for n, (topic, value, headers, _) in enumerate(records)
    )
    pings = sum(
        sample.value
        for family in metrics.pings.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    )
    return outputs + int(pings)


async def topic_names(bootstrap: str) -> set[str]:
    admin = clients.admin(Settings(kafka_bootstrap=bootstrap))
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()
