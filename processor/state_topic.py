"""Reading the dedup state topic back: committed records only (read_committed), outside any group."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from hookstream import clients
from hookstream.kafka import FETCH_MAX_WAIT_MS
from hookstream.settings import Settings
from hookstream.topics import Topics
from processor.seen import SeenStore, decode_seen, open_seen

log = logging.getLogger(__name__)

HAND_OVER_TIMEOUT_S = 5.0  # a stop must not wait on an unreachable broker for its stores' sake


@contextlib.asynccontextmanager
async def state_reader(settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer of committed state records, outside any group."""
    reader = clients.consumer(
        settings,
        enable_auto_commit=False,
        isolation_level="read_committed",
        # Its stop waits for the fetch in flight: a long wait would delay every take-over by as long.
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    await reader.start()
    try:
        yield reader
    finally:
        await reader.stop()


async def read_state(reader: AIOKafkaConsumer, tp: TopicPartition, seen: SeenStore) -> tuple[int, int | None]:
    """Add the committed state records of `tp` within the window to `seen`; return how many were read,
    and from which hand-over offset (None: from the beginning)."""
    reader.assign([tp])
    begin = (await reader.beginning_offsets([tp]))[tp]
    end = (await reader.end_offsets([tp]))[tp]
    resumed_at = seen.take_over()
    if resumed_at is not None and resumed_at > end:  # not this topic's history: start over
        seen.clear()
        resumed_at = None
    reader.seek(tp, max(begin, resumed_at or 0))
    read, now_ms = 0, time.time_ns() // 1_000_000
    while await reader.position(tp) < end:
        for record in (await reader.getmany(tp, timeout_ms=500)).get(tp, []):
            read += 1
            first_seen, event_ids = decode_seen(record.value)
            if now_ms - first_seen < seen.window_ms:
                for event_id in event_ids:
                    seen.add(event_id, first_seen)
    return read, resumed_at


async def restore(settings: Settings, state_dir: Path, partition: int) -> SeenStore:
    """The state partition's committed ids within the window: all of them, or only those after the
    hand-over offset of a disk store handed over in good order."""
    topic, window_ms = Topics(settings.namespace).seen, int(settings.dedup_window_s * 1000)
    seen = open_seen(settings.store, window_ms, state_dir, topic, partition)
    try:
        async with state_reader(settings) as reader:
            read, resumed_at = await read_state(reader, TopicPartition(topic, partition), seen)
    except BaseException:
        seen.close()  # without a hand-over: a half-read store is worth nothing
        raise
    log.info(
        "took over partition",
        extra={"partition": partition, "count": len(seen), "records_read": read, "resumed_at": resumed_at},
    )
    return seen


async def state_ends(settings: Settings, partitions: list[int]) -> dict[int, int]:
    """The committed end of each state partition; none when Kafka does not say so in time (the next
    owner then rebuilds from the topic)."""
    state = [TopicPartition(Topics(settings.namespace).seen, p) for p in partitions]
    try:
        async with asyncio.timeout(HAND_OVER_TIMEOUT_S), state_reader(settings) as reader:
            return {tp.partition: end for tp, end in (await reader.end_offsets(state)).items()}
    except (KafkaError, TimeoutError) as exc:
        log.warning("state ends unknown; stores not handed over", extra={"error": repr(exc)})
        return {}
