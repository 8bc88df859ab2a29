"""The receivers' aiohttp application: a route table built once from the enabled senders, and handlers
that only look up, verify, deliver and answer. Every status a webhook route gives is chosen in `_answer`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import Enum
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from prometheus_client import Counter

from hookstream import headers as H
from hookstream.settings import Settings
from hookstream.topics import Topics
from hookstream.web import healthz, metrics_handler
from receivers.delivery import Accepted, Delivery, RawRequest, Reason, Rejected
from receivers.metrics import ReceiverMetrics
from receivers.sink import RawSink, SinkUnavailable
from receivers.sources import Challenge, Endpoint, Source

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RETRY_AFTER_S = "5"


class Outcome(Enum):
    ACCEPTED = 200
    INCOMPLETE = 400
    UNAUTHORIZED = 401
    TIMEOUT = 408
    TOO_LARGE = 413
    UNSUPPORTED = 415
    UNAVAILABLE = 503


_REFUSAL = {
    Reason.BODY_TOO_LARGE: Outcome.TOO_LARGE,
    Reason.BODY_INCOMPLETE: Outcome.INCOMPLETE,
    Reason.BODY_TIMEOUT: Outcome.TIMEOUT,
    Reason.UNSUPPORTED_ENCODING: Outcome.UNSUPPORTED,
    Reason.OVERLOADED: Outcome.UNAVAILABLE,
    Reason.KAFKA_UNAVAILABLE: Outcome.UNAVAILABLE,
    Reason.INTERNAL_ERROR: Outcome.UNAVAILABLE,
}
_ERRORS = {
    Outcome.INCOMPLETE: "request body incomplete",
    Outcome.UNAUTHORIZED: "unauthorized",
    Outcome.TIMEOUT: "request body too slow",
    Outcome.TOO_LARGE: "request body too large",
    Outcome.UNSUPPORTED: "compressed bodies are not accepted; send identity encoding",
    Outcome.UNAVAILABLE: "not stored; retry later",
}


def _answer(outcome: Outcome, request_id: str, reply_body: bytes = b"") -> web.Response:
    """The one place that maps what happened to a delivery onto its HTTP answer.

    Only ACCEPTED is a 2xx, and only a delivery Kafka acknowledged is ACCEPTED. Authentication failures of
    every kind are 401; anything that is our side's or Kafka's fault is 503 with Retry-After, so the
    sender retries and nothing is lost."""
    headers = {"X-Request-Id": request_id}
    if outcome is Outcome.ACCEPTED:
        if not reply_body:
            return web.Response(status=200, headers=headers)
        return web.Response(status=200, body=reply_body, content_type="application/json", headers=headers)
    if outcome is Outcome.UNAVAILABLE:
        headers["Retry-After"] = RETRY_AFTER_S
    return web.json_response({"error": _ERRORS[outcome]}, status=outcome.value, headers=headers)


def make_app(
    settings: Settings, sources: list[Source], sink: RawSink, metrics: ReceiverMetrics
) -> web.Application:
    """Build the application from ready objects; `receivers.main` does the wiring from settings."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    topics = Topics(settings.namespace)
    in_flight = InFlight(settings.max_in_flight)
    for source in sources:
        for endpoint in source.endpoints:
            if isinstance(endpoint, Endpoint):
                handler = _ingest_handler(settings, topics, source.name, endpoint, sink, metrics, in_flight)
            else:
                handler = _challenge_handler(source.name, endpoint, metrics)
            app.router.add_route(endpoint.method, endpoint.path, _no_tracebacks(handler))

    async def readyz(_: web.Request) -> web.Response:
        blocker = await sink.blocker()
        if blocker is None:
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "not ready", "reason": blocker}, status=503)

    app.router.add_get("/healthz", _no_tracebacks(healthz))
    app.router.add_get("/readyz", _no_tracebacks(readyz))
    app.router.add_get("/metrics", _no_tracebacks(metrics_handler(metrics.registry)))

    async def sink_lifecycle(_: web.Application) -> AsyncIterator[None]:
        await sink.start()
        yield
        await sink.stop()

    app.cleanup_ctx.append(sink_lifecycle)
    return app


class InFlight:
    """Counts deliveries being handled; past `limit`, new ones are refused at once (503) instead of
    queueing behind a slow Kafka until every request times out."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0


def _no_tracebacks(handler: Handler) -> Handler:
    """`handler`, except that a bug anywhere in it answers 503 + Retry-After (the sender retries), never a
    500 with a trace. Each route's handler is wrapped, rather than the app given a middleware: aiohttp's
    middleware chain runs two more coroutines a request (~18 µs, a sixth of a request at 64 clients)."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:
            request_id = _request_id()
            log.exception("unexpected error", extra={"request_id": request_id})
            return _answer(Outcome.UNAVAILABLE, request_id)

    return guarded


def _raw_request(request: web.Request, body: bytes, received_at_ms: int) -> RawRequest:
    return RawRequest(
        method=request.method,
        headers=request.headers,
        body=body,
        received_at_ms=received_at_ms,
        path_params=request.match_info,
        query=request.query,
    )


async def _body(request: web.Request, timeout_s: float) -> bytes:
    """The whole body, within `timeout_s`. One that has all arrived already (a webhook's usually comes in
    the packet of its headers) is read without arming a timer: it cannot wait (~8 µs a request)."""
    if request.content.is_eof():
        return await request.read()
    async with asyncio.timeout(timeout_s):
        return await request.read()


def _request_id() -> str:
    """128 random bits in hex, as `uuid4().hex` gives, without its system call a request (2 µs). It names
    a request in logs, headers and the raw record: it needs to be unique, not unguessable."""
    return f"{random.getrandbits(128):032x}"


