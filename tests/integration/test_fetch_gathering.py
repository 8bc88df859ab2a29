"""The worker's consumers ask the broker to gather what their rate brings in `GATHER_S` before it answers
a fetch, and let a fetch wait long only when it asks for every partition at a one-byte minimum: checked
on a real aiokafka consumer, down to the fetch request it would send next."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from hookstream import clients
from hookstream.kafka import FETCH_MAX_WAIT_MS, ensure_topics, topic_spec
from hookstream.settings import Settings
from processor.fetch_gathering import GATHER_S, IDLE_FETCH_MAX_WAIT_MS, MOST_MIN_BYTES, FetchGathering

RECORDS, RECORD_BYTES = 100, 1000


def asked(consumer: AIOKafkaConsumer) -> set[tuple[int, int]]:
    """The minimum and the longest wait in each fetch request the consumer would send now."""
    fetcher = consumer._fetcher
    requests, *_ = fetcher._get_actions_per_node(consumer._subscription.subscription.assignment)
    return {(request._min_bytes, request._max_wait_ms) for _, request in requests}


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
            polled = await consumer.getmany(timeout_ms=5000, max_records=1 if not polls else None)
            read += sum(len(records) for records in polled.values())
            gathering.read(polled, now_s=0.5)  # within the first second: no minimum changes yet
            polls.append(polled)
            if len(polls) == 1:  # the first fetch's other records wait in the consumer: a fetch now
                assert consumer._fetcher._records  # leaves their partitions out, so it waits briefly
                consumer._fetcher._get_actions_per_node(consumer._subscription.subscription.assignment)
                assert consumer._fetcher._fetch_max_wait_ms == FETCH_MAX_WAIT_MS
        assert asked(consumer) == {(1, IDLE_FETCH_MAX_WAIT_MS)}, "every partition asked for, at one byte"

        gathering.read({}, now_s=1.0)  # 100 records in a second: fewer than one in GATHER_S
        assert asked(consumer) == {(1, IDLE_FETCH_MAX_WAIT_MS)}

        for polled in polls * 2:  # 200 records, 200 KB in a second
            gathering.read(polled, now_s=1.5)
        gathering.read({}, now_s=2.0)
        assert asked(consumer) == {(int(2 * RECORDS * RECORD_BYTES * GATHER_S), FETCH_MAX_WAIT_MS)}

        gathering.read({}, now_s=3.0)  # a quiet second: answered at the first record again
        assert asked(consumer) == {(1, IDLE_FETCH_MAX_WAIT_MS)}

        for polled in polls * 100:  # 10 MB in a second: a burst, not a reason to wait for megabytes
            gathering.read(polled, now_s=3.5)
        gathering.read({}, now_s=4.0)
        assert asked(consumer) == {(MOST_MIN_BYTES, FETCH_MAX_WAIT_MS)}
    finally:
        await consumer.stop()
