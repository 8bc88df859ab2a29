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
  only then is the state restored (read_committed) and records consumed. A transaction gathers the
  batches the partition's polls decide for `COMMIT_INTERVAL_S` (Kafka Streams' commit interval
  under exactly_once), then writes their outputs, state records and input offset in one Kafka
  transaction: one commit costs about 2 ms of CPU whatever it holds, and a poll at full speed holds a
  few records a partition. Memory and metrics change after the commit; until then the gathered ids
  count as seen for the partition's later records. A hand-over (revocation, stop) commits first.
- `at_least_once`: for all partitions of one poll together, outputs are sent and acknowledged; then
  the batches count as seen and published, and the next poll goes on. Every `COMMIT_INTERVAL_S`, and
  at a hand-over, the state records and the offsets of what is published go side by side (one produce,
  one commit request), beside the polls. A crash can publish an event twice, never lose one. (The state
  and the commit after each poll's outputs, two round trips, had been two thirds of the stage's time
  and its records waited for them: 21 ms of the hop at 1,000 events/s.)

Nothing a sender sends stops a partition here: a topic that can be no topic (a name that collides with an
existing one, one the broker refuses to create) is left out of the event's topics and counted as
unroutable; an event Kafka refuses for good on one of its topics becomes a dead letter (`unwritable`) in
its place, in the same transaction as its input offset under exactly_once (the refusal aborts the open
transaction, and the partition starts over from its last commit). Metrics count what committed: a batch
tried again is counted once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    TopicPartition,
)
from aiokafka.errors import KafkaError, ProducerFenced

from hookstream import clients
from hookstream.kafka import (
    FETCH_MAX_WAIT_MS,
    PROCESSOR_BATCH_BYTES,
    DurableProducer,
    TopicAdmin,
    durable_producer,
    topic_spec,
)
from hookstream.refusals import refused_for_good
from hookstream.settings import Settings
from hookstream.topics import Topics, Unroutable
from processor.dedup_batch import Batch, decide, event_key
from processor.dedup_partition import (
    COMMIT_INTERVAL_S,
    Partition,
    Transaction,
    due,
    is_open,
    poll_ms,
)
from processor.fetch_gathering import FetchGathering
from processor.metrics import ProcessorMetrics
from processor.outputs import RETRY_BACKOFF_S, Output, Refusal, send, send_all
from processor.state_topic import restore, state_ends

log = logging.getLogger(__name__)

MAX_POLL_RECORDS = 1000
RETRY_DELAY_S = 0.5


