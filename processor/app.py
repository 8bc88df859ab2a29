"""The Faust app "hookstream": the raw topics, the agent that batches them into the pipeline, and the
worker's own HTTP server for /metrics and /healthz."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import faust
from aiohttp import web
from aiokafka import TopicPartition
from mode import Service

from hookstream.settings import Settings
from hookstream.topics import Topics
from hookstream.web import serve_metrics
from processor.liveness import LivenessWatch
from processor.metrics import ProcessorMetrics
from processor.pipeline import Pipeline
from processor.records import RawRecord
from processor.transport import Transport, WorkerConsumer, broker_credentials

BATCH_MAX = 500


def worker_dir(settings: Settings) -> Path:
    """Where a worker keeps local state (Faust's datadir, RocksDB files)."""
    return settings.cache_dir / "worker" / settings.namespace


def create_app(settings: Settings, pipeline: Pipeline) -> faust.App:
    app = faust.App(
        settings.namespace,
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers],
        broker_credentials=broker_credentials(settings),
        key_serializer="raw",
        value_serializer="raw",
        store=settings.store,
        datadir=str(worker_dir(settings)),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor or 1,  # unused: Faust declares no topics
        topic_allow_declare=False,
        # No leader election topic: nothing here uses it, and under ACLs aiokafka logs an ERROR about it.
        topic_disable_leader=True,
        processing_guarantee="at_least_once",
        broker_max_poll_records=BATCH_MAX,
        consumer_auto_offset_reset="earliest",
        # A killed worker's partitions move on after 10 s rather than Faust's default 60 s.
        broker_session_timeout=10.0,
        web_enabled=True,
        web_port=settings.worker_port,
        web_bind=settings.http_host,
        cython_optimizations=True,
    )
    app.transport = Transport(app.conf.broker_consumer, app)
    raw_topics = app.topic(*Topics(settings.namespace).all_raw, schema=RawBytes())

    @app.agent(raw_topics, name="normalize")
    async def normalize_raw(stream: faust.StreamT[bytes]) -> None:
        """A batch is what the stream holds when the agent is ready for it, at most BATCH_MAX records:
        never a wait for more (Faust's `take_events` waits out a window: at 1,000 events/s most of stage
        one's latency, and its background drainer cost 8-30% more CPU a record), and the larger the
        backlog the larger the batch."""
        manual = cast(faust.Stream[bytes], cast(faust.Stream[bytes], stream).noack())  # StreamT lacks noack
        waiting = cast(faust.ChannelT[bytes], manual.channel).queue
        taken = TakenEvents(pipeline, manual)
        consumer = app.consumer
        assert isinstance(consumer, WorkerConsumer)
        consumer.hand_over_taken = taken.hand_over
        async for event in manual.events():
            taken.events.append(event)
            if len(taken.events) >= BATCH_MAX or waiting.empty():
                await taken.hand_over()

    return app


class TakenEvents:
    """Events the normalize agent took from its stream and has not handed to the pipeline yet.

    They are handed over, and acked once Kafka has everything they became, one batch at a time and in
    the order taken: by the agent when its stream runs dry or the batch is full, and by the consumer
    (`WorkerConsumer.wait_empty`) when Faust clears the stream's queue for a stop or a rebalance and
    waits for every event taken to be acked: the agent then waits for an event that will not come (a
    batch held there hung a worker's stop, in `make bench`)."""

    def __init__(self, pipeline: Pipeline, stream: faust.Stream[bytes]) -> None:
        self.events: list[faust.types.EventT[bytes]] = []
        self._pipeline = pipeline
        self._stream = stream
        self._handing_over = asyncio.Lock()

    async def hand_over(self) -> None:
        events, self.events = self.events, []
        if not events:
            return
        async with self._handing_over:
            await self._pipeline.handle([_raw_record(event.message) for event in events])
            for event in events:
                await self._stream.ack(event)


class RawBytes(faust.Schema[bytes, bytes]):
    """Keys and values as Kafka has them. Faust's own schema, even with the `raw` serializer, asks its
    codec registry twice a message for bytes it then leaves as they are (~2% of a worker's CPU)."""

    def compile(self, app: faust.types.AppT, **_: Any) -> Callable[..., Awaitable[faust.types.EventT[bytes]]]:
        create_event = app.create_event

        async def decode(
            message: faust.types.Message, *, propagate: bool = False
        ) -> faust.types.EventT[bytes]:
            return create_event(message.key, message.value, message.headers, message)

        return decode


def raw_partitions(app: faust.App, settings: Settings) -> list[tuple[str, TopicPartition]]:
    """The raw-topic partitions Faust assigned to this worker, with its consumer group (the app id)."""
    raw = set(Topics(settings.namespace).all_raw)
    return [
        (settings.namespace, TopicPartition(tp.topic, tp.partition))
        for tp in app.consumer.assignment()
        if tp.topic in raw
    ]


def _raw_record(message: Any) -> RawRecord:
    return RawRecord.from_message(message, int(message.timestamp * 1000))  # Faust: seconds


class WorkerWeb(Service):
    """/metrics, /healthz and /livez on HOOKSTREAM_WORKER_PORT, in place of Faust's own web stack."""

    def __init__(
        self, settings: Settings, metrics: ProcessorMetrics, liveness: LivenessWatch, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._settings = settings
        self._metrics = metrics
        self._liveness = liveness
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        self._runner = await serve_metrics(
            self._settings.http_host,
            self._settings.worker_port,
            self._metrics.registry,
            extra={"/livez": self._livez},
        )

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _livez(self, _: web.Request) -> web.Response:
        stalled_for = round(self._liveness.stalled_for_s, 1)
        if self._liveness.live:
            return web.json_response({"status": "live", "stalled_for_s": stalled_for})
        status = "refused by Kafka" if self._liveness.refused else "stalled"
        return web.json_response({"status": status, "stalled_for_s": stalled_for}, status=503)
