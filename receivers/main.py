"""`hookstream receivers`: wire settings into the app and serve it until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from hookstream import clients
from hookstream.heap import collect_young_less_often, freeze_startup_objects
from hookstream.settings import Settings
from receivers.app import RUNNER_OPTIONS, make_app
from receivers.metrics import ReceiverMetrics
from receivers.sink import KafkaSink, RawSink
from receivers.sources import enabled_sources

log = logging.getLogger("receivers")


def run(settings: Settings) -> None:
    serve(settings, KafkaSink(settings))


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs every request its parser refuses (it answers 400) at ERROR with a traceback whose
    message quotes the request line, which may hold a path token. Keep one INFO line naming the error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args = "refused a malformed HTTP request: %s", (type(exc).__name__,)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def serve(settings: Settings, sink: RawSink) -> None:
    """Serve the receivers with `sink` until SIGINT/SIGTERM (event loop: `clients.event_loop_factory`)."""
    logging.getLogger("aiohttp.server").addFilter(MalformedRequestFilter())
    sources = enabled_sources(settings)
    if sources:
        log.info("sources enabled", extra={"sources": ",".join(source.name for source in sources)})
    else:
        log.warning("no source is configured: every webhook route answers 404")
    app = make_app(settings, sources, sink, ReceiverMetrics())
    clients.run(settings, _serve(app, settings))


async def _serve(app: web.Application, settings: Settings) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    runner = web.AppRunner(app, **RUNNER_OPTIONS)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port, reuse_port=True)
    await site.start()
    freeze_startup_objects()
    collect_young_less_often()
    log.info("receivers listening", extra={"url": f"http://{settings.http_host}:{settings.http_port}"})
    try:
        await stopping.wait()
        log.info("stopping: finishing requests in flight")
    finally:
        await runner.cleanup()
