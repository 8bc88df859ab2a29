"""Concurrent deliveries into shared record batches: one produce request carries every request that came
in while the previous one was on its way.

aiokafka's per-record `send` costs about twice the CPU of appending to a batch (processor/outputs.py),
and keyless records spread at random over the partitions make one small batch per partition in each
produce request. So deliveries wait here, cheaply, while a batch of ours is in flight to their partition's
leader (aiokafka keeps one produce request in flight per broker anyway), and go out together once it is
answered: one batch per partition per flush. Keyless deliveries of one flush all go to one partition,
the next flush's to the next partition whose leader is free (Kafka's sticky partitioner, KIP-480, for
the same reason); keyed ones go where `AIOKafkaProducer.send` would put them (murmur2 of the key). When
requests come few at a time, a flush waits a few milliseconds for company (`linger_s`).

Every delivery keeps its own outcome: its future is resolved only by the acknowledgement (acks=all) of
the batch that carries it, or fails with that batch's error, or with TimeoutError at its deadline. One
timer watches the deadlines of all the deliveries waiting (a timer a request, as `asyncio.timeout` arms,
cost the receivers ~8% of their CPU a request at 64 clients). No batch is larger than its topic's
`max.message.bytes` (the broker checks whole batches against it), and a delivery too large for the topic
fails alone before it is sent, as aiokafka's `send` refused records over `max_request_size`: the broker
would refuse its whole batch, and a refused batch leaves aiokafka's idempotent producer out of sequence,
failing the partition's next batches until `DurableProducer` replaces it. A delivery whose caller stopped
waiting before its batch was built is not written at all.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.structs import TopicPartition

from hookstream.kafka import DurableProducer, append_record, batch_bytes
from hookstream.partitioner import partition_for
from receivers.delivery import Delivery

log = logging.getLogger(__name__)

Node = int | None  # a partition leader's broker id; -1 or None while it has none or is not known
# After a flush of fewer than SMALL_FLUSH deliveries, the next waits up to LINGER_S for company (Kafka 4.0's
# producers linger 5 ms by default for the same reason, KIP-1030). Measured at 1,000 requests/s: 1.2 → 6
# deliveries a produce request, 350-380 instead of 420-530 µs of the receivers' CPU a request; at 64
# clients flushes are large and nothing lingers (a fixed 5 ms linger cost 20-25% of requests/s there).
LINGER_S = 0.005
SMALL_FLUSH = 8


@dataclass(frozen=True, slots=True)
class Waiting:
    """A delivery and the future its request awaits."""

    delivery: Delivery
    acked: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class Plan:
    """What one flush does with one topic's waiting deliveries."""

    groups: dict[int, list[Waiting]]  # partition → the deliveries it takes now, in arrival order
    kept: list[Waiting]  # those whose partition's leader still has a batch of ours in flight
    next_start: int  # where the next flush starts looking for a partition for keyless deliveries


def plan(
    waiting: Sequence[Waiting],
    partitions: Sequence[int],
    leader: Callable[[int], Node],
    busy: set[Node],
    start: int,
) -> Plan:
    """Which of one topic's waiting deliveries go out now and to which partition. Pure. `partitions` is
    every partition of the topic, sorted; a delivery whose caller gave up is dropped."""
    sticky, next_start = _keyless_partition(partitions, leader, busy, start)
    groups: dict[int, list[Waiting]] = {}
    kept: list[Waiting] = []
    hashed: dict[bytes, int] = {}
    free: dict[int, bool] = {}  # partition → whether its leader takes a batch now
    for item in waiting:
        if item.acked.done():
            continue
        key = item.delivery.key
        if key is None:
            partition = sticky
        elif (partition := hashed.get(key)) is None:
            partition = hashed[key] = partitions[partition_for(key, len(partitions))]
        if partition is None:
            kept.append(item)
            continue
        if (takes := free.get(partition)) is None:
            takes = free[partition] = leader(partition) not in busy
        if takes:
            groups.setdefault(partition, []).append(item)
        else:
            kept.append(item)
    return Plan(groups, kept, next_start)


