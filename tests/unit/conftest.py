from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hookstream.settings import Settings
from receivers.app import RUNNER_OPTIONS, make_app
from receivers.metrics import ReceiverMetrics
from receivers.sink import MemorySink
from receivers.sources import Source, enabled_sources
from tests.support import SENDERS

ClientFactory = Callable[..., Coroutine[Any, Any, TestClient[Any, Any]]]


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def metrics() -> ReceiverMetrics:
    return ReceiverMetrics()


@pytest.fixture
async def client_for(sink: MemorySink, metrics: ReceiverMetrics) -> AsyncIterator[ClientFactory]:
    """Builds the receiver app around the memory sink: every sender enabled unless `env` says otherwise,
    `overrides` on top, or ready-made `sources`. Served exactly as `receivers.main` serves it."""
    clients: list[TestClient[Any, Any]] = []

    async def make(
        env: dict[str, str] | None = None, *, sources: list[Source] | None = None, **overrides: str
    ) -> TestClient[Any, Any]:
        settings = Settings.from_env({**(SENDERS if env is None else env), **overrides})
        app = make_app(settings, enabled_sources(settings) if sources is None else sources, sink, metrics)
        server = TestServer(app)
        await server.start_server(**RUNNER_OPTIONS)
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def rejections(metrics: ReceiverMetrics, source: str, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "hookstream_rejections_total", {"source": source, "reason": reason}
    )
    return 0.0 if value is None else value
