"""`hookstream demo` without a broker: its signatures pass our verifiers and independent ones (the
documented CRC vector, the official standardwebhooks package, tests.support's stdlib signer), and a whole
run against the receiver app (in-memory sink) is accepted and normalizes into every event family."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from multidict import CIMultiDict
from standardwebhooks.webhooks import Webhook

from hookstream import demo
from hookstream.settings import Secret, Settings
from processor.normalize import normalize
from processor.records import RawRecord
from receivers.delivery import Accepted, Delivery, RawRequest, Verdict
from receivers.sink import MemorySink
from receivers.sources import Endpoint, Source, hootsuite, standard, x
from tests.support import (
    EVENTS_TOKEN,
    FORUM_TOKEN,
    HOOTSUITE_SECRET,
    SENDERS,
    STANDARD_SECRET,
    X_SECRET,
    free_port,
    x_signature,
)
from tests.unit.conftest import ClientFactory

SETTINGS = Settings.from_env(SENDERS)


def verdict(endpoint: Endpoint, body: bytes, headers: Mapping[str, str], **path: str) -> Verdict:
    """What a receiver's verifier says about a request with these headers and body, received now."""
    request = RawRequest(
        method="POST",
        headers=CIMultiDict(headers),
        body=body,
        received_at_ms=time.time_ns() // 1_000_000,
        path_params=path,
    )
    return endpoint.verify(request)


def endpoint(source: Source | None, path: str) -> Endpoint:
    assert source is not None
    (found,) = [e for e in source.endpoints if isinstance(e, Endpoint) and e.path == path]
    return found


def test_the_x_crc_answer_matches_the_documented_vector() -> None:
    assert (
        demo.x_crc_answer("your_consumer_secret_here", "challenge_string")
        == "sha256=mchn+rKsGVnYHN/lGyanuEw6XariJ3D+ARDLDsd0dS0="
    )


@pytest.mark.parametrize("body", [demo.x_post(1), demo.x_activity(2)])
def test_x_signatures_pass_our_verifier_and_match_an_independent_signer(body: bytes) -> None:
    headers = demo.x_headers(body, X_SECRET)
    assert headers[demo.X_SIGNATURE_HEADER] == x_signature(X_SECRET, body)
    assert verdict(endpoint(x.build(SETTINGS), x.PATH), body, headers) == Accepted(auth="hmac-sha256")


def test_the_hootsuite_callback_passes_the_sso_check_with_a_fresh_timestamp() -> None:
    now = int(time.time())
    fields = demo.hootsuite_callback_fields(7, datetime.fromtimestamp(now, tz=UTC))
    body = demo.hootsuite_callback_body(fields, HOOTSUITE_SECRET, now)
    check = endpoint(hootsuite.build(SETTINGS), "/webhooks/hootsuite/callback")
    headers = {"content-type": demo.FORM}
    assert verdict(check, body, headers) == Accepted(auth="sso-sha512")
    stale = demo.hootsuite_callback_body(fields, HOOTSUITE_SECRET, now - 3600)
    assert not isinstance(verdict(check, stale, headers), Accepted)
    forged = demo.hootsuite_callback_body(fields, "another-secret", now)
    assert not isinstance(verdict(check, forged, headers), Accepted)


def test_the_standard_signature_passes_our_verifier_and_the_official_package() -> None:
    body = demo.standard_event(3)
    (secret,) = SETTINGS.standard_secrets["acme"]
    headers = demo.standard_headers(body, secret, "msg_demo_3", int(time.time()))
    Webhook(STANDARD_SECRET).verify(body, headers)  # raises WebhookVerificationError otherwise
    check = endpoint(standard.build(SETTINGS), "/webhooks/standard/acme")
    accepted = verdict(check, body, headers)
    assert isinstance(accepted, Accepted)
    assert accepted.auth == "standard-v1"


def test_every_sender_is_sent_with_its_ids_new_on_every_run() -> None:
    first, second = demo.deliveries(SETTINGS, 1_000_000_000), demo.deliveries(SETTINGS, 2_000_000_000)
    assert all(isinstance(item, demo.Delivery) for item in first)
    assert [item.kind for item in first] == [
        "x crc check",
        "x filtered-stream post",
        "x account activity",
        "hootsuite assignment callback",
        "hootsuite rest webhook batch",
        "hootsuite stream message.sent",
        "websitetoolbox user.created",
        "standard acme invoice.paid",
    ]
    bodies = [item.body for item in first if isinstance(item, demo.Delivery) and item.body]
    assert len(set(bodies)) == len(bodies)
    again = {item.body for item in second if isinstance(item, demo.Delivery)}
    assert not again & set(bodies)


def test_printed_patterns_never_hold_a_token() -> None:
    for item in demo.deliveries(SETTINGS):
        assert isinstance(item, demo.Delivery)
        assert EVENTS_TOKEN not in item.pattern
        assert FORUM_TOKEN not in item.pattern


