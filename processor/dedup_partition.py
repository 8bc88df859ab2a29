"""What the dedup stage holds per input partition: its state, its transactional producer and open
transaction under exactly_once, and the batches polled from it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiokafka import AIOKafkaProducer, TopicPartition

from processor.outputs import Output
from processor.seen import SeenStore

Record: TypeAlias = Any  # aiokafka's ConsumerRecord[bytes, bytes]; aiokafka ships no type information
# How long an exactly_once transaction gathers polls before it commits: what Kafka Streams uses
# (commit.interval.ms under exactly_once), and what read_committed consumers wait at most for it.
TRANSACTION_INTERVAL_S = 0.1


@dataclass
class Partition:
    """What the stage holds for one assigned input partition."""

    seen: SeenStore
    producer: AIOKafkaProducer | None  # the partition's transactional producer under exactly_once
    open: Transaction | None = None  # exactly_once: the transaction gathering this partition's polls

    def knows(self, event_id: str, now_ms: int) -> bool:
        """Seen within the window, or first seen in the open transaction."""
        return self.seen.seen(event_id, now_ms) or (self.open is not None and event_id in self.open.fresh)

    async def release(self, handed_over_at: int | None = None) -> None:
        """Let go; `handed_over_at` (the state partition's end, all of it in `seen`) keeps a disk store
        for the next owner on this disk."""
        self.seen.close(handed_over_at)
        if self.producer is not None:
            await self.producer.stop()


@dataclass(frozen=True)
class Batch:
    """One poll's records of one input partition, and what they come to."""

    tp: TopicPartition
    partition: Partition
    records: list[Record]
    fresh: dict[str, Record]  # first-seen event id → its record
    outputs: list[Output]
    state: list[Output]  # the state record with the fresh ids, if any
    now_ms: int

    @property
    def offsets(self) -> dict[TopicPartition, int]:
        return {self.tp: self.records[-1].offset + 1}


@dataclass
class Transaction:
    """An open exactly_once transaction of one partition: the batches it holds, their acknowledgements."""

    started_s: float
    first_offset: int  # where the partition starts over if this transaction fails
    batches: list[Batch] = field(default_factory=list)
    acks: list[asyncio.Future[Any]] = field(default_factory=list)
    fresh: set[str] = field(default_factory=set)

    def due_in_s(self, now_s: float) -> float:
        """How long until it should commit; 0 or less: now."""
        return self.started_s + TRANSACTION_INTERVAL_S - now_s


def due_now(partitions: dict[int, Partition]) -> list[int]:
    """The partitions whose open transaction should commit now."""
    now_s = time.monotonic()
    return [p for p, part in partitions.items() if part.open is not None and part.open.due_in_s(now_s) <= 0]


def poll_ms(partitions: dict[int, Partition]) -> int:
    """How long a poll may wait: until the first open transaction is due, at most 200 ms."""
    now_s = time.monotonic()
    due_in = [part.open.due_in_s(now_s) for part in partitions.values() if part.open is not None]
    return max(0, int(min(due_in) * 1000)) if due_in else 200
