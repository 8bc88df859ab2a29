"""`hookstream replay --source S --since T [--until T]`: re-normalize the raw records of a time range.

For when the normalizers changed (a bug fixed, a field added) and consumers want the events of a period
again. The raw topic holds every delivery byte for byte, so the current code can read it once more. Replayed
events bypass deduplication on purpose (they were published before, so dedup would drop every one) and go
straight to their routed topics, marked `"hsreplay": true` so that consumers can tell them from live ones.
They keep their ids, so a consumer that deduplicates on its own sees a replay as the duplicates it is.

The range is by record timestamp (the receiver's produce time, within milliseconds of `hs-received-at`):
from the first record at or after `--since` to the last one before `--until`, or to the end of each
partition as it was when the replay started, so a live stream never keeps it running. Records that no
longer normalize are counted and listed, not dead-lettered again (their dead letters exist already).

`to_outputs` is the pure part: one raw record in, the records to publish out.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from hookstream import clients
from hookstream import headers as H
from hookstream.errors import HookstreamError
from hookstream.kafka import PROCESSOR_BATCH_BYTES, DurableProducer, TopicAdmin, topic_spec
from hookstream.settings import Settings
from hookstream.topics import Topics
from processor import cloudevents
from processor.normalize import normalize
from processor.normalize.parsing import SCHEMA
from processor.outputs import Output, send_all
from processor.pipeline import NORMALIZER_ERROR
from processor.records import Event, Invalid, Normalized, RawRecord
from processor.route import Routes

REPLAY_EXTENSION = "hsreplay"
EVENT_HEADERS = ((H.CONTENT_TYPE, cloudevents.CONTENT_TYPE.encode()),)
PROGRESS_EVERY = 1000
MAX_LISTED = 20  # invalid records listed one by one; the rest are only counted
POLL_MS = 500
BATCH_MAX = 500  # records per batch written and acknowledged together; progress comes between batches


def renormalize(raw: RawRecord) -> Normalized:
    """`normalize` as the pipeline applies it: anything that stops a record from becoming events, even a
    normalizer bug, is an `Invalid` with the pipeline's reason code."""
    try:
        normalized = normalize(raw)
        for event in normalized.events:
            cloudevents.encode(event, raw)  # what the pipeline cannot encode, it dead-letters
    except Invalid:
        raise
    except orjson.JSONEncodeError as exc:
        raise Invalid(SCHEMA, f"cannot encode the event: {exc}") from None
    except Exception as exc:
        raise Invalid(NORMALIZER_ERROR, f"{type(exc).__name__}: {exc}") from None
    return normalized


def replay_document(event: Event, raw: RawRecord) -> dict[str, Any]:
    """The event's CloudEvent with `hsreplay: true` after all the other extensions."""
    document = cloudevents.to_document(event, raw)
    document[REPLAY_EXTENSION] = True
    return document


def event_outputs(event: Event, raw: RawRecord, routes: Routes) -> list[Output]:
    """One replayed event on each of its routed topics, keyed like the live ones (subject, else id)."""
    value = orjson.dumps(replay_document(event, raw))
    key = (event.subject or event.id).encode()
    return [Output(topic, key, value, EVENT_HEADERS) for topic in routes.topics_for(event).topics]


def to_outputs(raw: RawRecord, routes: Routes) -> list[Output]:
    """The records a replay publishes for `raw`. Raises Invalid if `raw` does not normalize."""
    return [output for event in renormalize(raw).events for output in event_outputs(event, raw, routes)]


def raw_record(record: Any) -> RawRecord:
    """An aiokafka ConsumerRecord as the processor's RawRecord."""
    return RawRecord.from_message(record, record.timestamp)


@dataclass
class ReplaySummary:
    records: int = 0
    events: int = 0
    published: int = 0  # records written: each event once per routed topic
    invalid: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.invalid.items()))
        invalid = sum(self.invalid.values())
        return (
            f"replay: {self.records} records read, {self.events} events published "
            f"({self.published} records on their topics), {invalid} invalid"
            + (f" ({reasons})" if reasons else "")
        )


