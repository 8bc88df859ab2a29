"""Is this worker stuck? `/livez` on the worker port answers 503 when a partition it owns has records
waiting (lag) and its committed offset has not moved for HOOKSTREAM_STALL_TIMEOUT: the signal for a
supervisor to restart it. A worker that is merely idle (no lag) or slow but moving is live.

Progress is read from what Kafka has committed for the worker's own partitions, in both stages, so it
holds whatever the cause: a wedged stage, an output that keeps failing, a lost broker connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from hookstream import clients
from hookstream.access import REFUSED_RETRY_S, KafkaRefused, authorization, refusal
from hookstream.kafka import core_topics, ensure_topics
from hookstream.settings import Settings
from hookstream.web import serve_metrics

log = logging.getLogger(__name__)

Owned = Callable[[], Iterable[tuple[str, TopicPartition]]]  # (consumer group, partition) this worker owns


@dataclass
class StallDetector:
    """Pure: from (committed, end) offsets over time, how long has an owned, lagging partition not moved."""

    stall_after_s: float
    _since: dict[tuple[str, TopicPartition], tuple[int, float]] = field(default_factory=dict)

    def observe(self, offsets: dict[tuple[str, TopicPartition], tuple[int, int]], now: float) -> float:
        """Feed `(group, tp) -> (committed, end)`; return the longest stall in seconds (0 if none)."""
        longest = 0.0
        for key, (committed, end) in offsets.items():
            previous = self._since.get(key)
            if end <= committed or previous is None or previous[0] != committed:
                self._since[key] = (committed, now)
                continue
            longest = max(longest, now - previous[1])
        for key in set(self._since) - set(offsets):
            del self._since[key]
        return longest

    def stalled(self, longest_s: float) -> bool:
        return longest_s >= self.stall_after_s


class LivenessWatch:
    """Polls committed and end offsets of the owned partitions and keeps the verdict for `/livez`."""

    def __init__(self, settings: Settings, owned: Owned) -> None:
        self._settings = settings
        self._owned = owned
        self.detector = StallDetector(settings.stall_timeout_s)
        self.stalled_for_s = 0.0
        self.refused: str | None = None  # the broker refused this worker what the watch asked for
        self._task: asyncio.Task[None] | None = None

    @property
    def live(self) -> bool:
        return self.refused is None and not self.detector.stalled(self.stalled_for_s)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="liveness")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        interval = max(0.5, min(10.0, self._settings.stall_timeout_s / 4))
        admin = clients.admin(self._settings)
        ends = clients.consumer(self._settings, enable_auto_commit=False)
        await admin.start()
        await ends.start()
        try:
            while True:
                try:
                    self.stalled_for_s = self.detector.observe(
                        await self._offsets(admin, ends), time.monotonic()
                    )
                except KafkaError as exc:  # no answer is no progress either: keep the last verdict
                    self._note(exc)
                else:
                    self.refused = None
                if not self.live:
                    log.error(
                        "worker stalled: owned partitions have lag and no progress",
                        extra={"count": round(self.stalled_for_s)},
                    )
                await asyncio.sleep(interval)
        finally:
            await ends.stop()
            await admin.close()

    def _note(self, exc: KafkaError) -> None:
        """A refusal (the worker's ACLs lost its group, say) makes the worker unready at once, told once."""
        refused = authorization(exc, self._settings, "DESCRIBE")
        if refused is None:
            log.warning("liveness check could not read offsets", extra={"error": repr(exc)})
            return
        if str(refused) != self.refused:
            log.error(str(refused))
        self.refused = str(refused)

    async def _offsets(
        self, admin: AIOKafkaAdminClient, ends: AIOKafkaConsumer
    ) -> dict[tuple[str, TopicPartition], tuple[int, int]]:
        owned = list(self._owned())
        if not owned:
            return {}
        end_offsets = await ends.end_offsets([tp for _, tp in owned])
        offsets = {}
        for group in {group for group, _ in owned}:
            committed = await admin.list_consumer_group_offsets(group)
            for owner, tp in owned:
                if owner == group:
                    mark = committed.get(tp)
                    offsets[(group, tp)] = (mark.offset if mark is not None else 0, end_offsets[tp])
        return offsets


async def admitted(settings: Settings, registry: CollectorRegistry) -> None:
    """Return once Kafka lets this worker in: it logs in and its topics exist (or it may create them).

    Refused (a wrong password, missing ACLs), the worker logs why once, answers `/livez` 503 (and serves
    /metrics) on its port, and asks again no faster than once a second: the fix (a new secret, an ACL)
    arrives while it waits, and a crash loop would only add tracebacks. Anything else raises as before."""
    told, runner = "", None
    try:
        while True:
            try:
                await ensure_topics(settings, core_topics(settings))
                return
            except (KafkaError, OSError, KafkaRefused) as exc:
                refused = await refusal(exc, settings, "CREATE")
                if refused is None:
                    raise
            if str(refused) != told:
                log.error(str(refused))
                told = str(refused)
            if runner is None:
                runner = await serve_metrics(
                    settings.http_host, settings.worker_port, registry, extra={"/livez": _refused}
                )
            await asyncio.sleep(REFUSED_RETRY_S)
    finally:
        if runner is not None:
            await runner.cleanup()


async def _refused(_: web.Request) -> web.Response:
    return web.json_response({"status": "refused by Kafka"}, status=503)
