"""The one place Kafka clients are made: every aiokafka producer, consumer and admin client of every
process is built here from `Settings`, so none can forget the security settings (SPEC §7).

`tests/unit/test_clients.py` fails when code anywhere else constructs an aiokafka client itself. Faust's
own clients take the same settings through `processor.transport.broker_credentials`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from aiokafka.conn import AIOKafkaConnection, CloseReason
from aiokafka.errors import KafkaConnectionError

from hookstream.settings import Settings

T = TypeVar("T")


def client_options(settings: Settings) -> dict[str, Any]:
    """aiokafka's connection options: where the brokers are, and how to log in and check them."""
    security = settings.kafka_security
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": security.protocol,
    }
    if security.uses_ssl:
        options["ssl_context"] = security.ssl_context()
    if security.uses_sasl:
        assert security.sasl_password is not None  # KafkaSecurity.checked() saw to it
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.sasl_username
        options["sasl_plain_password"] = security.sasl_password.reveal()
    return options


def producer(settings: Settings, **options: Any) -> AIOKafkaProducer:
    """A producer with `options`; create it inside the running event loop."""
    return AIOKafkaProducer(**client_options(settings), **options)


def consumer(settings: Settings, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer of `topics` (or none: assign or subscribe later) with `options`."""
    return AIOKafkaConsumer(*topics, **client_options(settings), **options)


def admin(settings: Settings, **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings), **options)


def client(settings: Settings, **options: Any) -> AIOKafkaClient:
    """aiokafka's bare client: bootstrap metadata from the bootstrap addresses only."""
    return AIOKafkaClient(**client_options(settings), **options)


def event_loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop where it is installed, except when Kafka connections use TLS; with uvloop, aiokafka's
    connections mended for it (`_closed_transport_writes_fail_as_connection_errors`).

    uvloop's TLS transport stops reading once closed and waits up to 30 s for the peer's close_notify
    (MagicStack/uvloop#471, open), so stopping a Kafka client whose fetch answer is still on the way
    took 30 s in one stop out of three here (a partition take-over, a readiness probe). CPython's own
    loop closes at once."""
    if settings.kafka_security.uses_ssl:
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency wherever it installs
        return asyncio.new_event_loop
    _closed_transport_writes_fail_as_connection_errors()
    return uvloop.new_event_loop


def _closed_transport_writes_fail_as_connection_errors() -> None:
    """aiokafka turns an OSError from writing a request into a KafkaConnectionError, which its clients
    retry on a new connection. uvloop raises RuntimeError instead when the broker closed the connection
    a moment before and aiokafka's reader has not seen it yet (aio-libs/aiokafka#1038, open), and aiokafka
    takes that for a bug: a consumer's group coordinator keeps it and `getmany` raises it, which stopped a
    worker when one broker of three was killed (tests/integration/test_replicated_kafka.py). Here it is
    the connection error it is. Idempotent."""
    send = AIOKafkaConnection.send
    if getattr(send, "mended_for_uvloop", False):
        return

    @functools.wraps(send)
    def mended(self: AIOKafkaConnection, request: Any, expect_response: bool = True) -> Any:
        try:
            return send(self, request, expect_response)
        except RuntimeError as exc:
            writer = self._writer
            if writer is None or not writer.transport.is_closing():
                raise
            self.close(reason=CloseReason.CONNECTION_BROKEN)
            raise KafkaConnectionError(f"Connection at {self._host}:{self._port} broken: {exc}") from exc

    mended.mended_for_uvloop = True  # type: ignore[attr-defined]
    AIOKafkaConnection.send = mended


def run(settings: Settings, main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the event loop `event_loop_factory` picks for these settings."""
    with asyncio.Runner(loop_factory=event_loop_factory(settings)) as runner:
        return runner.run(main)
