"""`hookstream receivers`: wire settings into the app and serve it until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from hookstream.settings import Settings
from receivers.app import RUNNER_OPTIONS, make_app
from receivers.metrics import ReceiverMetrics
from receivers.sink import KafkaSink, RawSink
from receivers.sources import enabled_sources

log = logging.getLogger("receivers")


def run(settings: Settings) -> None:
    serve(settings, KafkaSink(settings))


def serve(settings: Settings, sink: RawSink) -> None:
    """Serve the receivers with `sink` until SIGINT/SIGTERM, on uvloop where it is installed."""
    sources = enabled_sources(settings)
    if sources:
        log.info("sources enabled", extra={"sources": ",".join(source.name for source in sources)})
    else:
        log.warning("no source is configured: every webhook route answers 404")
    app = make_app(settings, sources, sink, ReceiverMetrics())
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency wherever it installs
        runner = asyncio.run
    else:
        runner = uvloop.run
    runner(_serve(app, settings))


async def _serve(app: web.Application, settings: Settings) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    runner = web.AppRunner(app, **RUNNER_OPTIONS)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port, reuse_port=True)
    await site.start()
    log.info("receivers listening", extra={"url": f"http://{settings.http_host}:{settings.http_port}"})
    try:
        await stopping.wait()
        log.info("stopping: finishing requests in flight")
    finally:
        await runner.cleanup()
