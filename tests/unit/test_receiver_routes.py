"""Every sender's routes through the real app with the in-memory sink: status codes, the raw record's
headers, and the common rules (disabled senders, overload, slow bodies, bugs) of SPEC §1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from receivers.delivery import RawRequest, Verdict
from receivers.metrics import ReceiverMetrics
from receivers.sink import MemorySink
from receivers.sources import Endpoint, Source
from tests.support import (
    EVENTS_TOKEN,
    HOOTSUITE_SECRET,
    SENDERS,
    STANDARD_SECRET,
    X_SECRET,
    sso_form,
    standard_headers,
    x_signature,
)
from tests.unit.conftest import ClientFactory, rejections


async def test_x_crc_challenge_is_answered_from_the_first_secret(
    client_for: ClientFactory, sink: MemorySink
) -> None:
    client = await client_for(SENDERS | {"HOOKSTREAM_X_CONSUMER_SECRETS": f"{X_SECRET},second"})
    response = await client.get("/webhooks/x", params={"crc_token": "challenge_string"})
    assert response.status == 200
    assert await response.json() == {"response_token": "sha256=mchn+rKsGVnYHN/lGyanuEw6XariJ3D+ARDLDsd0dS0="}
    assert (await client.get("/webhooks/x")).status == 400
    assert (await client.get("/webhooks/x", params={"crc_token": ""})).status == 400
    assert sink.deliveries == []


async def test_x_signed_post_is_delivered_with_its_signature_header(
    client_for: ClientFactory, sink: MemorySink, metrics: ReceiverMetrics
) -> None:
    client = await client_for()
    body = b'{"data": {"id": "1346889436626259968"}, "matching_rules": [{"id": "1", "tag": "api-posts"}]}'
    signature = x_signature(X_SECRET, body)
    headers = {"x-twitter-webhooks-signature": signature, "Content-Type": "application/json"}
    assert (await client.post("/webhooks/x", data=body, headers=headers)).status == 200
    (delivery,) = sink.deliveries
    assert delivery.topic == "hookstream.raw.x"
    assert delivery.value == body
    record_headers = dict(delivery.headers)
    assert record_headers["hs-auth"] == b"hmac-sha256"
    assert record_headers["hs-route"] == b"post"
    assert record_headers["hs-http-x-twitter-webhooks-signature"] == signature.encode()
    headers["x-twitter-webhooks-signature"] = x_signature(X_SECRET, body + b"!")
    assert (await client.post("/webhooks/x", data=body, headers=headers)).status == 401
    assert rejections(metrics, "x", "bad_signature") == 1
    assert len(sink.deliveries) == 1


async def test_hootsuite_callback_answers_success_and_keeps_the_form_as_sent(
    client_for: ClientFactory, sink: MemorySink, metrics: ReceiverMetrics
) -> None:
    client = await client_for()
    body = sso_form(HOOTSUITE_SECRET, int(time.time()), modifiedDate="2026-11-28 15:00:00")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = await client.post("/webhooks/hootsuite/callback", data=body, headers=form)
    assert response.status == 200
    assert await response.json() == {"success": True}
    (delivery,) = sink.deliveries
    assert (delivery.topic, delivery.value) == ("hookstream.raw.hootsuite", body)
    assert dict(delivery.headers)["hs-route"] == b"callback"
    assert dict(delivery.headers)["hs-auth"] == b"sso-sha512"
    stale = sso_form(HOOTSUITE_SECRET, int(time.time()) - 3600)
    assert (await client.post("/webhooks/hootsuite/callback", data=stale, headers=form)).status == 401
    assert rejections(metrics, "hootsuite", "stale_timestamp") == 1
    assert len(sink.deliveries) == 1


async def test_old_sdks_sha1_sso_tokens_pass_only_with_the_switch_and_say_so(
    client_for: ClientFactory, sink: MemorySink, metrics: ReceiverMetrics
) -> None:
    body = sso_form(HOOTSUITE_SECRET, int(time.time()), algorithm="sha1")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    default = await client_for()
    assert (await default.post("/webhooks/hootsuite/callback", data=body, headers=form)).status == 401
    assert rejections(metrics, "hootsuite", "bad_signature") == 1
    switched = await client_for(HOOKSTREAM_HOOTSUITE_SSO_SHA1="true")
    assert (await switched.post("/webhooks/hootsuite/callback", data=body, headers=form)).status == 200
    (delivery,) = sink.deliveries
    assert dict(delivery.headers)["hs-auth"] == b"sso-sha1"


async def test_hootsuite_events_take_arrays_and_single_events_by_url_token(
    client_for: ClientFactory, sink: MemorySink
) -> None:
    client = await client_for()
    array = b'[{"seq_no": "1", "type": "com.hootsuite.ping.event.v1", "data": {}}]'
    single = b'{"type": "message.sent", "data": {"id": "1"}}'
    for body in (array, single):
        response = await client.post(f"/webhooks/hootsuite/events/{EVENTS_TOKEN}", data=body)
        assert response.status == 200
    assert [d.value for d in sink.deliveries] == [array, single]
    assert {dict(d.headers)["hs-route"] for d in sink.deliveries} == {b"events"}
    assert (
        await client.post("/webhooks/hootsuite/events/guessed-token-0123456789", data=single)
    ).status == 401


async def test_standard_webhooks_are_keyed_by_webhook_id_and_named(
    client_for: ClientFactory, sink: MemorySink
) -> None:
    client = await client_for()
    body = '{"type": "invoice.paid", "timestamp": "2026-11-28T15:00:00Z", "data": {"id": "inv_1"}}'
    now = datetime.now(tz=UTC)
    headers = standard_headers(STANDARD_SECRET, "msg_1", now, body)
    assert (await client.post("/webhooks/standard/acme", data=body.encode(), headers=headers)).status == 200
    (delivery,) = sink.deliveries
    assert delivery.topic == "hookstream.raw.standard"
    assert delivery.key == b"msg_1"
    record_headers = dict(delivery.headers)
    assert record_headers["hs-name"] == b"acme"
    assert record_headers["hs-auth"] == b"standard-v1"
    assert {name for name in record_headers if name.startswith("hs-http-")} == {
        "hs-http-webhook-id",
        "hs-http-webhook-timestamp",
        "hs-http-webhook-signature",
    }
    assert (
        await client.post("/webhooks/standard/unknown", data=body.encode(), headers=headers)
    ).status == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/webhooks/x?crc_token=abc"),
        ("POST", "/webhooks/x"),
        ("POST", "/webhooks/hootsuite/callback"),
        ("POST", f"/webhooks/hootsuite/events/{EVENTS_TOKEN}"),
        ("POST", "/webhooks/standard/acme"),
    ],
)
async def test_senders_without_credentials_are_disabled(
    client_for: ClientFactory, method: str, path: str
) -> None:
    client = await client_for({})
    assert (await client.request(method, path)).status == 404


async def test_a_flood_beyond_the_in_flight_bound_gets_fast_503s(
    client_for: ClientFactory, sink: MemorySink, metrics: ReceiverMetrics
) -> None:
    sink.stall = True
    client = await client_for(
        SENDERS | {"HOOKSTREAM_MAX_IN_FLIGHT": "2", "HOOKSTREAM_ACK_TIMEOUT_MS": "60000"}
    )
    url = f"/webhooks/hootsuite/events/{EVENTS_TOKEN}"
    stalled = [asyncio.create_task(client.post(url, data=b"[]")) for _ in range(2)]

    await asyncio.wait_for(sink.wait_stalled(2), 10)
    response = await client.post(url, data=b"[]")
    assert response.status == 503
    assert response.headers["Retry-After"].isdigit()
    assert rejections(metrics, "hootsuite", "overloaded") == 1
    for task in stalled:
        task.cancel()


async def test_a_body_that_trickles_in_too_slowly_is_cut_off(
    client_for: ClientFactory, sink: MemorySink, metrics: ReceiverMetrics
) -> None:
    client = await client_for(SENDERS | {"HOOKSTREAM_READ_TIMEOUT_MS": "200"})

    async def trickle() -> AsyncIterator[bytes]:
        yield b"["
        await asyncio.sleep(2)  # the slow client under test, not synchronisation
        yield b"]"

    response = await client.post(f"/webhooks/hootsuite/events/{EVENTS_TOKEN}", data=trickle())
    assert response.status == 408
    assert rejections(metrics, "hootsuite", "body_timeout") == 1
    assert sink.deliveries == []


async def test_a_verifier_bug_is_a_503_never_a_500_and_never_an_acceptance(
    client_for: ClientFactory, sink: MemorySink, metrics: ReceiverMetrics
) -> None:
    def broken(request: RawRequest) -> Verdict:
        raise KeyError("a bug")

    client = await client_for(
        {}, sources=[Source("x", (Endpoint("/webhooks/x", route="post", verify=broken),))]
    )
    response = await client.post("/webhooks/x", data=b"{}")
    assert response.status == 503
    assert "KeyError" not in await response.text()
    assert rejections(metrics, "x", "internal_error") == 1
    assert sink.deliveries == []


async def test_a_compressed_body_is_refused_with_415_and_kept_out(
    client_for: ClientFactory, sink: MemorySink, metrics: ReceiverMetrics
) -> None:
    client = await client_for()
    url = f"/webhooks/hootsuite/events/{EVENTS_TOKEN}"
    response = await client.post(url, data=b"\x1f\x8b\x08\x00", headers={"Content-Encoding": "gzip"})
    assert response.status == 415
    assert rejections(metrics, "hootsuite", "unsupported_encoding") == 1
    assert (await client.post(url, data=b"[]", headers={"Content-Encoding": "identity"})).status == 200
    assert [delivery.value for delivery in sink.deliveries] == [b"[]"]
