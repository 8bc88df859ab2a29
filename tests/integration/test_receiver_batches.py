"""The receivers' shared record batches against the real broker: the requests of one event-loop turn go
out together and land where Kafka's own partitioning puts them; batches fit the topic's max.message.bytes
and a record too large for it fails alone (its request 503, the others of its turn 200); a delivery given
up, or past its deadline, before its batch is built is never written."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import murmur2

from hookstream.kafka import (
    DurableProducer,
    TopicSpec,
    ensure_topics,
    max_record_bytes,
    topic_admin,
    topic_spec,
)
from hookstream.settings import Settings
from hookstream.topics import Topics
from receivers.app import make_app
from receivers.batching import Batcher
from receivers.delivery import Delivery
from receivers.metrics import ReceiverMetrics
from receivers.sink import KafkaSink
from receivers.sources import enabled_sources
from tests.integration.harness import eventually, read_all, serving
from tests.support import FORUM_TOKEN, SENDERS

SMALL_TOPIC_BYTES = 2000  # the topic's max.message.bytes: a 5,000-byte body is refused for good


@contextlib.asynccontextmanager
async def batching(settings: Settings, topic: str, limit: int | None = None) -> AsyncIterator[Batcher]:
    producer = DurableProducer(settings, role="receiver", linger_ms=0)
    await producer.start()
    batcher = Batcher(producer, {topic: limit or max_record_bytes(settings)})
    try:
        yield batcher
    finally:
        await producer.stop()
        await batcher.close()


async def forum_topic(
    bootstrap: str, namespace: str, *, max_message_bytes: int | None = None
) -> tuple[Settings, str]:
    """This test's settings and its forum raw topic, created; with `max_message_bytes`, one partition
    taking batches of at most that size."""
    settings = Settings(kafka_bootstrap=bootstrap, namespace=namespace)
    topic = Topics(namespace).raw("websitetoolbox")
    small = TopicSpec(topic, 1, None, {"max.message.bytes": str(max_message_bytes)})
    await ensure_topics(settings, [topic_spec(settings, topic) if max_message_bytes is None else small])
    return settings, topic


def raw(topic: str, value: bytes, key: bytes | None = None) -> Delivery:
    return Delivery(topic=topic, value=value, key=key, headers=(("hs-source", b"websitetoolbox"),))


def later() -> float:
    """A deadline no acknowledgement from the test broker comes near."""
    return asyncio.get_running_loop().time() + 60


async def test_one_turns_deliveries_share_a_partition_and_keyed_ones_land_where_kafka_puts_them(
    bootstrap: str, namespace: str
) -> None:
    settings, topic = await forum_topic(bootstrap, namespace)
    async with batching(settings, topic) as batcher:
        first = [batcher.put(raw(topic, b"first-%d" % n), later()) for n in range(20)]
        keyed = [batcher.put(raw(topic, b"keyed-%d" % n, key=b"msg_%d" % n), later()) for n in range(12)]
        await asyncio.gather(*first, *keyed)
        await batcher.put(raw(topic, b"second"), later())

    records = sorted(await read_all(bootstrap, topic), key=lambda record: (record.partition, record.offset))
    where = {record.value: record.partition for record in records}
    assert len(records) == 33
    (shared,) = {where[b"first-%d" % n] for n in range(20)}
    in_shared = [record.value for record in records if record.value.startswith(b"first-")]
    assert in_shared == [b"first-%d" % n for n in range(20)], "arrival order kept in the partition"
    assert where[b"second"] != shared, "the next flush's keyless deliveries go to the next partition"
    for n in range(12):
        expected = (murmur2(b"msg_%d" % n) & 0x7FFFFFFF) % settings.topic_partitions
        assert where[b"keyed-%d" % n] == expected


async def test_batches_fit_the_topic_and_a_record_too_large_for_it_fails_alone_before_it_is_sent(
    bootstrap: str, namespace: str
) -> None:
    settings, topic = await forum_topic(bootstrap, namespace, max_message_bytes=SMALL_TOPIC_BYTES)
    async with topic_admin(settings) as admin:
        (limit,) = (await admin.max_message_bytes([topic])).values()
    assert limit == SMALL_TOPIC_BYTES
    values = [b"%d" % n * 300 for n in range(10)]  # 3,000 bytes in all: more than one batch takes
    values.insert(5, b"b" * 5000)
    async with batching(settings, topic, limit) as batcher:
        results = await asyncio.gather(
            *(batcher.put(raw(topic, v), later()) for v in values), return_exceptions=True
        )
    assert isinstance(results.pop(5), MessageSizeTooLargeError)
    assert results == [None] * 10, "the rest of the turn lands, in batches the topic takes"
    del values[5]
    assert [record.value for record in await read_all(bootstrap, topic)] == values


async def test_a_delivery_given_up_before_its_batch_is_built_is_never_written(
    bootstrap: str, namespace: str
) -> None:
    settings, topic = await forum_topic(bootstrap, namespace)
    async with batching(settings, topic) as batcher:
        batcher.put(raw(topic, b"given up"), later()).cancel()
        await batcher.put(raw(topic, b"kept"), later())
    assert [record.value for record in await read_all(bootstrap, topic)] == [b"kept"]


async def test_a_delivery_past_its_deadline_fails_with_timeout_and_is_never_written(
    bootstrap: str, namespace: str
) -> None:
    settings, topic = await forum_topic(bootstrap, namespace)
    async with batching(settings, topic) as batcher:
        now = asyncio.get_running_loop().time()
        kept = batcher.put(raw(topic, b"kept"), later())
        overdue = batcher.put(raw(topic, b"overdue"), now)  # its batch is built a linger later
        with pytest.raises(TimeoutError):
            await overdue
        await kept
    assert [record.value for record in await read_all(bootstrap, topic)] == [b"kept"]


async def test_over_http_the_refused_request_is_503_counted_and_the_rest_of_its_turn_is_200(
    bootstrap: str, namespace: str
) -> None:
    settings = Settings.from_env(
        {**SENDERS, "HOOKSTREAM_KAFKA_BOOTSTRAP": bootstrap, "HOOKSTREAM_NAMESPACE": namespace}
    )
    _, topic = await forum_topic(bootstrap, namespace, max_message_bytes=SMALL_TOPIC_BYTES)
    metrics = ReceiverMetrics()
    app = make_app(settings, enabled_sources(settings), KafkaSink(settings), metrics)
    async with serving(app) as url, aiohttp.ClientSession() as session:

        async def status(path: str, body: bytes = b"") -> int:
            method = session.post if body else session.get
            async with method(f"{url}{path}", data=body) as response:
                return response.status

        async def ready() -> bool:
            return await status("/readyz") == 200

        await eventually(ready, what="the receivers to reach Kafka")
        route = f"/webhooks/websitetoolbox/{FORUM_TOKEN}"
        bodies = [b'{"n": %d}' % n for n in range(8)] + [b'{"big": "%s"}' % (b"x" * 5000)]
        statuses = await asyncio.gather(*(status(route, body) for body in bodies))
    assert statuses == [200] * 8 + [503]
    refused = metrics.registry.get_sample_value(
        "hookstream_rejections_total", {"source": "websitetoolbox", "reason": "kafka_unavailable"}
    )
    assert refused == 1
    assert sorted(record.value for record in await read_all(bootstrap, topic)) == sorted(bodies[:8])
