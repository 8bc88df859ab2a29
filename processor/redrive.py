"""`hookstream dlq redrive`: give dead letters a second chance once the code that rejected them is fixed.

A dead letter carries the raw record it was, byte for byte, plus `hs-error`, `hs-error-detail` and
`hs-origin`. Redrive restores that raw record (the dead-letter headers removed), checks that the current
normalizers now accept it, and writes it back to its raw topic (`acks=all`), where the live pipeline handles
it like any delivery, deduplication included: a dead letter redriven twice, or one whose event was
published meanwhile, is still published once. Records that still fail are skipped and reported, not
dead-lettered again; they stay in the dead-letter topic.

It reads `<ns>.dlq` from the committed offsets of the consumer group `<ns>-redrive` to the end as it was
when the run started, and commits that end once every record it wrote is acknowledged. A crash before the
commit redrives the same records again, which deduplication absorbs; a second run finds only what was
dead-lettered since.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

from aiokafka.errors import KafkaError

from hookstream import headers as H
from hookstream.errors import HookstreamError
from hookstream.settings import Settings
from hookstream.topics import SOURCES, Topics
from processor.outputs import Output
from processor.pipeline import DEAD_LETTER_HEADERS
from processor.records import Invalid, RawRecord
from processor.replay import MAX_LISTED, opened, renormalize

NO_RAW_TOPIC = "no_raw_topic"


def group_id(settings: Settings) -> str:
    return f"{settings.namespace}-redrive"


def origin(dead: RawRecord) -> tuple[str, int, int] | None:
    """A dead letter's `hs-origin` (`topic/partition/offset`), or None if it has no readable one."""
    parts = (dead.header(H.ORIGIN) or "").rsplit("/", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return parts[0], int(parts[1]), int(parts[2])


def restore(dead: RawRecord, topics: Topics) -> RawRecord:
    """The raw record a dead letter was: its key, value and headers (less the dead-letter ones) on its
    raw topic, from `hs-origin`, else from `hs-source`. Only a raw topic of this namespace: header values
    never choose an arbitrary topic to write to. Raises Invalid when there is none."""
    place = origin(dead)
    source = dead.source
    if place is not None and place[0] in topics.all_raw:
        topic, partition, offset = place
    elif source in SOURCES:
        topic, partition, offset = topics.raw(source or ""), dead.partition, dead.offset
    else:
        raise Invalid(NO_RAW_TOPIC, "neither hs-origin nor hs-source names a raw topic")
    return RawRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        key=dead.key,
        value=dead.value,
        headers={name: value for name, value in dead.headers.items() if name not in DEAD_LETTER_HEADERS},
        timestamp_ms=dead.timestamp_ms,
    )


def redrive_output(dead: RawRecord, topics: Topics) -> Output:
    """The record to write back for a dead letter, if the current code normalizes it; else Invalid."""
    raw = restore(dead, topics)
    renormalize(raw)
    return Output(raw.topic, raw.key, raw.value, tuple(raw.headers.items()))


@dataclass
class RedriveSummary:
    read: int = 0
    redriven: int = 0
    still_failing: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        failing = sum(self.still_failing.values())
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.still_failing.items()))
        return (
            f"dlq redrive: {self.read} dead letters read, {self.redriven} redriven, {failing} still failing"
            + (f" ({reasons})" if reasons else "")
        )


async def redrive(settings: Settings, *, err: TextIO = sys.stderr) -> RedriveSummary:
    """Redrive what `<ns>.dlq` gained since the last run; commit the group's offsets at the end."""
    topics = Topics(settings.namespace)
    summary = RedriveSummary()
    async with opened(settings, topics.dlq, role="redrive", group_id=group_id(settings)) as (reader, writer):
        await reader.start_at_committed()
        print(f"redriving {topics.dlq}: {reader.size} dead letters since the last redrive", file=err)
        async for batch in reader.batches():
            await writer.write(_outputs(batch, topics, summary, err), err)
        await reader.commit()
    return summary


def _outputs(batch: list[RawRecord], topics: Topics, summary: RedriveSummary, err: TextIO) -> list[Output]:
    outputs: list[Output] = []
    for dead in batch:
        summary.read += 1
        try:
            outputs.append(redrive_output(dead, topics))
        except Invalid as invalid:
            summary.still_failing[invalid.reason] += 1
            if sum(summary.still_failing.values()) <= MAX_LISTED:
                was = dead.header(H.ORIGIN) or dead.origin
                print(f"still failing {was}: {invalid.reason}: {invalid.detail[:200]}", file=err)
            continue
        summary.redriven += 1
    return outputs


def run(settings: Settings) -> int:
    try:
        summary = asyncio.run(redrive(settings))
    except KafkaError as exc:  # the broker is away or refused: one line, as for any operator error
        raise HookstreamError(f"redrive stopped: Kafka at {settings.kafka_bootstrap}: {exc!r}") from None
    print(summary.line())
    return 0
