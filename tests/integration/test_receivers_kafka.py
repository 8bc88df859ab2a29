"""Every webhook route against the real broker: an accepted delivery is a raw record with the exact
bytes and headers; every kind of rejection writes nothing; with the broker gone, 503s and then recovery."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import aiohttp

from hookstream.topics import Topics
from tests.integration.harness import Stack, end_offsets, eventually, read_topic
from tests.support import (
    EVENTS_TOKEN,
    FORUM_TOKEN,
    HOOTSUITE_SECRET,
    SENDERS,
    STANDARD_SECRET,
    USER_CREATED,
    X_SECRET,
    run_cli,
    sso_form,
    standard_headers,
    x_signature,
)

X_POST = (
    b'{"data": {"id": "1346889436626259968", "text": "hi"}, "matching_rules": [{"id": "1", "tag": "api"}]}'
)
HOOTSUITE_ARRAY = b'[{"seq_no": "7", "type": "com.hootsuite.messages.event.v1", "data": {"state": "SENT"}}]'
STANDARD_BODY = '{"type": "invoice.paid", "timestamp": "2026-11-28T15:00:00Z", "data": {"id": "inv_1"}}'


async def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status, await response.read()


def accepted_cases() -> list[tuple[str, str, bytes, dict[str, str], dict[str, bytes]]]:
    now = datetime.now(tz=UTC)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    callback = sso_form(HOOTSUITE_SECRET, int(now.timestamp()))
    return [
        (
            "x",
            "/webhooks/x",
            X_POST,
            {"x-twitter-webhooks-signature": x_signature(X_SECRET, X_POST)},
            {"hs-route": b"post", "hs-auth": b"hmac-sha256"},
        ),
        (
            "hootsuite",
            "/webhooks/hootsuite/callback",
            callback,
            form,
            {"hs-route": b"callback", "hs-auth": b"sso-sha512"},
        ),
        (
            "hootsuite",
            f"/webhooks/hootsuite/events/{EVENTS_TOKEN}",
            HOOTSUITE_ARRAY,
            {"Content-Type": "application/json"},
            {"hs-route": b"events", "hs-auth": b"path-token"},
        ),
        (
            "websitetoolbox",
            f"/webhooks/websitetoolbox/{FORUM_TOKEN}",
            USER_CREATED,
            {"Content-Type": "application/json"},
            {"hs-route": b"post", "hs-auth": b"path-token"},
        ),
        (
            "standard",
            "/webhooks/standard/acme",
            STANDARD_BODY.encode(),
            standard_headers(STANDARD_SECRET, "msg_1", now, STANDARD_BODY),
            {
                "hs-route": b"post",
                "hs-auth": b"standard-v1",
                "hs-name": b"acme",
                "hs-http-webhook-id": b"msg_1",
            },
        ),
    ]


def rejected_cases() -> list[tuple[str, str, bytes, dict[str, str], int]]:
    now = datetime.now(tz=UTC)
    stale = now.replace(year=now.year - 1)
    return [
        ("x", "/webhooks/x", X_POST, {}, 401),
        (
            "x",
            "/webhooks/x",
            X_POST,
            {"x-twitter-webhooks-signature": x_signature(X_SECRET, X_POST + b" ")},
            401,
        ),
        (
            "hootsuite",
            "/webhooks/hootsuite/callback",
            sso_form(HOOTSUITE_SECRET, int(time.time()) - 3600),
            {},
            401,
        ),
        ("hootsuite", "/webhooks/hootsuite/callback", b"action=Assignment", {}, 401),
        ("hootsuite", "/webhooks/hootsuite/events/not-the-token-0123456789", HOOTSUITE_ARRAY, {}, 401),
        ("websitetoolbox", "/webhooks/websitetoolbox/not-the-token-0123456789", USER_CREATED, {}, 401),
        ("websitetoolbox", f"/webhooks/websitetoolbox/{FORUM_TOKEN}", b"x" * 5000, {}, 413),
        (
            "standard",
            "/webhooks/standard/acme",
            STANDARD_BODY.encode(),
            standard_headers(STANDARD_SECRET, "msg_2", stale, STANDARD_BODY),
            401,
        ),
        (
            "standard",
            "/webhooks/standard/acme",
            b"{}",
            standard_headers(STANDARD_SECRET, "msg_3", now, STANDARD_BODY),
            401,
        ),
        (
            "standard",
            "/webhooks/standard/other",
            STANDARD_BODY.encode(),
            standard_headers(STANDARD_SECRET, "msg_4", now, STANDARD_BODY),
            404,
        ),
    ]


async def test_every_route_lands_the_exact_bytes_with_the_spec_headers(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    stack.env.update(SENDERS)
    receivers = await stack.receivers()
    topics = Topics(namespace)
    cases = accepted_cases()
    for _, path, body, headers, _ in cases:
        status, _ = await post(receivers.url + path, body, headers)
        assert status == 200, path
    for source in ("x", "hootsuite", "websitetoolbox", "standard"):
        mine = [case for case in cases if case[0] == source]
        records = await read_topic(bootstrap, topics.raw(source), len(mine))
        by_body = {record.value: record for record in records}  # partitions interleave: match by bytes
        assert sorted(by_body) == sorted(case[2] for case in mine)
        for _, _, body, _, expected_headers in mine:
            record = by_body[body]
            written: dict[str, bytes] = dict(record.headers)
            assert written["hs-source"] == source.encode()
            assert written.items() >= expected_headers.items()
            assert written["hs-received-at"].isdigit()
            assert all(value.isascii() for value in written.values())
            assert record.key == (b"msg_1" if source == "standard" else None)


async def test_no_kind_of_rejection_writes_anything(stack: Stack, bootstrap: str, namespace: str) -> None:
    stack.env.update(SENDERS | {"HOOKSTREAM_MAX_BODY_BYTES": "4096"})
    receivers = await stack.receivers()
    topics = Topics(namespace)
    for _, path, body, headers, expected in rejected_cases():
        status, _ = await post(receivers.url + path, body, headers)
        assert status == expected, path
    for source in ("x", "hootsuite", "websitetoolbox", "standard"):
        assert sum((await end_offsets(bootstrap, topics.raw(source))).values()) == 0, source


async def test_broker_down_means_503_within_the_ack_timeout_and_recovery_without_a_restart(
    stack: Stack, namespace: str, own_broker: dict[str, str]
) -> None:
    bootstrap = own_broker["HOOKSTREAM_KAFKA_BOOTSTRAP"]
    stack.bootstrap = bootstrap
    stack.env.update(SENDERS | {"HOOKSTREAM_ACK_TIMEOUT_MS": "1000"})
    receivers = await stack.receivers()
    url = f"{receivers.url}/webhooks/websitetoolbox/{FORUM_TOKEN}"
    assert (await post(url, b'{"n": 1}'))[0] == 200

    assert run_cli("kafka", "stop", env=own_broker).returncode == 0
    started = time.monotonic()
    status, body = await post(url, b'{"n": 2}')
    assert status == 503
    assert time.monotonic() - started < 5, "a request must not hang far beyond HOOKSTREAM_ACK_TIMEOUT_MS"
    assert b"retry" in body
    await receivers.wait_http("/readyz", status=503)

    assert run_cli("kafka", "start", env=own_broker).returncode == 0

    async def accepting() -> bool:
        return (await post(url, b'{"n": 3}'))[0] == 200

    await eventually(accepting, what="receivers to accept again once the broker is back")
    await receivers.wait_http("/readyz", status=200)
    values = [
        record.value for record in await read_topic(bootstrap, Topics(namespace).raw("websitetoolbox"), 2)
    ]
    assert b'{"n": 1}' in values
    assert b'{"n": 3}' in values
    assert receivers.process.poll() is None, "the receivers kept running throughout"
