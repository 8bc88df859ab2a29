"""Raw records → CloudEvents on their topics, or dead letters. The I/O edge around the pure core.

Ordering is what makes at-least-once safe: a batch's outputs are all sent and *acknowledged* before
`handle` returns, and only then does the Faust stream commit the batch's input offsets. A crash can
repeat a batch, never lose one. A record that cannot be normalized, for any reason, becomes a dead
letter carrying its original bytes; a bug in a normalizer is a dead letter too, never a stuck partition.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from hookstream import headers as H
from hookstream.kafka import TopicAdmin, durable_producer, topic_spec
from hookstream.settings import Settings
from hookstream.topics import SOURCES, Topics
from processor import cloudevents
from processor.metrics import ProcessorMetrics
from processor.normalize import normalize
from processor.records import Event, Invalid, RawRecord
from processor.route import topics_for

log = logging.getLogger(__name__)

NORMALIZER_ERROR = "normalizer_error"
UNKNOWN = "unknown"
RETRY_BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
EVENT_HEADERS = ((H.CONTENT_TYPE, cloudevents.CONTENT_TYPE.encode()),)
DEAD_LETTER_HEADERS = frozenset((H.ERROR, H.ERROR_DETAIL, H.ORIGIN))


@dataclass(frozen=True, slots=True)
class Output:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


class Pipeline:
    """Normalizes, routes and publishes batches of raw records with one idempotent producer."""

    def __init__(self, settings: Settings, metrics: ProcessorMetrics) -> None:
        self._settings = settings
        self._topics = Topics(settings.namespace)
        self._metrics = metrics
        self._admin: TopicAdmin | None = None
        self._producer: AIOKafkaProducer | None = None
        self._started = asyncio.Event()

    async def start(self) -> None:
        self._admin = TopicAdmin(self._settings)
        await self._admin.start()
        self._producer = durable_producer(
            self._settings, role="processor", linger_ms=5, max_batch_size=512 * 1024
        )
        await self._producer.start()
        self._started.set()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        if self._admin is not None:
            await self._admin.close()

    async def handle(self, records: list[RawRecord]) -> None:
        """Publish everything `records` yield and wait until Kafka has all of it."""
        await self._started.wait()
        assert self._admin is not None
        outputs: list[Output] = []
        published: list[tuple[Event, RawRecord]] = []
        dead: list[tuple[RawRecord, str]] = []
        for raw in records:
            source = _source_label(raw)
            self._metrics.raw_records.labels(source).inc()
            try:
                normalized = normalize(raw)
            except Invalid as invalid:
                outputs.append(self._dead_letter(raw, invalid.reason, invalid.detail))
                dead.append((raw, invalid.reason))
                continue
            except Exception as exc:  # a normalizer bug must not stop the partition
                log.exception("normalizer failed", extra={"source": source, "error": type(exc).__name__})
                outputs.append(self._dead_letter(raw, NORMALIZER_ERROR, f"{type(exc).__name__}: {exc}"))
                dead.append((raw, NORMALIZER_ERROR))
                continue
            for event in normalized.events:
                outputs.extend(self._event_outputs(event, raw))
                published.append((event, raw))
        await self._admin.ensure(topic_spec(self._settings, name) for name in {o.topic for o in outputs})
        await self._send_all(outputs)
        self._count(published, dead)

    def _event_outputs(self, event: Event, raw: RawRecord) -> list[Output]:
        value = cloudevents.encode(event, raw)
        key = (event.subject or event.id).encode()
        return [Output(topic, key, value, EVENT_HEADERS) for topic in topics_for(event, self._topics)]

    def _dead_letter(self, raw: RawRecord, reason: str, detail: str) -> Output:
        headers = [(name, value) for name, value in raw.headers.items() if name not in DEAD_LETTER_HEADERS]
        headers += [
            (H.ERROR, reason.encode()),
            (H.ERROR_DETAIL, detail[:500].encode("ascii", "backslashreplace")),
            (H.ORIGIN, raw.origin.encode()),
        ]
        return Output(self._topics.dlq, raw.key, raw.value, tuple(headers))

    async def _send_all(self, outputs: list[Output]) -> None:
        """Send in order, then wait for every acknowledgement; resend what failed until it lands."""
        assert self._producer is not None
        pending = outputs
        for attempt in itertools.count():
            acks = [
                await self._producer.send(o.topic, o.value, key=o.key, headers=list(o.headers))
                for o in pending
            ]
            results = await asyncio.gather(*acks, return_exceptions=True)
            failed = [o for o, r in zip(pending, results, strict=True) if isinstance(r, BaseException)]
            if not failed:
                return
            errors = {type(r).__name__ for r in results if isinstance(r, BaseException)}
            if not all(isinstance(r, KafkaError) for r in results if isinstance(r, BaseException)):
                raise next(r for r in results if isinstance(r, BaseException))
            log.warning(
                "resending after a failed delivery", extra={"count": len(failed), "error": ",".join(errors)}
            )
            await asyncio.sleep(RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)])
            pending = failed

    def _count(self, published: list[tuple[Event, RawRecord]], dead: list[tuple[RawRecord, str]]) -> None:
        now_ms = time.time_ns() // 1_000_000
        for event, raw in published:
            self._metrics.events_published.labels(self._metrics.event_type(event.type)).inc()
            self._metrics.event_latency.observe(max(0, now_ms - raw.received_at_ms) / 1000)
        for raw, reason in dead:
            self._metrics.dead_letters.labels(_source_label(raw), reason).inc()


def _source_label(raw: RawRecord) -> str:
    """The record's source as a metrics label: one of ours, or `unknown` for anything else."""
    source = raw.source
    return source if source in SOURCES else UNKNOWN
