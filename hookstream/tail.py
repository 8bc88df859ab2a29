"""`hookstream tail [topic]`: print normalized events as they arrive, one readable line each."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TextIO

import orjson
from aiokafka import TopicPartition

from hookstream import clients
from hookstream.kafka import TopicAdmin
from hookstream.settings import Settings

TOPIC_WAIT_S = 0.5
Stop = Callable[[], bool]


def summary(value: bytes) -> str:
    """`time  type  id  subject` for a CloudEvent; the raw bytes, shortened, for anything else."""
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        event = None
    if not isinstance(event, dict) or "type" not in event:
        return value[:200].decode("utf-8", "replace")
    flags = " replay" if event.get("hsreplay") else ""
    fields = (event.get("time", "-"), event["type"], event.get("id", "-"), event.get("subject", "-"))
    return "  ".join(str(field) for field in fields) + flags


async def wait_for_partitions(settings: Settings, topic: str) -> int:
    """The partition count of `topic`, once it exists."""
    admin = TopicAdmin(settings)
    await admin.start()
    try:
        while not (found := await admin.partitions([topic])):
            print(f"waiting for topic {topic} to exist…", file=sys.stderr)
            await asyncio.sleep(TOPIC_WAIT_S)
        return found[topic]
    finally:
        await admin.close()


async def tail(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = False,
    as_json: bool = False,
    out: TextIO = sys.stdout,
    limit: int | None = None,
) -> int:
    """Follow every partition of `topic` (read_committed, no consumer group); return events printed."""
    partitions = await wait_for_partitions(settings, topic)
    consumer = clients.consumer(settings, enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    printed = 0
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        if from_beginning:
            await consumer.seek_to_beginning(*assigned)
        else:
            await consumer.seek_to_end(*assigned)
        print(f"following {topic} at {settings.kafka_bootstrap} (Ctrl-C stops)", file=sys.stderr)
        async for message in consumer:
            line = message.value.decode("utf-8", "replace") if as_json else summary(message.value or b"")
            print(line, file=out, flush=True)
            printed += 1
            if limit is not None and printed >= limit:
                break
    finally:
        await consumer.stop()
    return printed