def _ascii(value: str) -> bytes:
    return value.encode("ascii", "backslashreplace")


def _ingest_handler(
    settings: Settings,
    topics: Topics,
    source: str,
    endpoint: Endpoint,
    sink: RawSink,
    metrics: ReceiverMetrics,
    in_flight: InFlight,
) -> Handler:
    topic = topics.raw(source)
    ack_timeout_s = settings.ack_timeout_ms / 1000
    read_timeout_s = settings.read_timeout_ms / 1000
    fixed_headers = ((H.SOURCE, source.encode()), (H.ROUTE, endpoint.route.encode()))
    answered: dict[int, Counter] = {}  # status → its hookstream_requests_total child (labels() costs µs)
    latency = metrics.request_seconds.labels(source)

    def refuse(reason: Reason, request_id: str) -> web.Response:
        metrics.rejections.labels(source, reason.value).inc()
        log.info("refused", extra={"source": source, "reason": reason.value, "request_id": request_id})
        return _answer(_REFUSAL.get(reason, Outcome.UNAUTHORIZED), request_id)

    async def handle(request: web.Request) -> web.Response:
        started = time.perf_counter()
        received_at_ms = time.time_ns() // 1_000_000
        request_id = _request_id()
        if in_flight.count >= in_flight.limit:
            response = refuse(Reason.OVERLOADED, request_id)
        else:
            in_flight.count += 1
            try:
                response = await receive(request, received_at_ms, request_id)
            finally:
                in_flight.count -= 1
        if (counter := answered.get(response.status)) is None:
            counter = answered[response.status] = metrics.requests.labels(source, str(response.status))
        counter.inc()
        latency.observe(time.perf_counter() - started)
        return response

    async def receive(request: web.Request, received_at_ms: int, request_id: str) -> web.Response:
        if request.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
            return refuse(Reason.UNSUPPORTED_ENCODING, request_id)
        try:
            body = await _body(request, read_timeout_s)
        except web.HTTPRequestEntityTooLarge:
            return refuse(Reason.BODY_TOO_LARGE, request_id)
        except TimeoutError:
            return refuse(Reason.BODY_TIMEOUT, request_id)
        except (ConnectionError, web.HTTPBadRequest, OSError):
            return refuse(Reason.BODY_INCOMPLETE, request_id)
        try:
            verdict = endpoint.verify(_raw_request(request, body, received_at_ms))
        except Exception:
            log.exception("verifier failed", extra={"source": source, "request_id": request_id})
            return refuse(Reason.INTERNAL_ERROR, request_id)
        if isinstance(verdict, Rejected):
            return refuse(verdict.reason, request_id)
        delivery = _delivery(request, body, received_at_ms, request_id, verdict)
        produce_started = time.perf_counter()
        try:
            await sink.deliver(delivery, asyncio.get_running_loop().time() + ack_timeout_s)
        except SinkUnavailable:
            return refuse(Reason.KAFKA_UNAVAILABLE, request_id)
        metrics.kafka_produce_seconds.observe(time.perf_counter() - produce_started)
        return _answer(Outcome.ACCEPTED, request_id, endpoint.reply_body)

    def _delivery(
        request: web.Request, body: bytes, received_at_ms: int, request_id: str, verdict: Accepted
    ) -> Delivery:
        record_headers = [
            *fixed_headers,
            (H.RECEIVED_AT, str(received_at_ms).encode()),
            (H.REQUEST_ID, request_id.encode()),
            (H.AUTH, verdict.auth.encode()),
            *verdict.headers,
        ]
        if content_type := request.headers.get("Content-Type"):
            record_headers.append((H.CONTENT_TYPE, _ascii(content_type)))
        for name in endpoint.keep_headers:
            if (value := request.headers.get(name)) is not None:
                record_headers.append((H.HTTP_PREFIX + name, _ascii(value)))
        return Delivery(topic=topic, value=body, key=verdict.key, headers=tuple(record_headers))

    return handle


def _challenge_handler(source: str, challenge: Challenge, metrics: ReceiverMetrics) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        reply = challenge.respond(_raw_request(request, b"", time.time_ns() // 1_000_000))
        metrics.requests.labels(source, str(reply.status)).inc()
        return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)

    return handle


class RouteAccessLogger(AbstractAccessLogger):
    """Access log lines name the route pattern, never the path: path tokens are credentials."""

    @property
    def enabled(self) -> bool:
        """Whether aiohttp should log requests at all (it asks once a connection): only where INFO is
        logged. AbstractAccessLogger says always, which cost ~13 µs a request with logging at WARNING."""
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.1fms", request.method, _route_of(request), response.status, time * 1000)


def _route_of(request: web.BaseRequest) -> str:
    """The matched route's pattern; a request aiohttp could not even parse has none."""
    try:
        resource = request.match_info.route.resource if isinstance(request, web.Request) else None
    except AssertionError:  # aiohttp asserts when a malformed request never reached routing
        resource = None
    return resource.canonical if resource is not None else "(no route)"


# How every server of the app must be run (`receivers.main` and the tests alike). An idle or stalled
# connection (no complete request yet, or none since the last) is closed after `keepalive_timeout`.
# Bodies are never decompressed: we keep the bytes as sent, and a Content-Encoding other than identity
# is refused with 415 before reading (none of our senders compress; a zip bomb cannot get in).
RUNNER_OPTIONS: dict[str, Any] = {
    "access_log_class": RouteAccessLogger,
    "keepalive_timeout": 30,
    "auto_decompress": False,
}
