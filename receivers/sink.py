"""Where accepted deliveries go: Kafka in production, a list in unit tests.

`deliver` returns only once the record is durably in Kafka (acks=all); any failure, and no
acknowledgement by the request's deadline, raises `SinkUnavailable`, which the app answers with 503,
never a 2xx and never a 4xx. The sink keeps the deadline (for Kafka, the batcher: one timer for all the
deliveries in flight, not one a request).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from aiokafka.errors import KafkaError

from hookstream.access import AUTHORIZATION, REFUSED_RETRY_S, KafkaRefused, authorization, refusal
from hookstream.kafka import DurableProducer, kafka_answers, max_record_bytes, topic_admin, topic_spec
from hookstream.settings import Settings
from hookstream.topics import Topics
from receivers.batching import Batcher
from receivers.delivery import Delivery

log = logging.getLogger(__name__)

READINESS_CACHE_S = 1.0


class SinkUnavailable(Exception):
    """The delivery is not known to be in Kafka."""


class RawSink(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def deliver(self, delivery: Delivery, deadline: float) -> None:
        """Return once Kafka has `delivery`; raise SinkUnavailable when it cannot, or has not by
        `deadline` (the event loop's clock)."""

    async def blocker(self) -> str | None: ...


class KafkaSink:
    """An idempotent acks=all producer; concurrent requests share its record batches (`Batcher`)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: DurableProducer | None = None
        self._batcher: Batcher | None = None
        self._started: asyncio.Task[None] | None = None
        self._raw = Topics(settings.namespace).all_raw
        self._min_insync: dict[str, int] = {}
        self._checked_at = -1.0
        self._blocker: str | None = "not connected to Kafka yet"
        self._refused: str | None = None  # why the broker turned this client away, until it lets it in

    async def start(self) -> None:
        """Connect in the background: the receiver serves (503s) even while Kafka is not there yet."""
        self._started = asyncio.create_task(self._connect())

    async def _connect(self) -> None:
        delay = 0.2
        while True:
            # linger 0: the batcher decides when a batch goes (it gathers requests while the previous
            # batch to a leader is in flight, and waits for company only after a small flush); a linger
            # of aiokafka's own would only add to that (measured: a fixed linger of 2-5 ms and lz4/zstd
            # compression each lowered requests/s at 64 clients).
            self._producer = DurableProducer(
                self._settings,
                role="receiver",
                linger_ms=0,
                max_batch_size=256 * 1024,
                request_timeout_ms=max(self._settings.ack_timeout_ms, 5000),
            )
            try:
                await self._producer.start()
                async with topic_admin(self._settings) as admin:
                    await admin.ensure(topic_spec(self._settings, topic) for topic in self._raw)
                    self._min_insync = await admin.min_insync(self._raw)
                    limits = await admin.max_message_bytes(self._raw)
                for topic in self._raw:  # the batcher partitions by the metadata the producer has
                    await self._producer.partitions_for(topic)
            except (KafkaError, OSError, KafkaRefused) as exc:
                await self._producer.stop()
                refused = await refusal(exc, self._settings, "WRITE")
                if refused is None:
                    log.warning("Kafka not reachable yet; retrying", extra={"error": type(exc).__name__})
                else:
                    self._refuse(refused)
                # A refusal waits for a fixed secret or ACL: retried, but never faster than once a second.
                await asyncio.sleep(delay if refused is None else max(delay, REFUSED_RETRY_S))
                delay = min(delay * 2, 5.0)
            else:
                self._refused = None
                fallback = max_record_bytes(self._settings)  # what topic_spec gives a topic we create
                self._batcher = Batcher(self._producer, {t: limits.get(t, fallback) for t in self._raw})
                log.info("connected to Kafka", extra={"url": self._settings.kafka_bootstrap})
                return

    def _refuse(self, refused: KafkaRefused) -> None:
        """Log a refusal once (not once per retry or per request), and be unready while it lasts."""
        if str(refused) != self._refused:
            log.error(str(refused))
        self._refused = str(refused)

    async def stop(self) -> None:
        if self._started is not None:
            self._started.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._started
        if self._producer is not None:
            await self._producer.stop()
        if self._batcher is not None:
            await self._batcher.close()

    async def deliver(self, delivery: Delivery, deadline: float) -> None:
        if self._batcher is None or self._started is None or not self._started.done():
            raise SinkUnavailable("not connected to Kafka yet")
        try:
            # The future is the batcher's own, not aiokafka's: a caller that gives up may cancel it.
            await self._batcher.put(delivery, deadline)
        except KafkaError as exc:
            if isinstance(exc, AUTHORIZATION):
                self._refuse(authorization(exc, self._settings, "WRITE") or KafkaRefused(str(exc)))
            raise SinkUnavailable(type(exc).__name__) from exc
        except TimeoutError as exc:
            raise SinkUnavailable("no acknowledgement by the deadline") from exc
        self._refused = None

    async def blocker(self) -> str | None:
        """Why a delivery cannot be written now, None when it can; asked at most once a second however
        often probes come. Not connected, refused by the broker, no broker answering this client's own
        credentials (a changed password shows), or, as the producer sees the cluster, a raw partition
        without a reachable leader or with fewer in-sync replicas reachable than min.insync.replicas."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._checked_at > READINESS_CACHE_S:
            self._checked_at = loop.time()
            self._blocker = await self._find_blocker()
        return self._blocker

    async def _find_blocker(self) -> str | None:
        if self._producer is None or self._started is None or not self._started.done():
            return "not connected to Kafka yet"
        if self._refused is not None:
            return self._refused
        if not await kafka_answers(self._settings, timeout_s=READINESS_CACHE_S):
            return "no broker answers"
        return await self._producer.write_blocker(self._raw, self._min_insync, timeout_s=READINESS_CACHE_S)


class MemorySink:
    """Keeps deliveries in a list; `fail` or `stall` stand in for Kafka being away."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.fail = False
        self.stall = False
        self.stalled = 0  # deliveries that have waited on the stalled sink
        self._stalled_changed = asyncio.Condition()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def deliver(self, delivery: Delivery, deadline: float) -> None:
        if self.stall:
            async with self._stalled_changed:
                self.stalled += 1
                self._stalled_changed.notify_all()
            try:
                async with asyncio.timeout_at(deadline):
                    await asyncio.Event().wait()
            except TimeoutError as exc:
                raise SinkUnavailable("memory sink stalled past the deadline") from exc
        if self.fail:
            raise SinkUnavailable("memory sink set to fail")
        self.deliveries.append(delivery)

    async def blocker(self) -> str | None:
        return "memory sink set to fail" if self.fail or self.stall else None

    async def wait_stalled(self, count: int) -> None:
        """Return once `count` deliveries in all have waited on the stalled sink."""
        async with self._stalled_changed:
            await self._stalled_changed.wait_for(lambda: self.stalled >= count)