class DedupStage(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, settings: Settings, metrics: ProcessorMetrics, state_dir: Path) -> None:
        self._settings = settings
        self._state_dir = state_dir
        self._metrics = metrics
        self._topics = Topics(settings.namespace)
        self._exactly_once = settings.processing_guarantee == "exactly_once"
        self.group_id = f"{settings.namespace}-dedup"
        self._partitions: dict[int, Partition] = {}
        self._lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: DurableProducer | None = None
        self._admin: TopicAdmin | None = None
        self._task: asyncio.Task[None] | None = None
        self._refused: dict[str, str] = {}  # dedup key → why Kafka refused its event for good
        # at_least_once: what is published and counted, and not yet flushed (`_flush`)
        self._unsaved: list[Output] = []  # state records
        self._uncommitted: dict[TopicPartition, int] = {}  # offsets
        self._flushing = asyncio.Lock()
        self._send_alone: set[int] = set()  # exactly_once: partitions whose next try sends a record a batch

    async def start(self) -> None:
        self._admin = TopicAdmin(self._settings)
        await self._admin.start()
        if not self._exactly_once:
            self._producer = DurableProducer(
                self._settings, role="dedup", linger_ms=0, max_batch_size=PROCESSOR_BATCH_BYTES
            )
            await self._producer.start()
        self._consumer = clients.consumer(
            self._settings,
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

    async def ended(self) -> None:
        """Wait while the stage runs: return (cancelled) when it is stopped, raise what ended it
        otherwise, so that the worker hosting it crashes rather than consume and never publish."""
        assert self._task is not None
        try:
            await asyncio.shield(self._task)
        except BaseExceptionGroup as ended:  # the poll loop's or the flusher's (`_run`)
            raise ended.exceptions[0] from None

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
        if not self._exactly_once:  # a clean hand-over keeps what is published: its state, its offsets
            await self._flush()
        for p in partitions:  # a clean hand-over keeps what the open transactions did
            if self._partitions[p].open is not None:
                await self._transactional(p, start_over=False)
        partitions = [p for p in partitions if p in self._partitions]  # less those fenced meanwhile
        on_disk = self._settings.store.startswith("rocksdb://")  # memory does not outlive its owner
        ends = await state_ends(self._settings, partitions) if on_disk else {}
        for p in partitions:
            await self._partitions.pop(p).release(ends.get(p))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        async with self._lock:
            for tp in assigned:
                if tp.partition not in self._partitions:
                    self._partitions[tp.partition] = await self._take_over(tp.partition)

    async def _take_over(self, partition: int) -> Partition:
        """`_try_take_over`, retried while Kafka cannot serve it (a leader or coordinator moving, too few
        in-sync replicas: transient): a partition left untaken is fetched and skipped, never committed."""
        delays = itertools.chain(RETRY_BACKOFF_S, itertools.repeat(RETRY_BACKOFF_S[-1]))
        while True:
            try:
                return await self._try_take_over(partition)
            except KafkaError as exc:
                log.warning("take-over failed; retrying", extra={"partition": partition, "error": repr(exc)})
                await asyncio.sleep(next(delays))

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
            seen = await restore(self._settings, self._state_dir, partition)
            return Partition(seen, producer)
        except BaseException:
            if producer is not None:
                await producer.stop()
            raise

    # -- the loop --

    async def _run(self) -> None:
        """The poll loop; under at_least_once with the flusher beside it."""
        async with asyncio.TaskGroup() as stage:
            stage.create_task(self._poll_loop())
            if not self._exactly_once:
                stage.create_task(self._flush_every_interval())

    async def _poll_loop(self) -> None:
        assert self._consumer is not None
        gathering = FetchGathering(self._consumer, time.monotonic())
        while True:
            wait_ms = poll_ms(self._partitions.values(), time.monotonic())
            polled = await self._consumer.getmany(timeout_ms=wait_ms, max_records=MAX_POLL_RECORDS)
            gathering.read(polled, time.monotonic())
            async with self._lock:
                now_ms = _now_ms()
                batches = [
                    decide(tp, records, part.seen, now_ms, self._topics, part.pending).dead_lettering(
                        self._refused, self._topics.dlq
                    )
                    for tp, records in polled.items()
                    if records and (part := self._partitions.get(tp.partition)) is not None
                ]
                if not batches and not is_open(self._partitions.values()):
                    continue
                try:
                    unroutable = await self._ensure_topics([o.topic for b in batches for o in b.outputs])
                except KafkaError as exc:
                    await self._read_again(batches, exc)
                    continue
                batches = [batch.without(unroutable) for batch in batches]
                if self._exactly_once:  # partitions are independent: their transactions overlap
                    await self._transact(batches)
                else:
                    await self._publish(batches)

    async def _transact(self, batches: list[Batch]) -> None:
        """exactly_once: each batch joins its partition's open transaction; the due ones commit."""
        now_s = time.monotonic()
        for batch in batches:
            self._partitions[batch.tp.partition].gather(batch, now_s)
        await asyncio.gather(*(self._transactional(p) for p in due(self._partitions, now_s)))

    async def _transactional(self, p: int, *, start_over: bool = True) -> None:
        """exactly_once: commit partition p's open transaction. Fenced: another worker owns p now, let
        go. Any other Kafka error (an event refused for good among them): start p over from its last
        commit, else from where the transaction began, unless p is being handed over."""
        partition = self._partitions[p]
        transaction = partition.open
        assert transaction is not None
        try:
            await self._commit(p, partition.producer, transaction)
        except ProducerFenced:
            log.warning("fenced: another worker owns this partition now", extra={"partition": p})
            await partition.release()
            self._partitions.pop(p, None)
            return
        except KafkaError as exc:
            log.warning("transaction not committed; retrying", extra={"partition": p, "error": repr(exc)})
            if start_over:
                await asyncio.sleep(RETRY_DELAY_S)
                await self._start_over(p, transaction.first_offset)
            return
        partition.open = None
        self._send_alone.discard(p)
        for batch in transaction.batches:
            self._remember(batch)

    async def _commit(self, p: int, producer: AIOKafkaProducer | None, transaction: Transaction) -> None:
        """The transaction's outputs, dead letters and state records, and its input offset, in one Kafka
        transaction. An event Kafka refuses for good aborts it (a refused record batch of several
        records first sends one record a batch on the next try, to learn which)."""
        assert producer is not None
        with _failed_for_good():
            await producer.begin_transaction()
        try:
            sent = await send(producer, transaction.outputs, alone=p in self._send_alone)
            results = await asyncio.gather(*(ack for ack, _ in sent), return_exceptions=True)
            failed = [(m, r) for (_, m), r in zip(sent, results, strict=True) if isinstance(r, BaseException)]
            self._note([Refusal(o, error) for members, error in failed for o in members if len(members) == 1])
            if any(len(members) > 1 and refused_for_good(error) for members, error in failed):
                self._send_alone.add(p)
            if failed:
                raise failed[0][1]
            await producer.send_offsets_to_transaction(transaction.offsets, self.group_id)
        except BaseException:
            await _abort_quietly(producer)
            raise
        with _failed_for_good():
            await producer.commit_transaction()

    async def _publish(self, batches: list[Batch]) -> None:
        """at_least_once, for every partition of one poll together: outputs acknowledged, then the
        batches count as seen and published, their state records and offsets left for `_flush`. An
        event Kafka refuses for good is dead-lettered at once (topics that took it before the refusal
        keep it)."""
        assert self._producer is not None
        try:
            self._note(
                await send_all(self._producer, [o for b in batches for o in b.outputs + list(b.letters)])
            )
            marked = [batch.dead_lettering(self._refused, self._topics.dlq) for batch in batches]
            letters = [
                o for old, new in zip(batches, marked, strict=True) for o in new.letters[len(old.letters) :]
            ]
            while refused := await send_all(self._producer, letters):
                self._note(refused)
                letters = [refusal.output for refusal in refused]
                await asyncio.sleep(RETRY_DELAY_S)
        except KafkaError as exc:
            await self._read_again(batches, exc)
            return
        for batch in marked:
            self._remember(batch)
            self._unsaved.extend(batch.state)
            self._uncommitted.update(batch.offsets)

    async def _flush_every_interval(self) -> None:
        while True:
            await asyncio.sleep(COMMIT_INTERVAL_S)
            await self._flush()

    async def _flush(self) -> None:
        """at_least_once: write the state records and commit the offsets of what is published, side by
        side; one flush at a time, beside the polls. What fails goes again with the next flush: never a
        record read again for it, since its outputs are in Kafka.

        The offsets may commit before the state records are in: a crash between the two forgets ids
        whose events are published, so a later copy is published again, which at_least_once allows; an
        output is never lost. So does a crash before a flush: Kafka Streams commits every 30 s under
        at_least_once, this every `COMMIT_INTERVAL_S` (10 requests a second, against 90 at 1,000 events/s
        when each poll flushed)."""
        assert self._producer is not None
        assert self._consumer is not None
        async with self._flushing:
            state, self._unsaved = self._unsaved, []
            assigned = self._consumer.assignment()  # a partition lost meanwhile is the new owner's
            offsets = {tp: o for tp, o in self._uncommitted.items() if tp in assigned}
            self._uncommitted = {}
            if not state and not offsets:
                return
            stated: list[Refusal] | BaseException
            committed: object
            try:
                stated, committed = await asyncio.gather(
                    send_all(self._producer, state),
                    self._consumer.commit(offsets) if offsets else asyncio.sleep(0),
                    return_exceptions=True,
                )
            except asyncio.CancelledError:  # a stop: the hand-over's flush takes them
                self._keep(state, offsets)
                raise
            self._keep(
                state if isinstance(stated, BaseException) else [],
                offsets if isinstance(committed, BaseException) else {},
            )
        for outcome in (stated, committed):
            if isinstance(outcome, BaseException) and not isinstance(outcome, KafkaError):
                raise outcome
        if isinstance(stated, KafkaError) or isinstance(committed, KafkaError):
            log.warning(
                "state records or offsets not written; trying again with the next flush",
                extra={"error": repr(stated if isinstance(stated, KafkaError) else committed)},
            )
        if isinstance(stated, list) and stated:  # our own records refused for good: the seen topic's ACLs
            log.error("state records refused; a restart forgets their ids", extra={"error": stated[0].detail})

    def _keep(self, state: list[Output], offsets: dict[TopicPartition, int]) -> None:
        """What a flush did not write goes with the next one; newer offsets win."""
        self._unsaved[:0] = state
        self._uncommitted = {**offsets, **self._uncommitted}

    async def _read_again(self, batches: list[Batch], exc: KafkaError) -> None:
        """Nothing of `batches` committed: read them again from their first offsets."""
        assert self._consumer is not None
        log.warning("batches not written; reading them again", extra={"error": repr(exc)})
        await asyncio.sleep(RETRY_DELAY_S)
        assigned = self._consumer.assignment()
        for batch in batches:
            if batch.tp in assigned:
                self._consumer.seek(batch.tp, batch.records[0].offset)

    def _note(self, refusals: list[Refusal]) -> None:
        """Remember the events Kafka refused for good, so that they become dead letters; a dead letter
        refused (the dead-letter topic's ACLs or size) is for an operator, and is retried."""
        for refusal in refusals:
            if refusal.output.topic == self._topics.dlq or refusal.output.of is None:
                log.error("a dead letter was refused; retrying", extra={"error": refusal.detail})
                continue
            self._refused[event_key(dict(refusal.output.of.headers))] = refusal.detail
            log.warning("an event was refused for good; dead-lettering it", extra={"error": refusal.detail})

    def _remember(self, batch: Batch) -> None:
        """The batch is in Kafka: its first-seen ids count as seen, its events as published."""
        partition = self._partitions.get(batch.tp.partition)
        if partition is not None:
            for key in batch.fresh:
                partition.seen.add(key, batch.now_ms)
        for key in batch.unwritable:
            self._refused.pop(key, None)
        batch.count(self._metrics)

    async def _ensure_topics(self, topics: list[str]) -> dict[str, Unroutable]:
        """Create missing output topics (routes create them on first use); return those that can be no
        topic. `send` then waits for their metadata before it hands the producer any batch, which a
        transaction needs."""
        assert self._admin is not None
        return await self._admin.routable(topic_spec(self._settings, name) for name in dict.fromkeys(topics))

    async def _start_over(self, p: int, from_offset: int) -> None:
        """exactly_once: start partition p over from its last commit (else `from_offset`), with a new
        producer (which aborts whatever the failed one left open) and the state restored from what was
        committed."""
        assert self._consumer is not None
        tp = TopicPartition(self._topics.keyed, p)
        await self._partitions[p].release()
        self._partitions[p] = await self._take_over(p)
        committed = None
        with contextlib.suppress(KafkaError):  # unknown now: where the failed transaction began
            committed = await self._consumer.committed(tp)
        self._consumer.seek(tp, committed if committed is not None else from_offset)


async def _abort_quietly(producer: AIOKafkaProducer) -> None:
    try:
        with _failed_for_good():
            await producer.abort_transaction()
    except KafkaError as exc:  # the new producer that starts the partition over aborts it anyway
        log.warning("could not abort a transaction", extra={"error": repr(exc)})


@contextlib.contextmanager
def _failed_for_good() -> Iterator[None]:
    """A transactional producer whose sender task died fails for good: aiokafka does not retry a
    connection reset while it looks up a coordinator (a broker killed), fails the transaction fatally,
    and then asserts rather than raises on every change of the transaction's state. As a KafkaError, the
    partition starts over with a new producer, like after any other failed transaction."""
    try:
        yield
    except AssertionError as exc:
        raise KafkaError(f"the transactional producer failed for good: {exc}") from exc


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
