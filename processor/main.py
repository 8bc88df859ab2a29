"""`hookstream worker`: one member of the processor's consumer groups, until SIGINT/SIGTERM.

The Faust worker hosts both stages: the normalize agent (Faust's consumer group `<ns>`) and the
dedup stage (`<ns>-dedup`), started and stopped with it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from mode import Service

from hookstream import clients
from hookstream.heap import freeze_startup_objects
from hookstream.settings import Settings
from hookstream.topics import Topics
from processor.app import WorkerWeb, create_app, raw_partitions, worker_dir
from processor.dedup_stage import DedupStage
from processor.liveness import LivenessWatch, admitted
from processor.metrics import ProcessorMetrics
from processor.pipeline import Pipeline
from processor.route import Routes


class Stages(Service):
    """Starts the pipeline's producer, the dedup stage and the liveness watch with the worker, and
    stops them on the way out."""

    def __init__(self, pipeline: Pipeline, dedup: DedupStage, liveness: LivenessWatch, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pipeline = pipeline
        self._dedup = dedup
        self._liveness = liveness

    async def on_start(self) -> None:
        await self._pipeline.start()
        await self._dedup.start()
        await self._liveness.start()
        freeze_startup_objects()

    @Service.task
    async def _dedup_stage_runs(self) -> None:
        """An error that ends the dedup stage's loop crashes the worker (mode re-raises it at exit, so
        the process exits non-zero and is restarted), never a worker that consumes and never publishes."""
        await self._dedup.ended()

    async def on_stop(self) -> None:
        await self._liveness.stop()
        await self._dedup.stop()
        await self._pipeline.stop()


def run(settings: Settings) -> None:
    routes = Routes.load(Topics(settings.namespace), settings.routes_file)
    worker_dir(settings).mkdir(parents=True, exist_ok=True)
    loop = clients.event_loop_factory(settings)()
    asyncio.set_event_loop(loop)
    metrics = ProcessorMetrics()
    loop.run_until_complete(admitted(settings, metrics.registry))
    pipeline = Pipeline(settings, metrics, routes)
    dedup = DedupStage(settings, metrics, worker_dir(settings))
    app = create_app(settings, pipeline)
    liveness = LivenessWatch(settings, lambda: [*raw_partitions(app, settings), *dedup.owned()])
    app.web_server(WorkerWeb(settings, metrics, liveness))
    worker = faust.Worker(
        app,
        Stages(pipeline, dedup, liveness),
        loglevel=settings.log_level,
        loop=loop,
        override_logging=False,  # keep our format (hookstream.logs), with its key=value context
    )
    worker.execute_from_commandline()
