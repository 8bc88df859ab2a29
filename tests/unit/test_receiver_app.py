"""The receiver app with the in-memory sink: the common statuses of SPEC §1, on the forum route."""

from __future__ import annotations

import asyncio
import logging

import pytest

from receivers.app import RouteAccessLogger
from receivers.delivery import Delivery
from receivers.main import MalformedRequestFilter
from receivers.metrics import ReceiverMetrics
from receivers.sink import MemorySink
from tests.support import FORUM_TOKEN, USER_CREATED
from tests.unit.conftest import ClientFactory

TOKEN = FORUM_TOKEN


def sample(metrics: ReceiverMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_an_accepted_delivery_keeps_the_exact_bytes_and_the_spec_headers(
    client_for: ClientFactory, sink: MemorySink, metrics: ReceiverMetrics
) -> None:
    client = await client_for()
    response = await client.post(
        f"/webhooks/websitetoolbox/{TOKEN}", data=USER_CREATED, headers={"Content-Type": "application/json"}
    )
    assert response.status == 200
    (delivery,) = sink.deliveries
    assert delivery.topic == "hookstream.raw.websitetoolbox"
    assert delivery.value == USER_CREATED
    assert delivery.key is None
    headers = dict(delivery.headers)
    assert headers["hs-source"] == b"websitetoolbox"
    assert headers["hs-route"] == b"post"
    assert headers["hs-auth"] == b"path-token"
    assert headers["content-type"] == b"application/json"
    assert headers["hs-received-at"].isdigit()
    assert len(headers["hs-received-at"]) == 13
    assert headers["hs-request-id"].decode() == response.headers["X-Request-Id"]
    assert all(value.isascii() for value in headers.values())
    assert sample(metrics, "hookstream_requests_total", source="websitetoolbox", code="200") == 1


async def test_a_wrong_token_is_401_counted_and_writes_nothing(
    client_for: ClientFactory, sink: MemorySink, metrics: ReceiverMetrics
) -> None:
    client = await client_for()
    response = await client.post("/webhooks/websitetoolbox/forum-token-0123456789abcdeX", data=USER_CREATED)
    assert response.status == 401
    assert sink.deliveries == []
    assert sample(metrics, "hookstream_rejections_total", source="websitetoolbox", reason="bad_token") == 1


async def test_the_path_token_never_reaches_the_log(
    client_for: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await client_for()
    await client.post(f"/webhooks/websitetoolbox/{TOKEN}", data=USER_CREATED)
    await client.post(f"/webhooks/websitetoolbox/{TOKEN}-but-wrong", data=USER_CREATED)
    assert caplog.records, "the requests were logged"
    assert TOKEN not in caplog.text


async def test_a_body_over_the_limit_is_413_and_writes_nothing(
    client_for: ClientFactory, sink: MemorySink, metrics: ReceiverMetrics
) -> None:
    client = await client_for(HOOKSTREAM_MAX_BODY_BYTES="100")
    response = await client.post(f"/webhooks/websitetoolbox/{TOKEN}", data=b"x" * 101)
    assert response.status == 413
    assert sink.deliveries == []
    assert (
        sample(metrics, "hookstream_rejections_total", source="websitetoolbox", reason="body_too_large") == 1
    )
    assert (await client.post(f"/webhooks/websitetoolbox/{TOKEN}", data=b"x" * 100)).status == 200


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/webhooks/nowhere", 404),
        ("POST", "/webhooks/websitetoolbox", 404),
        ("GET", f"/webhooks/websitetoolbox/{TOKEN}", 405),
        ("PUT", f"/webhooks/websitetoolbox/{TOKEN}", 405),
    ],
)
async def test_unknown_routes_and_wrong_methods(
    client_for: ClientFactory, sink: MemorySink, method: str, path: str, status: int
) -> None:
    client = await client_for()
    assert (await client.request(method, path)).status == status
    assert sink.deliveries == []