async def replay(
    settings: Settings, source: str, since_ms: int, until_ms: int | None, *, err: TextIO = sys.stderr
) -> ReplaySummary:
    """Replay `<ns>.raw.<source>` from `since_ms` to `until_ms` (or to its end now); print progress."""
    topics = Topics(settings.namespace)
    routes = Routes.load(topics, settings.routes_file)
    summary = ReplaySummary()
    async with opened(settings, topics.raw(source), role="replay") as (reader, writer):
        await reader.start_at_times(since_ms, until_ms)
        print(f"replaying {topics.raw(source)}: {reader.size} records in range", file=err)
        async for batch in reader.batches():
            await writer.write(_outputs(batch, routes, summary, err), err)
            if summary.records // PROGRESS_EVERY > (summary.records - len(batch)) // PROGRESS_EVERY:
                print(f"… {summary.records} records read, {summary.events} events published", file=err)
    return summary


def _outputs(batch: list[RawRecord], routes: Routes, summary: ReplaySummary, err: TextIO) -> list[Output]:
    outputs: list[Output] = []
    for raw in batch:
        summary.records += 1
        try:
            events = renormalize(raw).events
        except Invalid as invalid:
            summary.invalid[invalid.reason] += 1
            if sum(summary.invalid.values()) <= MAX_LISTED:
                print(f"invalid {raw.origin}: {invalid.reason}: {invalid.detail[:200]}", file=err)
            continue
        for event in events:
            produced = event_outputs(event, raw, routes)
            summary.events += 1
            summary.published += len(produced)
            outputs.extend(produced)
    return outputs


