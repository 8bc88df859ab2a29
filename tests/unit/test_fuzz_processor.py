"""The processor's pure stages over fuzzed raw records of every sender (tests/fuzzing.py): nothing a
sender sends is a normalizer bug, names a topic Kafka refuses or one of ours, or is too large to write."""

from __future__ import annotations

from collections import Counter

import orjson
from aiokafka import TopicPartition

from hookstream import headers as H
from hookstream.kafka import max_record_bytes
from hookstream.settings import Settings
from hookstream.topics import Topics, kafka_refuses
from processor.dedup_batch import decide
from processor.dedup_stage import MAX_POLL_RECORDS
from processor.metrics import ProcessorMetrics
from processor.outputs import record_bytes
from processor.pipeline import NORMALIZER_ERROR, Pipeline
from processor.records import RawRecord
from processor.route import Routes
from processor.seen import SeenIds
from tests.contract import assert_publishable
from tests.fuzzing import Mutator, fuzz_records
from tests.unit.rawrecords import RECEIVED_AT_MS

SEED = 20261201


class Keyed:
    """A keyed-topic record as the dedup stage reads it back."""

    def __init__(self, offset: int, key: bytes | None, value: bytes, headers: object) -> None:
        self.topic, self.partition, self.offset = "hookstream.internal.keyed", 0, offset
        self.key, self.value, self.headers = key, value, headers


def test_fuzzed_records_of_every_sender_never_become_a_bug_a_bad_name_or_an_unwritable_record() -> None:
    settings, topics = Settings(), Topics()
    pipeline = Pipeline(settings, ProcessorMetrics(), Routes(topics))
    limit = max_record_bytes(settings)
    reasons: Counter[str] = Counter()
    keyed: list[Keyed] = []
    for offset, delivery in enumerate(Mutator(SEED).deliveries(fuzz_records(4000), RECEIVED_AT_MS)):
        raw = RawRecord(
            f"hookstream.raw.{delivery.source}", 0, offset, delivery.key, delivery.value, delivery.headers, 0
        )
        for output in pipeline.outputs_of(raw):
            headers = dict(output.headers)
            reasons[headers.get(H.ERROR, b"event").decode()] += 1
            assert headers.get(H.ERROR) != NORMALIZER_ERROR.encode(), headers.get(H.ERROR_DETAIL)
            assert record_bytes(output) <= limit
            for topic in headers[H.OUT_TOPICS].decode().split(","):
                assert not kafka_refuses(topic), topic
                assert topic in (topics.events, topics.dlq) or not topics.reserved(topic), topic
            if H.ERROR not in headers:
                assert orjson.loads(output.value)["id"] == headers[H.EVENT_ID].decode()
                assert_publishable(orjson.loads(output.value))  # the consumer contract (SPEC §10)
            keyed.append(Keyed(len(keyed), output.key, output.value, output.headers))
    seen = SeenIds(60_000)
    for start in range(0, len(keyed), MAX_POLL_RECORDS):  # as the dedup stage polls them
        batch = decide(
            TopicPartition(topics.keyed, 0),
            keyed[start : start + MAX_POLL_RECORDS],
            seen,
            RECEIVED_AT_MS,
            topics,
        )
        for output in batch.outputs + batch.state:
            assert record_bytes(output) <= limit
    assert reasons["event"] > len(keyed) // 10, f"the fuzzer must leave many records valid: {reasons}"
    assert len(reasons) > 3, f"and break many others in several ways: {reasons}"