async def test_a_source_without_a_token_is_disabled(client_for: ClientFactory, sink: MemorySink) -> None:
    client = await client_for(HOOKSTREAM_WEBSITETOOLBOX_TOKEN="")
    assert (await client.post(f"/webhooks/websitetoolbox/{TOKEN}", data=USER_CREATED)).status == 404
    assert sink.deliveries == []


@pytest.mark.parametrize("failure", ["fail", "stall"])
async def test_no_ack_from_kafka_is_503_with_retry_after(
    client_for: ClientFactory, sink: MemorySink, metrics: ReceiverMetrics, failure: str
) -> None:
    setattr(sink, failure, True)
    client = await client_for(HOOKSTREAM_ACK_TIMEOUT_MS="50")
    response = await client.post(f"/webhooks/websitetoolbox/{TOKEN}", data=USER_CREATED)
    assert response.status == 503
    assert response.headers["Retry-After"].isdigit()
    assert sink.deliveries == []
    assert (
        sample(metrics, "hookstream_rejections_total", source="websitetoolbox", reason="kafka_unavailable")
        == 1
    )
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/healthz")).status == 200


async def test_health_readiness_and_metrics(client_for: ClientFactory) -> None:
    client = await client_for()
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    await client.post(f"/webhooks/websitetoolbox/{TOKEN}", data=USER_CREATED)
    page = await (await client.get("/metrics")).text()
    for name in (
        "hookstream_requests_total",
        "hookstream_request_seconds_bucket",
        "hookstream_kafka_produce_seconds_bucket",
    ):
        assert name in page
    assert TOKEN not in page


async def test_a_request_aiohttp_cannot_parse_is_one_info_line_without_the_request_line(
    client_for: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    logging.getLogger("aiohttp.server").addFilter(filter_ := MalformedRequestFilter())
    try:
        caplog.set_level(logging.DEBUG)
        client = await client_for()
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(
            f"POST /webhooks/websitetoolbox/{TOKEN}\x80 HTTP/1.1\r\nHost: x\r\n\r\n".encode("latin-1")
        )
        await writer.drain()
        assert (await reader.readline()).split()[1] == b"400"
        writer.close()
    finally:
        logging.getLogger("aiohttp.server").removeFilter(filter_)
    refused = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [(r.levelname, r.getMessage()) for r in refused] == [
        ("INFO", "refused a malformed HTTP request: InvalidURLError")
    ]
    assert TOKEN not in caplog.text


async def test_a_bug_below_the_handler_is_a_503_with_retry_after_never_a_500(
    client_for: ClientFactory,
    sink: MemorySink,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(delivery: Delivery, deadline: float) -> None:
        raise RuntimeError("a bug in the sink")

    monkeypatch.setattr(sink, "deliver", broken)
    client = await client_for()
    response = await client.post(f"/webhooks/websitetoolbox/{TOKEN}", data=USER_CREATED)
    assert response.status == 503
    assert response.headers["Retry-After"].isdigit()
    assert "RuntimeError" not in await response.text()
    assert any(record.message == "unexpected error" for record in caplog.records), "logged, not swallowed"


@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING])
async def test_access_lines_name_the_route_never_the_token_and_only_where_info_is_logged(
    client_for: ClientFactory, caplog: pytest.LogCaptureFixture, level: int
) -> None:
    caplog.set_level(level, logger="aiohttp.access")
    client = await client_for()
    assert (await client.post(f"/webhooks/websitetoolbox/{TOKEN}", data=USER_CREATED)).status == 200
    lines = [record.getMessage() for record in caplog.records if record.name == "aiohttp.access"]
    # aiohttp skips the logger's work (formatting each line's arguments) where `enabled` says no
    assert RouteAccessLogger(logging.getLogger("aiohttp.access"), "").enabled is (level == logging.INFO)
    if level == logging.INFO:
        assert lines == ["POST /webhooks/websitetoolbox/{token} 200 " + lines[0].split()[-1]]
        assert TOKEN not in lines[0]
    else:
        assert lines == []