async def test_a_whole_run_is_accepted_and_becomes_every_event_family(
    client_for: ClientFactory, sink: MemorySink
) -> None:
    client = await client_for()
    out = io.StringIO()
    code = await asyncio.to_thread(demo.run, SETTINGS, str(client.make_url("/")), out)
    lines = out.getvalue().splitlines()
    assert code == 0, out.getvalue()
    assert len(lines) == 9
    assert all(line.rstrip().endswith("200") for line in lines[:8])
    for secret in (X_SECRET, HOOTSUITE_SECRET, EVENTS_TOKEN, FORUM_TOKEN, STANDARD_SECRET):
        assert secret not in out.getvalue()
    types = {event.type for delivery in sink.deliveries for event in normalize(_raw(delivery)).events}
    assert types == {
        "com.x.post.matched",
        "com.x.tweet_create",
        "com.hootsuite.assignment.open",
        "com.hootsuite.message.scheduled",
        "com.hootsuite.message.sent",
        "com.hootsuite.message.failed",
        "com.websitetoolbox.user.created",
        "acme.invoice.paid",
    }


async def test_disabled_senders_are_skipped_with_the_setting_that_enables_them(
    client_for: ClientFactory,
) -> None:
    client = await client_for()
    settings = Settings.from_env({"HOOKSTREAM_WEBSITETOOLBOX_TOKEN": FORUM_TOKEN})
    out = io.StringIO()
    code = await asyncio.to_thread(demo.run, settings, str(client.make_url("")), out)
    assert code == 0
    text = out.getvalue()
    for setting in (
        "HOOKSTREAM_X_CONSUMER_SECRETS",
        "HOOKSTREAM_HOOTSUITE_SECRETS",
        "HOOKSTREAM_HOOTSUITE_EVENTS_TOKEN",
        "HOOKSTREAM_STANDARD_SECRETS",
    ):
        assert f"set {setting}" in text
    assert "1 of 1 deliveries accepted" in text


async def test_a_refused_delivery_or_a_wrong_crc_answer_fails_the_run(client_for: ClientFactory) -> None:
    client = await client_for()
    settings = Settings.from_env({"HOOKSTREAM_X_CONSUMER_SECRETS": "not-the-receivers-secret"})
    out = io.StringIO()
    code = await asyncio.to_thread(demo.run, settings, str(client.make_url("")), out)
    assert code == 1
    crc, post, activity = out.getvalue().splitlines()[:3]
    assert crc.endswith("200, but the CRC answer is wrong")
    assert post.endswith("401")
    assert activity.endswith("401")


def test_no_receiver_at_the_url_fails_the_run_with_the_reason() -> None:
    out = io.StringIO()
    code = demo.run(SETTINGS, f"http://127.0.0.1:{free_port()}", out)
    assert code == 1
    assert "no answer: " in out.getvalue()
    assert "0 of 8 deliveries accepted" in out.getvalue()


def test_nothing_configured_sends_nothing_and_says_so() -> None:
    out = io.StringIO()
    assert demo.run(Settings(), "http://127.0.0.1:9", out) == 1
    assert "nothing sent" in out.getvalue()


def test_with_no_sender_configured_the_demo_signs_with_what_make_run_wrote(tmp_path: Path) -> None:
    run_env = tmp_path / "demo.env"
    run_env.write_text(f"HOOKSTREAM_WEBSITETOOLBOX_TOKEN={FORUM_TOKEN}\nHOOKSTREAM_HTTP_PORT=8081\nPATH=/x\n")
    out = io.StringIO()
    settings = demo.with_run_env(Settings(), {"HOOKSTREAM_HTTP_PORT": "9000"}, run_env, out)
    assert settings.websitetoolbox_token is not None
    assert settings.websitetoolbox_token.reveal() == FORUM_TOKEN
    assert settings.http_port == 9000, "the environment wins over the file"
    assert str(run_env) in out.getvalue()
    assert FORUM_TOKEN not in out.getvalue()
    configured = Settings(x_consumer_secrets=(Secret("s"),))
    assert demo.with_run_env(configured, {}, run_env, out) is configured, "a configured sender wins"
    assert demo.with_run_env(Settings(), {}, tmp_path / "absent.env", out) == Settings()


def test_the_demo_loads_neither_aiohttp_nor_faust() -> None:
    code = (
        "import sys, hookstream.cli, hookstream.demo\nprint(sorted({'aiohttp', 'faust'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _raw(delivery: Delivery) -> RawRecord:
    """A delivery as the worker will read it back from its raw topic."""
    headers = dict(delivery.headers)
    return RawRecord(delivery.topic, 0, 0, delivery.key, delivery.value, headers, time.time_ns() // 10**6)
