"""Stage one: raw records → normalized events on the internal keyed topic, or dead letters.

Events are keyed as their downstream records will be, by subject (else by event id): all events about
one entity stay in order on one partition of `<ns>.internal.keyed`, and every copy of one event, whichever
raw partition and worker it came through, meets the others there, where the dedup stage decides.
Each record carries what that stage needs (event id, topics, type) in headers, so it never parses.

A record that cannot be normalized, for any reason, becomes a dead letter with its original bytes; a
bug in a normalizer is a dead letter too, never a stuck partition. Dead letters take the same way as
events, with the raw record's origin as their id: a raw record read again (after a crash, before Faust
committed its offset) leaves one dead letter, not two, and under exactly_once a dead letter commits
with its input offset like any event. Batches are committed by the Faust stream only after `handle`
returns, i.e. after Kafka acknowledged every output.
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from hookstream import headers as H
from hookstream.kafka import PROCESSOR_BATCH_BYTES, DurableProducer, max_record_bytes
from hookstream.refusals import UNWRITABLE
from hookstream.settings import Settings
from hookstream.topics import SOURCES, Topics
from processor import cloudevents
from processor.metrics import ProcessorMetrics
from processor.normalize import normalize
from processor.normalize.parsing import SCHEMA
from processor.outputs import Output, error_detail, record_bytes, send_all
from processor.records import Event, Invalid, RawRecord
from processor.route import Routes

log = logging.getLogger(__name__)

NORMALIZER_ERROR = "normalizer_error"
UNKNOWN = "unknown"
DEAD_LETTER_HEADERS = frozenset((H.ERROR, H.ERROR_DETAIL, H.ORIGIN))
DEAD_LETTER_RETRY_S = 5.0
# Records normalized between two turns of the event loop. A batch of 500 normalized in one go held the
# loop for 20-70 ms (the dedup stage, fetches and acknowledgements waited), and a backlog made the next
# batch larger still. Measured at 1,000 events/s, back to back, four pairs: stage one p99 29-67 ms
# against 24-153 ms, end to end p99 63-103 ms against 63-208 ms; the same CPU.
NORMALIZE_SLICE = 50


class Pipeline:
    """Normalizes batches of raw records and hands the events to the dedup stage."""

    def __init__(self, settings: Settings, metrics: ProcessorMetrics, routes: Routes) -> None:
        self._settings = settings
        self._topics = Topics(settings.namespace)
        self._metrics = metrics
        self._routes = routes
        self._max_record_bytes = max_record_bytes(settings)  # what our topics accept (topic_spec)
        self._producer: DurableProducer | None = None
        self._started = asyncio.Event()

    async def start(self) -> None:
        self._producer = DurableProducer(
            self._settings, role="normalizer", linger_ms=0, max_batch_size=PROCESSOR_BATCH_BYTES
        )
        await self._producer.start()
        self._started.set()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def handle(self, records: list[RawRecord]) -> None:
        """Hand everything `records` yield to Kafka and wait until Kafka has all of it. A keyed record
        Kafka refuses for good leaves the dead letter of its raw record instead."""
        await self._started.wait()
        assert self._producer is not None
        outputs: list[Output] = []
        for start in range(0, len(records), NORMALIZE_SLICE):
            if start:
                await asyncio.sleep(0)  # let the dedup stage, fetches and acknowledgements run meanwhile
            chunk = records[start : start + NORMALIZE_SLICE]
            outputs += [output for raw in chunk for output in self.outputs_of(raw)]
        refused = await send_all(self._producer, outputs)
        dead: dict[str, Output] = {}  # one dead letter per raw record, however many of its events
        for refusal in refused:
            raw = refusal.output.of  # the raw record every keyed output carries
            if raw.origin not in dead:
                dead[raw.origin] = self.dead_letter(raw, UNWRITABLE, refusal.detail)
        letters = list(dead.values())
        while refused := await send_all(self._producer, letters):
            # A dead letter holds the raw record, which fits our topics: only an operator can mend this
            # (the keyed topic's ACLs or size), so the partition waits, loudly, and loses nothing.
            log.error("dead letters refused; retrying", extra={"error": refused[0].detail})
            letters = [refusal.output for refusal in refused]
            await asyncio.sleep(DEAD_LETTER_RETRY_S)

    def outputs_of(self, raw: RawRecord) -> list[Output]:
        """The keyed records or the dead letter that `raw` becomes, counted in the metrics. An event too
        large for the keyed topic (its id, subject and data are the sender's) becomes the raw record's
        dead letter here, rather than a refusal that would break the producer's sequence."""
        source = source_label(raw)
        self._metrics.raw_records.labels(source).inc()
        try:
            normalized = normalize(raw)
            keyed = [self._keyed(event, raw) for event in normalized.events]
        except Invalid as invalid:
            return [self.dead_letter(raw, invalid.reason, invalid.detail)]
        except orjson.JSONEncodeError as exc:  # e.g. nested deeper than orjson writes (it reads deeper)
            return [self.dead_letter(raw, SCHEMA, f"cannot encode the event: {exc}")]
        except Exception as exc:  # a normalizer bug must not stop the partition
            log.exception("normalizer failed", extra={"source": source, "error": type(exc).__name__})
            return [self.dead_letter(raw, NORMALIZER_ERROR, f"{type(exc).__name__}: {exc}")]
        if normalized.pings:
            self._metrics.pings.labels(source).inc(normalized.pings)
        fitting = [output for output in keyed if record_bytes(output) <= self._max_record_bytes]
        if len(fitting) < len(keyed):
            largest = max(record_bytes(output) for output in keyed)
            limit = f"over the {self._max_record_bytes} bytes it accepts"
            detail = f"{self._topics.keyed}: an event of {largest} bytes, {limit}"
            fitting.append(self.dead_letter(raw, UNWRITABLE, detail))
        return fitting

    def _keyed(self, event: Event, raw: RawRecord) -> Output:
        routing = self._routes.topics_for(event)
        headers: tuple[tuple[str, bytes], ...] = (
            (H.CONTENT_TYPE, cloudevents.CONTENT_TYPE.encode()),
            (H.SOURCE, raw.headers.get(H.SOURCE, b"")),
            (H.RECEIVED_AT, str(raw.received_at_ms).encode()),
            (H.EVENT_TYPE, event.type.encode()),
            (H.EVENT_ID, event.id.encode()),
            (H.OUT_TOPICS, ",".join(routing.topics).encode()),
        )
        if routing.unroutable:
            headers += ((H.UNROUTABLE, ",".join(routing.unroutable).encode()),)
        key = (event.subject or event.id).encode()
        return Output(self._topics.keyed, key, cloudevents.encode(event, raw), headers, of=raw)

    def dead_letter(self, raw: RawRecord, reason: str, detail: str) -> Output:
        """The dead letter of `raw` on its way to the dedup stage, which publishes it as it is (less the
        keyed-only headers) to the dead-letter topic, under the raw record's key."""
        self._metrics.dead_letters.labels(source_label(raw), reason).inc()
        dropped = DEAD_LETTER_HEADERS | H.KEYED_ONLY
        headers = [(name, value) for name, value in raw.headers.items() if name not in dropped]
        headers += [
            (H.ERROR, reason.encode()),
            (H.ERROR_DETAIL, error_detail(detail)),
            (H.ORIGIN, raw.origin.encode()),
            (H.EVENT_ID, f"dead-letter:{raw.origin}".encode()),
            (H.OUT_TOPICS, self._topics.dlq.encode()),
        ]
        if raw.key is not None:
            headers.append((H.RAW_KEY, raw.key))
        return Output(self._topics.keyed, raw.origin.encode(), raw.value, tuple(headers), of=raw)


def source_label(raw: RawRecord) -> str:
    """The record's source as a metrics label: one of ours, or `unknown` for anything else."""
    source = raw.source
    return source if source in SOURCES else UNKNOWN
