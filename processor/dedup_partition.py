"""What the dedup stage holds per input partition: its state, and under exactly_once its transactional
producer and the transaction that gathers its polls until it is due (processor/dedup_stage.py)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer, TopicPartition

from processor.dedup_batch import Batch
from processor.outputs import Output
from processor.seen import SeenStore

# How long an exactly_once transaction gathers polls before it commits: Kafka Streams' commit interval
# under exactly_once, and so the most a read_committed consumer waits on it. One commit costs about 2 ms
# of CPU and four requests whatever it holds (measured); a poll at full speed holds a few records a
# partition, so one commit per poll cost more CPU than the records themselves. Under at_least_once the
# state records and offsets go this often too (processor/dedup_stage.py, `_flush`).
COMMIT_INTERVAL_S = 0.1
POLL_MS = 200  # the longest a poll waits when no transaction is open


@dataclass
class Transaction:
    """The batches one partition's polls decided since its last commit, to be written in one Kafka
    transaction when due. Nothing of it is in Kafka before: a read_committed reader would not see it
    sooner, and one send per transaction is fewer requests than one per poll."""

    began_s: float  # monotonic
    first_offset: int  # where the partition starts over if the commit fails and no commit is known
    batches: list[Batch] = field(default_factory=list)
    fresh: set[str] = field(default_factory=set)  # dedup keys first seen here, not committed yet

    @property
    def outputs(self) -> list[Output]:
        return [o for batch in self.batches for o in (*batch.outputs, *batch.letters, *batch.state)]

    @property
    def offsets(self) -> dict[TopicPartition, int]:
        return self.batches[-1].offsets

    def due_in_s(self, now_s: float) -> float:
        """How long until it should commit; 0 or less: now."""
        return self.began_s + COMMIT_INTERVAL_S - now_s


@dataclass
class Partition:
    """What the stage holds for one assigned input partition."""

    seen: SeenStore
    producer: AIOKafkaProducer | None  # the partition's transactional producer under exactly_once
    open: Transaction | None = None  # exactly_once: the transaction gathering this partition's polls

    def gather(self, batch: Batch, now_s: float) -> None:
        """`batch` joins the open transaction, which begins with it if none is open."""
        if self.open is None:
            self.open = Transaction(now_s, batch.records[0].offset)
        self.open.batches.append(batch)
        self.open.fresh.update(batch.fresh)

    @property
    def pending(self) -> set[str]:
        """Dedup keys first seen in the open transaction: seen for the partition's later records, though
        not in `seen` until the transaction commits."""
        return self.open.fresh if self.open is not None else set()

    async def release(self, handed_over_at: int | None = None) -> None:
        """Let go; `handed_over_at` (the state partition's end, all of it in `seen`) keeps a disk store
        for the next owner on this disk. An open transaction is dropped: its records were not committed,
        and are read again."""
        self.open = None
        self.seen.close(handed_over_at)
        if self.producer is not None:
            await self.producer.stop()


def due(partitions: dict[int, Partition], now_s: float) -> list[int]:
    """The partitions whose open transaction should commit now."""
    return [p for p, part in partitions.items() if part.open is not None and part.open.due_in_s(now_s) <= 0]


def poll_ms(partitions: Iterable[Partition], now_s: float) -> int:
    """How long a poll may wait: until the first open transaction is due, at most `POLL_MS`."""
    due_in = [part.open.due_in_s(now_s) for part in partitions if part.open is not None]
    return max(0, min(POLL_MS, math.ceil(min(due_in) * 1000))) if due_in else POLL_MS


def is_open(partitions: Iterable[Partition]) -> bool:
    return any(part.open is not None for part in partitions)
