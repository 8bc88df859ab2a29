"""`hookstream worker`: one member of the processor's consumer group, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from mode import Service

from hookstream.kafka import core_topics, ensure_topics
from hookstream.settings import Settings
from processor.app import create_app, worker_dir
from processor.metrics import ProcessorMetrics
from processor.pipeline import Pipeline


class PipelineService(Service):
    """Starts the pipeline's producer with the worker and flushes it on the way out."""

    def __init__(self, pipeline: Pipeline, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pipeline = pipeline

    async def on_start(self) -> None:
        await self._pipeline.start()

    async def on_stop(self) -> None:
        await self._pipeline.stop()


def run(settings: Settings) -> None:
    worker_dir(settings).mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics(settings, core_topics(settings)))
    metrics = ProcessorMetrics()
    pipeline = Pipeline(settings, metrics)
    app = create_app(settings, metrics, pipeline)
    worker = faust.Worker(app, PipelineService(pipeline), loglevel=settings.log_level, loop=loop)
    worker.execute_from_commandline()
