"""What one poll's records of one input partition come to in the dedup stage: which events are first
seen, the records to publish, the state record, and what to count once the batch has committed.

Pure: the stage (processor/dedup_stage.py) decides a batch, then drops the outputs to topics that can be
no topic (`without`) and turns events Kafka refused for good into dead letters (`dead_lettering`), and
counts a batch only after Kafka has it, so a batch tried again is never counted twice.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from aiokafka import TopicPartition

from hookstream import headers as H
from hookstream.topics import SOURCES, Topics, Unroutable
from processor.metrics import ProcessorMetrics
from processor.outputs import Output, published, unwritable
from processor.seen import SeenStore, dedup_key, encode_seen

Record: TypeAlias = Any  # aiokafka's ConsumerRecord[bytes, bytes]; aiokafka ships no type information


@dataclass(frozen=True)
class Batch:
    tp: TopicPartition
    records: list[Record]
    fresh: dict[str, Record]  # first-seen dedup key → its record
    outputs: list[Output]
    state: list[Output]  # the state record with the fresh keys, if any
    now_ms: int
    duplicates: Counter[str]  # source → copies not published again
    unroutable: Counter[str]  # reason → events that got no topic of their own
    unwritable: frozenset[str] = frozenset()  # dedup keys of the events dead-lettered here
    letters: tuple[Output, ...] = ()  # their dead letters, in place of all their outputs

    @property
    def offsets(self) -> dict[TopicPartition, int]:
        return {self.tp: self.records[-1].offset + 1}

    def without(self, unroutable: Mapping[str, Unroutable]) -> Batch:
        """The batch without outputs to topics that can be no topic, each one counted."""
        dropped = Counter(unroutable[o.topic].value for o in self.outputs if o.topic in unroutable)
        if not dropped:
            return self
        kept = [output for output in self.outputs if output.topic not in unroutable]
        return dataclasses.replace(self, outputs=kept, unroutable=self.unroutable + dropped)

    def dead_lettering(self, refusals: Mapping[str, str], dlq: str) -> Batch:
        """The batch with the events of `refusals` (dedup key → the refusal) as dead letters, in place of
        all their outputs; events dead-lettered already stay as they are."""
        keys = (refusals.keys() & self.fresh.keys()) - self.unwritable if refusals else set()
        if not keys:
            return self
        records = {id(self.fresh[key]) for key in keys}
        return dataclasses.replace(
            self,
            outputs=[output for output in self.outputs if id(output.of) not in records],
            unwritable=self.unwritable | keys,
            letters=self.letters + tuple(unwritable(dlq, self.fresh[key], refusals[key]) for key in keys),
        )

    def count(self, metrics: ProcessorMetrics) -> None:
        """Count what this batch published, once Kafka has it."""
        for source, copies in self.duplicates.items():
            metrics.duplicates.labels(source).inc(copies)
        for reason, events in self.unroutable.items():
            metrics.unroutable.labels(reason).inc(events)
        published = Counter[str]()  # type → events: one increment a type, not one an event
        for key, record in self.fresh.items():
            headers = dict(record.headers)
            if key in self.unwritable:
                metrics.dead_letters.labels(source_of(headers), "unwritable").inc()
            elif H.ERROR not in headers:  # a dead letter of the normalize stage, which counted it
                published[headers.get(H.EVENT_TYPE, b"").decode()] += 1
                received_at = int(headers.get(H.RECEIVED_AT, b"0") or 0)
                metrics.event_latency.observe(max(0, self.now_ms - received_at) / 1000)
        for event_type, events in published.items():
            metrics.events_published.labels(metrics.event_type(event_type)).inc(events)


def decide(
    tp: TopicPartition,
    records: list[Record],
    seen: SeenStore,
    now_ms: int,
    topics: Topics,
    pending: Container[str] = frozenset(),
) -> Batch:
    """Which of `records` are first seen (by event id within the window, or first seen by a batch not
    committed yet: `pending`), and what they and the state record become."""
    seen.expire(now_ms)
    fresh: dict[str, Record] = {}
    outputs: list[Output] = []
    duplicates, unroutable = Counter[str](), Counter[str]()
    for record in records:
        headers = dict(record.headers)
        key = event_key(headers)
        if key in fresh or key in pending or seen.seen(key, now_ms):
            duplicates[source_of(headers)] += 1
            continue
        fresh[key] = record
        outputs.extend(published(record))
        unroutable.update(reason for reason in headers.get(H.UNROUTABLE, b"").decode().split(",") if reason)
    state = [Output(topics.seen, None, encode_seen(now_ms, fresh), partition=tp.partition)] if fresh else []
    return Batch(tp, records, fresh, outputs, state, now_ms, duplicates, unroutable)


def event_key(headers: Mapping[str, bytes]) -> str:
    """The dedup key of a keyed record: its event id, as the state keeps it."""
    return dedup_key(headers.get(H.EVENT_ID, b"").decode("utf-8", "replace"))


def source_of(headers: Mapping[str, bytes]) -> str:
    """The record's source as a metrics label: one of ours, or `unknown`."""
    source = headers.get(H.SOURCE, b"").decode("ascii", "replace")
    return source if source in SOURCES else "unknown"
