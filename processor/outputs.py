"""Records the processor writes: what a keyed record becomes downstream, and how outputs go to Kafka
(record batches per topic partition). Outside a transaction, `send_all` waits for every acknowledgement
and resends what failed for a transient reason; a batch's offsets are committed only after it returns, so
a crash repeats outputs but never loses one. What Kafka refuses for good (hookstream/refusals.py) comes
back to the caller, which writes a dead letter in its place: nothing a sender sends stops a partition."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka.errors import KafkaError

from hookstream import headers as H
from hookstream.kafka import DurableProducer, append_record, batch_bytes
from hookstream.partitioner import partition_for
from hookstream.refusals import UNWRITABLE, refusal_detail, refused_for_good
from processor.cloudevents import CONTENT_TYPE

log = logging.getLogger(__name__)

RETRY_BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class Output:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = ()
    partition: int | None = None
    of: Any = field(default=None, compare=False, repr=False)  # the consumed record it publishes, if any


@dataclass(frozen=True, slots=True)
class Refusal:
    """An output Kafka refused for good, and its words."""

    output: Output
    error: BaseException

    @property
    def detail(self) -> str:
        return refusal_detail(self.output.topic, self.error)


EVENT_HEADERS = ((H.CONTENT_TYPE, CONTENT_TYPE.encode()),)
# (the acknowledgement of one record batch, the outputs it carries)
Sent = tuple["asyncio.Future[Any]", list[Output]]


def published(record: Any) -> list[Output]:
    """What one record of the keyed topic becomes downstream: an event goes to each of its topics under
    its subject; a dead letter (it has `hs-error`) to the dead-letter topic under the raw record's key,
    with the raw headers and the reason. The keyed-only headers never leave."""
    named = dict(record.headers)
    topics = [topic for topic in named.get(H.OUT_TOPICS, b"").decode().split(",") if topic]
    if H.ERROR in named:
        kept = without_keyed_only(record.headers)
        key = named.get(H.RAW_KEY)
        return [Output(topic, key, record.value or b"", kept, of=record) for topic in topics]
    return [Output(topic, record.key, record.value or b"", EVENT_HEADERS, of=record) for topic in topics]


def unwritable(dlq: str, record: Any, detail: str) -> Output:
    """The dead letter of a keyed record whose event Kafka refused for good: the event as it is (its
    `hsraw` names the raw record), under its subject, with the refusal; `hs-origin` is the keyed record."""
    kept = without_keyed_only(record.headers)
    origin = f"{record.topic}/{record.partition}/{record.offset}".encode()
    reason = ((H.ERROR, UNWRITABLE.encode()), (H.ERROR_DETAIL, error_detail(detail)), (H.ORIGIN, origin))
    return Output(dlq, record.key, record.value or b"", kept + reason)


def without_keyed_only(headers: Sequence[tuple[str, bytes]]) -> Headers:
    """A keyed record's headers less those that never leave the keyed topic."""
    return tuple((name, value) for name, value in headers if name not in H.KEYED_ONLY)


def error_detail(detail: str) -> bytes:
    """`hs-error-detail`: ASCII, and short (a sender's text may be in it)."""
    return detail[:500].encode("ascii", "backslashreplace")


class BatchProducer(Protocol):
    """What `send` needs of a producer: aiokafka's, or our `DurableProducer`."""

    async def partitions_for(self, topic: str) -> set[int]: ...

    def create_batch(self) -> Any: ...

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]: ...


def record_bytes(output: Output) -> int:
    """At least the size Kafka checks against a topic's max.message.bytes: a batch of this one record."""
    return batch_bytes(output.key, output.value, output.headers)


async def send(producer: BatchProducer, outputs: Sequence[Output], *, alone: bool = False) -> list[Sent]:
    """Hand `outputs` to the producer as one record batch per topic partition (more where one fills up),
    in order within each partition, partitioned by key as `AIOKafkaProducer.send` would. Every topic's
    metadata is known before the first batch goes out (a transaction cannot add a partition the producer
    knows nothing of: a topic created a moment ago hung it for 40 s). Whole batches
    rather than records: aiokafka's per-record `send` costs about twice the CPU of appending to a batch
    (13-15 against 7 µs a record, measured), and a worker writes three records per event. `alone` sends
    each output in a batch of its own, so that a refusal names one record."""
    partitions: dict[str, list[int]] = {}
    groups: dict[tuple[str, int], list[Output]] = {}
    hashed: dict[tuple[bytes, int], int] = {}  # an event's outputs share its key: one murmur2 for all
    for output in outputs:
        if output.topic not in partitions:
            partitions[output.topic] = sorted(await producer.partitions_for(output.topic))
        every = partitions[output.topic]
        groups.setdefault((output.topic, _partition(output, every, hashed)), []).append(output)
    sent: list[Sent] = []
    for (topic, partition), group in groups.items():
        batch, members = producer.create_batch(), list[Output]()
        for output in group:
            # Full (or one record a batch): send it, and start the next with this output.
            if (alone and members) or not append_record(batch, output.key, output.value, output.headers):
                sent.append((await producer.send_batch(batch, topic, partition=partition), members))
                batch, members = producer.create_batch(), list[Output]()
                # An empty batch takes one record of any size.
                append_record(batch, output.key, output.value, output.headers)
            members.append(output)
        sent.append((await producer.send_batch(batch, topic, partition=partition), members))
    return sent


def _partition(output: Output, every: list[int], hashed: dict[tuple[bytes, int], int]) -> int:
    """Where `output` goes: its own partition, else by key as Kafka's partitioner does (every topic's
    partitions are 0..n-1, so one key's partition depends only on n)."""
    if output.partition is not None:
        return output.partition
    if output.key is None:
        return random.choice(every)  # noqa: S311 - placement, not secrecy: as Kafka places a keyless record
    memo = (output.key, len(every))
    if memo not in hashed:
        hashed[memo] = every[partition_for(output.key, len(every))]
    return hashed[memo]


async def send_all(producer: DurableProducer, outputs: Sequence[Output]) -> list[Refusal]:
    """Deliver every output, resending what failed for a transient reason until Kafka has it; return
    what Kafka refused for good. A refused batch of several records is sent again one record a batch,
    so that only the record refused is given up."""
    pending, refused, alone, attempt = list(outputs), list[Refusal](), False, 0
    while True:
        sent = await send(producer, pending, alone=alone)
        results = await asyncio.gather(*(ack for ack, _ in sent), return_exceptions=True)
        failed = [
            (members, result)
            for (_, members), result in zip(sent, results, strict=True)
            if isinstance(result, BaseException)
        ]
        if other := next((r for _, r in failed if not isinstance(r, KafkaError)), None):
            raise other
        pending, alone = [], False
        for members, error in failed:
            if refused_for_good(error) and len(members) == 1:
                refused.append(Refusal(members[0], error))
            else:
                pending.extend(members)
                alone = alone or refused_for_good(error)
        if not pending:
            return refused
        log.warning(
            "resending after failed deliveries",
            extra={"count": len(pending), "error": ",".join(sorted({type(e).__name__ for _, e in failed}))},
        )
        if not alone:  # a split batch goes again at once: only transient failures wait
            await asyncio.sleep(RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)])
            attempt += 1
