"""Reading the dedup state topic back: committed records only (read_committed), outside any group."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition

from hookstream import clients
from hookstream.kafka import FETCH_MAX_WAIT_MS
from hookstream.settings import Settings
from processor.seen import SeenStore, decode_seen


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
