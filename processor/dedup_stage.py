"""Stage two: deduplicate by event id and publish to the downstream topics.

A consume-transform-produce loop of our own over `<ns>.internal.keyed`, in its own consumer group
(`<ns>-dedup`), hosted by the Faust worker. Faust's tables and its exactly-once mode cannot do this job
(../shared/FAUST.md): table expiry forgets nothing restored, and Faust's transactions follow the
*output* partition. Here everything follows the *input* partition p:

- the dedup state of p lives in memory or RocksDB (`HOOKSTREAM_STORE`) and, durably, in partition p
  of `<ns>.internal.seen`: one record per batch with the ids it saw first, deleted by Kafka once older
  than the window, so Kafka forgets what we forget;
- `exactly_once`: one transactional producer per input partition (transactional id `<ns>-dedup-<p>`).
  When p is assigned, the new producer's init fences any zombie owner and aborts its open transaction;
  only then is the state restored (read_committed) and records consumed. Each batch commits its
  outputs, its state records and its input offset in one transaction; memory changes after the commit.
- `at_least_once`: for all partitions of one poll together, outputs are sent and acknowledged, then the
  state records, then the offsets are committed in one request. A crash can publish an event twice,
  never lose one. (One commit per poll, not per partition: the consumer serializes commits, and six of
  them in a row were most of the stage's latency.)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    TopicPartition,
)
from aiokafka.errors import KafkaError, ProducerFenced

from hookstream import headers as H
from hookstream.kafka import (
    FETCH_MAX_WAIT_MS,
    PROCESSOR_BATCH_BYTES,
    DurableProducer,
    TopicAdmin,
    durable_producer,
    topic_spec,
)
from hookstream.settings import Settings
from hookstream.topics import SOURCES, Topics
from processor.metrics import ProcessorMetrics
from processor.outputs import RETRY_BACKOFF_S, Output, published, send, send_all
from processor.seen import SeenStore, encode_seen, open_seen
from processor.state_topic import read_state, state_reader

log = logging.getLogger(__name__)

Record: TypeAlias = Any  # aiokafka's ConsumerRecord[bytes, bytes]; aiokafka ships no type information
MAX_POLL_RECORDS = 1000
RETRY_DELAY_S = 0.5
HAND_OVER_TIMEOUT_S = 5.0  # a stop must not wait on an unreachable broker for its stores' sake


@dataclass
class Partition:
    """What the stage holds for one assigned input partition."""

    seen: SeenStore
    producer: AIOKafkaProducer | None  # the partition's transactional producer under exactly_once

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


class DedupStage(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, settings: Settings, metrics: ProcessorMetrics, state_dir: Path) -> None:
        self._settings = settings
        self._state_dir = state_dir
        self._metrics = metrics
        self._topics = Topics(settings.namespace)
        self._exactly_once = settings.processing_guarantee == "exactly_once"
        self._window_ms = int(settings.dedup_window_s * 1000)
        self.group_id = f"{settings.namespace}-dedup"
        self._partitions: dict[int, Partition] = {}
        self._lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: DurableProducer | None = None
        self._admin: TopicAdmin | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._admin = TopicAdmin(self._settings)
        await self._admin.start()
        if not self._exactly_once:
            self._producer = DurableProducer(
                self._settings, role="dedup", linger_ms=0, max_batch_size=PROCESSOR_BATCH_BYTES
            )
            await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap_servers,
            client_id=f"{self._settings.namespace}-dedup",
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=MAX_POLL_RECORDS,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        self._consumer.subscribe([self._topics.keyed], listener=self)
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="dedup-stage")

    async def stop(self) -> None:
        async with self._lock:  # a batch in hand finishes first: never stop between its outputs and commit
            if self._task is not None:
                self._task.cancel()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        async with self._lock:
            await self._hand_over(list(self._partitions))
            if self._consumer is not None:
                await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        if self._admin is not None:
            await self._admin.close()

    def owned(self) -> list[tuple[str, TopicPartition]]:
        """The partitions this worker's dedup stage owns, with its consumer group."""
        return [(self.group_id, TopicPartition(self._topics.keyed, p)) for p in sorted(self._partitions)]

    # -- rebalance: the consumer calls these between batches, never during one (we hold the lock) --

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        async with self._lock:
            await self._hand_over([tp.partition for tp in revoked if tp.partition in self._partitions])

    async def _hand_over(self, partitions: list[int]) -> None:
        """Release `partitions` in good order: no batch is in hand (we hold the lock), so every state
        record up to the state partitions' ends is in their stores; a disk store keeps that mark."""
        if not partitions:  # the consumer calls this on every rebalance, also with nothing revoked
            return
        on_disk = self._settings.store.startswith("rocksdb://")  # memory does not outlive its owner
        ends = await self._state_ends(partitions) if on_disk else {}
        for p in partitions:
            await self._partitions.pop(p).release(ends.get(p))

    async def _state_ends(self, partitions: list[int]) -> dict[int, int]:
        """The committed end of each state partition; none when Kafka does not say so in time (the next
        owner then rebuilds from the topic)."""
        state = [TopicPartition(self._topics.seen, p) for p in partitions]
        try:
            async with asyncio.timeout(HAND_OVER_TIMEOUT_S), state_reader(self._settings) as reader:
                return {tp.partition: end for tp, end in (await reader.end_offsets(state)).items()}
        except (KafkaError, TimeoutError) as exc:
            log.warning("state ends unknown; stores not handed over", extra={"error": repr(exc)})
            return {}

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        async with self._lock:
            for tp in assigned:
                if tp.partition not in self._partitions:
                    self._partitions[tp.partition] = await self._take_over(tp.partition)

    async def _take_over(self, partition: int) -> Partition:
        """`_try_take_over` until it succeeds. An assigned partition left untaken would have its records
        fetched and skipped, never committed; so while Kafka cannot serve the take-over (a leader or a
        coordinator moving, too few in-sync replicas), it is retried: all of it is transient."""
        for attempt in itertools.count():
            try:
                return await self._try_take_over(partition)
            except KafkaError as exc:
                log.warning("take-over failed; retrying", extra={"partition": partition, "error": repr(exc)})
                await asyncio.sleep(RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)])
        raise AssertionError("unreachable")  # pragma: no cover - itertools.count() does not end

    async def _try_take_over(self, partition: int) -> Partition:
        """Fence the previous owner first (exactly_once), then restore what it committed."""
        producer = None
        if self._exactly_once:
            producer = durable_producer(
                self._settings,
                role=f"dedup-{partition}",
                linger_ms=0,
                transactional_id=f"{self._settings.namespace}-dedup-{partition}",
                max_batch_size=PROCESSOR_BATCH_BYTES,
            )
            await producer.start()
        try:
            return Partition(await self._restore(partition), producer)
        except BaseException:
            if producer is not None:
                await producer.stop()
            raise

    async def _restore(self, partition: int) -> SeenStore:
        """The state partition's committed ids within the window: all of them, or only those after the
        hand-over offset of a disk store handed over in good order."""
        seen = open_seen(self._settings.store, self._window_ms, self._state_dir, self._topics.seen, partition)
        try:
            async with state_reader(self._settings) as reader:
                read, resumed_at = await read_state(
                    reader, TopicPartition(self._topics.seen, partition), seen
                )
        except BaseException:
            seen.close()  # without a hand-over: a half-read store is worth nothing
            raise
        log.info(
            "took over partition",
            extra={
                "partition": partition,
                "count": len(seen),
                "records_read": read,
                "resumed_at": resumed_at,
            },
        )
        return seen

    # -- the loop --

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            polled = await self._consumer.getmany(timeout_ms=200, max_records=MAX_POLL_RECORDS)
            async with self._lock:
                now_ms = _now_ms()
                batches = [
                    self._decide(tp, partition, records, now_ms)
                    for tp, records in polled.items()
                    if records and (partition := self._partitions.get(tp.partition)) is not None
                ]
                if not batches:
                    continue
                if self._exactly_once:  # partitions are independent: their transactions overlap
                    await asyncio.gather(*(self._commit_transaction(batch) for batch in batches))
                else:
                    await self._commit_in_order(batches)

    def _decide(self, tp: TopicPartition, partition: Partition, records: list[Record], now_ms: int) -> Batch:
        """Which of `records` are first seen, and what they and the state record become."""
        partition.seen.expire(now_ms)
        fresh: dict[str, Record] = {}
        outputs: list[Output] = []
        for record in records:
            event_id = dict(record.headers).get(H.EVENT_ID, b"").decode("utf-8", "replace")
            if partition.seen.seen(event_id, now_ms) or event_id in fresh:
                self._metrics.duplicates.labels(_source(record)).inc()
                continue
            fresh[event_id] = record
            outputs.extend(published(record.key, record.value, record.headers))
        state = (
            [Output(self._topics.seen, None, encode_seen(now_ms, fresh), partition=tp.partition)]
            if fresh
            else []
        )
        return Batch(tp, partition, records, fresh, outputs, state, now_ms)

    async def _commit_transaction(self, batch: Batch) -> None:
        """exactly_once: the batch's outputs, state record and input offset in one transaction."""
        producer = batch.partition.producer
        assert producer is not None
        try:
            await self._ensure_topics({o.topic for o in batch.outputs})
            await producer.begin_transaction()
            try:
                await asyncio.gather(*(ack for ack, _ in await send(producer, batch.outputs + batch.state)))
                await producer.send_offsets_to_transaction(batch.offsets, self.group_id)
            except BaseException:
                await _abort_quietly(producer)
                raise
            await producer.commit_transaction()
        except ProducerFenced:
            log.warning(
                "fenced: another worker owns this partition now", extra={"partition": batch.tp.partition}
            )
            await batch.partition.release()
            self._partitions.pop(batch.tp.partition, None)
            return
        except KafkaError as exc:
            log.warning(
                "batch not committed; retrying", extra={"partition": batch.tp.partition, "error": repr(exc)}
            )
            await asyncio.sleep(RETRY_DELAY_S)
            await self._start_over(batch)
            return
        self._remember(batch)

    async def _commit_in_order(self, batches: list[Batch]) -> None:
        """at_least_once, for every partition of one poll together: outputs acknowledged, then the state
        records, then one offset commit. The ids count as seen once their state records are in Kafka, so
        a failed commit repeats the batch as duplicates, not as events."""
        assert self._producer is not None
        assert self._consumer is not None
        outputs = [output for batch in batches for output in batch.outputs]
        try:
            await self._ensure_topics({o.topic for o in outputs})
            await send_all(self._producer, outputs)
            await send_all(self._producer, [output for batch in batches for output in batch.state])
            for batch in batches:
                self._remember(batch)
            await self._consumer.commit({tp: o for batch in batches for tp, o in batch.offsets.items()})
        except KafkaError as exc:
            log.warning("offsets not committed; reading them again", extra={"error": repr(exc)})
            await asyncio.sleep(RETRY_DELAY_S)
            assigned = self._consumer.assignment()
            for batch in batches:
                if batch.tp in assigned:
                    self._consumer.seek(batch.tp, batch.records[0].offset)

    def _remember(self, batch: Batch) -> None:
        for event_id in batch.fresh:
            batch.partition.seen.add(event_id, batch.now_ms)
        self._count_published(batch.fresh.values(), batch.now_ms)

    async def _ensure_topics(self, topics: set[str]) -> None:
        """Create missing output topics (routes create them on first use). `send` then waits for their
        metadata before it hands the producer any batch, which a transaction needs."""
        assert self._admin is not None
        await self._admin.ensure(topic_spec(self._settings, name) for name in topics)

    async def _start_over(self, batch: Batch) -> None:
        """exactly_once: start the partition over from its last commit, with a new producer (which aborts
        whatever the failed one left open) and the state restored from what was committed."""
        assert self._consumer is not None
        await batch.partition.release()
        self._partitions[batch.tp.partition] = await self._take_over(batch.tp.partition)
        committed = None
        with contextlib.suppress(KafkaError):  # unknown now: the batch's first offset, its last commit
            committed = await self._consumer.committed(batch.tp)
        self._consumer.seek(batch.tp, committed if committed is not None else batch.records[0].offset)

    def _count_published(self, records: Iterable[Record], now_ms: int) -> None:
        for record in records:
            headers = dict(record.headers)
            if H.ERROR in headers:  # a dead letter: the normalize stage counted it
                continue
            event_type = headers.get(H.EVENT_TYPE, b"").decode()
            self._metrics.events_published.labels(self._metrics.event_type(event_type)).inc()
            received_at = int(headers.get(H.RECEIVED_AT, b"0") or 0)
            self._metrics.event_latency.observe(max(0, now_ms - received_at) / 1000)


async def _abort_quietly(producer: AIOKafkaProducer) -> None:
    try:
        await producer.abort_transaction()
    except KafkaError as exc:
        log.warning("could not abort a transaction", extra={"error": repr(exc)})


def _source(record: Record) -> str:
    source = dict(record.headers).get(H.SOURCE, b"").decode("ascii", "replace")
    return source if source in SOURCES else "unknown"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
