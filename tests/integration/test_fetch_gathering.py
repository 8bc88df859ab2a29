"""The worker's consumers ask the broker to gather what their rate brings in `GATHER_S` before it answers
a fetch: checked on a real aiokafka consumer, down to the fetch request it would send next."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from hookstream import clients
from hookstream.kafka import ensure_topics, topic_spec
from hookstream.settings import Settings
from processor.fetch_gathering import GATHER_S, MOST_MIN_BYTES, FetchGathering

RECORDS, RECORD_BYTES = 100, 1000


def asked_min_bytes(consumer: AIOKafkaConsumer) -> set[int]:
    """The minimum in each fetch request the consumer would send now."""
    fetcher = consumer._fetcher
    requests, *_ = fetcher._get_actions_per_node(consumer._subscription.subscription.assignment)
    return {request._min_bytes for _, request in requests}


async def test_the_fetch_minimum_follows_the_rate_read_and_stays_one_byte_when_quiet(
    bootstrap: str, namespace: str
) -> None:
    settings = Settings(kafka_bootstrap=bootstrap, namespace=namespace)
    topic = f"{namespace}.gathered"
    await ensure_topics(settings, [topic_spec(settings, topic)])
    producer = clients.producer(settings)
    await producer.start()
    try:
        for n in range(RECORDS):
            await producer.send(topic, b"x" * RECORD_BYTES, key=str(n).encode())
        await producer.flush()
    finally:
        await producer.stop()
    consumer = clients.consumer(
        settings, topic, group_id=f"{namespace}-gathering", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        gathering = FetchGathering(consumer, now_s=0.0)
        polls: list[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]] = []
        read = 0
        while read < RECORDS:
            polled = await consumer.getmany(timeout_ms=5000)
            read += sum(len(records) for records in polled.values())
            gathering.read(polled, now_s=0.5)  # within the first second: nothing changes yet
            polls.append(polled)
        assert asked_min_bytes(consumer) == {1}

        gathering.read({}, now_s=1.0)  # a second in which it read 100 KB
        assert asked_min_bytes(consumer) == {int(RECORDS * RECORD_BYTES * GATHER_S)}

        gathering.read({}, now_s=2.0)  # a quiet second: answered at the first record again
        assert asked_min_bytes(consumer) == {1}

        for polled in polls * 100:  # 10 MB in a second: a burst, not a reason to wait for megabytes
            gathering.read(polled, now_s=2.5)
        gathering.read({}, now_s=3.0)
        assert asked_min_bytes(consumer) == {MOST_MIN_BYTES}
    finally:
        await consumer.stop()
