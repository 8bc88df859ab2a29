"""The small HTTP side of the non-receiver processes (worker, poller): /metrics and /healthz.

The one module of this package that imports aiohttp; the CLI and the local Kafka launcher never load it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from hookstream.errors import HookstreamError


def metrics_handler(registry: CollectorRegistry) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def metrics_page(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    return metrics_page


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


Handler = Callable[[web.Request], Awaitable[web.Response]]


async def serve_metrics(
    host: str, port: int, registry: CollectorRegistry, extra: dict[str, Handler] | None = None
) -> web.AppRunner:
    """Serve /metrics, /healthz and the `extra` GET routes until the returned runner is cleaned up."""
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(registry))
    app.router.add_get("/healthz", healthz)
    for path, handler in (extra or {}).items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise HookstreamError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return runner