class RangeReader:
    """Reads every partition of one topic between two offsets per partition, both fixed when it starts,
    so that records arriving meanwhile never keep it running. With a `group_id` it can start from that
    group's committed offsets and commit where it stopped."""

    def __init__(self, settings: Settings, topic: str, *, role: str, group_id: str | None = None) -> None:
        self._settings = settings
        self._topic = topic
        self._role = role
        self._group_id = group_id
        self._reader: AIOKafkaConsumer | None = None
        self.start_offsets: dict[TopicPartition, int] = {}
        self.end_offsets: dict[TopicPartition, int] = {}

    @property
    def _consumer(self) -> AIOKafkaConsumer:
        assert self._reader is not None, "start the reader first"
        return self._reader

    async def start_at_times(self, since_ms: int | None, until_ms: int | None) -> None:
        """From the first record at or after `since_ms` (None: the oldest) to the last one before
        `until_ms` (None: the last one now)."""
        tps, ends = await self._open()
        starts = await self._offsets_at(tps, since_ms, await self._consumer.beginning_offsets(tps), ends)
        limits = await self._offsets_at(tps, until_ms, ends, ends)
        self._fix(starts, limits, ends)

    async def start_at_committed(self) -> None:
        """From the group's committed offsets (the oldest record where it has none) to the end now."""
        tps, ends = await self._open()
        beginnings = await self._consumer.beginning_offsets(tps)
        starts = {}
        for tp in tps:
            committed = await self._consumer.committed(tp)
            starts[tp] = beginnings[tp] if committed is None else max(committed, beginnings[tp])
        self._fix(starts, ends, ends)

    async def _open(self) -> tuple[list[TopicPartition], dict[TopicPartition, int]]:
        partitions = await _partitions(self._settings, self._topic)
        self._reader = clients.consumer(
            self._settings,
            client_id=f"{self._settings.namespace}-{self._role}",
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await self._reader.start()
        tps = [TopicPartition(self._topic, p) for p in range(partitions)]
        self._consumer.assign(tps)
        return tps, await self._consumer.end_offsets(tps)

    def _fix(self, starts: dict[TopicPartition, int], limits: dict[TopicPartition, int], ends: Any) -> None:
        for tp, start in starts.items():
            self.start_offsets[tp] = start
            self.end_offsets[tp] = max(start, min(limits[tp], ends[tp]))
            self._consumer.seek(tp, start)

    @property
    def size(self) -> int:
        """Records in the range (fewer if some are aborted or compacted away)."""
        return sum(self.end_offsets[tp] - self.start_offsets[tp] for tp in self.end_offsets)

    async def _offsets_at(
        self, tps: list[TopicPartition], at_ms: int | None, default: Any, ends: Any
    ) -> dict[TopicPartition, int]:
        """The first offset at or after `at_ms` in each partition (its end if there is none)."""
        if at_ms is None:
            return {tp: default[tp] for tp in tps}
        found = await self._consumer.offsets_for_times({tp: at_ms for tp in tps})
        return {tp: ends[tp] if found.get(tp) is None else found[tp].offset for tp in tps}

    async def batches(self) -> AsyncIterator[list[RawRecord]]:
        """Batches of records within the range, until every partition has reached its end offset."""
        active = {tp for tp in self.end_offsets if self.start_offsets[tp] < self.end_offsets[tp]}
        while active:
            fetched = await self._consumer.getmany(*active, timeout_ms=POLL_MS, max_records=BATCH_MAX)
            batch = [
                raw_record(record)
                for tp, records in fetched.items()
                for record in records
                if record.offset < self.end_offsets[tp]
            ]
            for tp in list(active):
                if await self._consumer.position(tp) >= self.end_offsets[tp]:
                    active.discard(tp)
            if batch:
                yield batch

    async def commit(self) -> None:
        """Commit the end of the range for the group: the next run starts where this one stopped."""
        await self._consumer.commit(dict(self.end_offsets))

    async def stop(self) -> None:
        if self._reader is not None:
            await self._reader.stop()


class Writer:
    """Writes outputs durably (acks=all, resending what failed), creating missing topics first: routes
    may name topics nothing has written to yet."""

    def __init__(self, settings: Settings, admin: TopicAdmin, producer: DurableProducer) -> None:
        self._settings = settings
        self._admin = admin
        self._producer = producer

    async def write(self, outputs: list[Output], err: TextIO) -> None:
        """Write `outputs`; say which of them can be written nowhere (a topic that can be no topic, a
        record Kafka refuses for good), rather than stopping on them."""
        names = {o.topic for o in outputs}
        unroutable = await self._admin.routable(topic_spec(self._settings, name) for name in names)
        for refusal in await send_all(self._producer, [o for o in outputs if o.topic not in unroutable]):
            print(f"not written: {refusal.detail[:200]}", file=err)
        for topic, reason in unroutable.items():
            print(f"not written to {topic[:200]}: {reason}", file=err)


@contextlib.asynccontextmanager
async def opened(
    settings: Settings, topic: str, *, role: str, group_id: str | None = None
) -> AsyncIterator[tuple[RangeReader, Writer]]:
    """A reader of `topic` and a writer, closed again however the run ends."""
    async with contextlib.AsyncExitStack() as stack:
        reader = RangeReader(settings, topic, role=role, group_id=group_id)
        stack.push_async_callback(reader.stop)
        admin = TopicAdmin(settings)
        stack.push_async_callback(admin.close)
        await admin.start()
        producer = DurableProducer(settings, role=role, linger_ms=5, max_batch_size=PROCESSOR_BATCH_BYTES)
        stack.push_async_callback(producer.stop)
        await producer.start()
        yield reader, Writer(settings, admin, producer)


async def _partitions(settings: Settings, topic: str) -> int:
    admin = TopicAdmin(settings)
    await admin.start()
    try:
        found = await admin.partitions([topic])
    finally:
        await admin.close()
    if topic not in found:
        raise HookstreamError(f"topic {topic} does not exist (nothing was ever received for it?)")
    return found[topic]


def run(settings: Settings, source: str, since_ms: int, until_ms: int | None) -> int:
    try:
        summary = asyncio.run(replay(settings, source, since_ms, until_ms))
    except KafkaError as exc:  # the broker is away or refused: one line, as for any operator error
        raise HookstreamError(f"replay stopped: Kafka at {settings.kafka_bootstrap}: {exc!r}") from None
    print(summary.line())
    return 0