def linger_s(last_flush: int) -> float:
    """How long the next flush waits for more deliveries, given how many the last one sent: a produce
    request costs both ends far more than a record in it, but a busy receiver's flushes fill anyway."""
    return LINGER_S if last_flush < SMALL_FLUSH else 0.0


def _keyless_partition(
    partitions: Sequence[int], leader: Callable[[int], Node], busy: set[Node], start: int
) -> tuple[int | None, int]:
    """The first partition from `start` on (round robin) whose leader is known and has no batch of ours
    in flight. When no partition has a known leader, the one at `start`: aiokafka waits for a leader
    (or fails the batch in time). None while every partition with a leader is busy."""
    count = len(partitions)
    for step in range(count):
        index = (start + step) % count
        node = leader(partitions[index])
        if node is not None and node >= 0 and node not in busy:
            return partitions[index], index + 1
    if any((node := leader(p)) is not None and node >= 0 for p in partitions):
        return None, start
    fallback = partitions[start % count]
    return (None if leader(fallback) in busy else fallback), start + 1


class Batcher:
    """Deliveries of every raw topic into shared record batches of `producer` (see the module's doc)."""

    def __init__(self, producer: DurableProducer, limits: Mapping[str, int]) -> None:
        """`limits`: each topic's max.message.bytes, the largest record batch it takes."""
        self._producer = producer
        self._limits = limits
        self._waiting: dict[str, list[Waiting]] = {}  # by topic, in arrival order
        self._busy: set[Node] = set()  # leaders with a batch of ours in flight
        self._starts: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._flush_at: asyncio.Handle | None = None
        self._overdue = False
        self._last_flush = 0  # deliveries the last flush sent
        # (deadline, arrival, future) of the deliveries not settled yet, earliest deadline first, and
        # the one timer that expires them.
        self._deadlines: list[tuple[float, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._expiry: asyncio.TimerHandle | None = None

    def put(self, delivery: Delivery, deadline: float) -> asyncio.Future[None]:
        """Queue `delivery` for the next batch to its partition; the future is done when Kafka has it,
        and fails with TimeoutError if Kafka has not acknowledged it by `deadline` (loop time)."""
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()
        self._waiting.setdefault(delivery.topic, []).append(Waiting(delivery, acked))
        if self._flush_at is None:
            linger = linger_s(self._last_flush)
            self._flush_at = loop.call_later(linger, self._flush) if linger else loop.call_soon(self._flush)
        deadlines = self._deadlines
        while deadlines and deadlines[0][2].done():  # settled meanwhile, mostly in the order they came
            heapq.heappop(deadlines)
        heapq.heappush(deadlines, (deadline, next(self._arrivals), acked))
        if self._expiry is None or deadline < self._expiry.when():
            if self._expiry is not None:
                self._expiry.cancel()
            self._expiry = loop.call_at(deadline, self._expire)
        return acked

    def _expire(self) -> None:
        """Fail the deliveries past their deadline with TimeoutError (a batch carrying one may still
        land: the sender's retry is a duplicate, which the processor drops), and wait for the next."""
        loop = asyncio.get_running_loop()
        now, deadlines = loop.time(), self._deadlines
        while deadlines and (deadlines[0][0] <= now or deadlines[0][2].done()):
            _, _, acked = heapq.heappop(deadlines)
            if not acked.done():
                acked.set_exception(TimeoutError("no acknowledgement by the deadline"))
        self._expiry = loop.call_at(deadlines[0][0], self._expire) if deadlines else None

    def _flush_soon(self) -> None:
        """Flush at once if deliveries are overdue: their linger passed while their leader was busy."""
        if self._overdue:
            if self._flush_at is not None:
                self._flush_at.cancel()
            self._flush_at = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_at, self._overdue = None, False
        cluster = self._producer.cluster()
        by_node: dict[Node, list[tuple[str, int, list[Waiting]]]] = {}
        for topic, waiting in self._waiting.items():
            partitions = cluster.partitions_for_topic(topic)
            if not partitions:
                self._overdue = True
                self._start(self._learn(topic))
                continue

            def leader(partition: int, topic: str = topic) -> Node:
                node: Node = cluster.leader_for_partition(TopicPartition(topic, partition))
                return node

            planned = plan(waiting, sorted(partitions), leader, self._busy, self._starts.get(topic, 0))
            self._waiting[topic], self._starts[topic] = planned.kept, planned.next_start
            self._overdue = self._overdue or bool(planned.kept)
            for partition, group in planned.groups.items():
                by_node.setdefault(leader(partition), []).append((topic, partition, group))
        if by_node:
            self._last_flush = sum(len(group) for groups in by_node.values() for _, _, group in groups)
        for node, groups in by_node.items():
            self._busy.add(node)
            self._start(self._send(node, groups))

    def _start(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._tasks.discard)

    async def _learn(self, topic: str) -> None:
        """Wait for a topic's metadata (a new producer knows none yet), then flush its deliveries; a
        producer that cannot learn it fails them with its error."""
        try:
            await self._producer.partitions_for(topic)
        except Exception as exc:
            for item in self._waiting.pop(topic, []):
                _settle(item, exc)
        self._flush_soon()

    async def _send(self, node: Node, groups: list[tuple[str, int, list[Waiting]]]) -> None:
        """Send one flush's batches to one leader (all of them before awaiting any acknowledgement), settle
        each delivery with its batch's outcome, free the leader."""
        try:
            sent = []
            for topic, partition, group in groups:
                for batch, members in self._batches(group, self._limits[topic]):
                    try:
                        ack = await self._producer.send_batch(batch, topic, partition=partition)
                    except Exception as exc:
                        for item in members:
                            _settle(item, exc)
                    else:
                        sent.append((ack, members))
            results = await asyncio.gather(*(ack for ack, _ in sent), return_exceptions=True)
            for (_, members), result in zip(sent, results, strict=True):
                for item in members:
                    _settle(item, result if isinstance(result, BaseException) else None)
        except Exception as exc:  # unforeseen: still every request gets its answer (a 503)
            log.exception("sending batches failed")
            for _, _, group in groups:
                for item in group:
                    _settle(item, exc)
        finally:
            self._busy.discard(node)
            self._flush_soon()

    def _batches(self, group: list[Waiting], limit: int) -> list[tuple[Any, list[Waiting]]]:
        """`group` in record batches of at most `limit` bytes, in order; a delivery that would be a batch
        over the limit on its own fails here."""
        batches: list[tuple[Any, list[Waiting]]] = []
        batch, members, size = None, list[Waiting](), 0
        for item in group:
            delivery = item.delivery
            alone = batch_bytes(delivery.key, delivery.value, delivery.headers)
            if alone > limit:
                _settle(item, MessageSizeTooLargeError(f"{alone} bytes; the topic takes {limit}"))
                continue
            if (
                batch is None
                or size + alone > limit
                or not append_record(batch, delivery.key, delivery.value, delivery.headers)
            ):
                batch, members = self._producer.create_batch(), []
                batches.append((batch, members))
                # An empty batch takes one record of any size.
                append_record(batch, delivery.key, delivery.value, delivery.headers)
            size = batch.size()
            members.append(item)
        return batches

    async def close(self) -> None:
        """Let the batches in flight settle; fail what still waits (nothing should: the server answers its
        requests before the sink stops)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        for waiting in self._waiting.values():
            for item in waiting:
                _settle(item, ConnectionError("the receiver is stopping"))
        self._waiting.clear()


def _settle(item: Waiting, error: BaseException | None) -> None:
    """Resolve a delivery's future unless its caller already stopped waiting."""
    if item.acked.done():
        return
    if error is None:
        item.acked.set_result(None)
    else:
        item.acked.set_exception(error)
