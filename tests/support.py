"""Helpers both test suites use: run our CLI, pick a free port, sign like the senders do, and the
expected forum CloudEvent."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from standardwebhooks.webhooks import Webhook

from hookstream.localcluster import bindable, pick_ports
from tests.fixtures import fixture_bytes

HOOKSTREAM = Path(sys.executable).with_name("hookstream")
USER_CREATED = fixture_bytes("websitetoolbox/user_created.json")

# Made-up credentials of every sender, and the settings that enable them all.
X_SECRET = "your_consumer_secret_here"
HOOTSUITE_SECRET = "hootsuite-shared-secret"
EVENTS_TOKEN = "hootsuite-events-0123456789"
FORUM_TOKEN = "forum-token-0123456789abcdef"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
SENDERS = {
    "HOOKSTREAM_X_CONSUMER_SECRETS": X_SECRET,
    "HOOKSTREAM_HOOTSUITE_SECRETS": HOOTSUITE_SECRET,
    "HOOKSTREAM_HOOTSUITE_EVENTS_TOKEN": EVENTS_TOKEN,
    "HOOKSTREAM_WEBSITETOOLBOX_TOKEN": FORUM_TOKEN,
    "HOOKSTREAM_STANDARD_SECRETS": f"acme={STANDARD_SECRET}",
}


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`hookstream ARGS…` with `env` added to ours; never raises on a non-zero exit."""
    return subprocess.run(
        [str(HOOKSTREAM), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def broker_port(listeners: int = 2) -> int:
    """A port for a test's own broker whose next `listeners - 1` ports are free too (its controller,
    and its mutual-TLS listener when secure), below the ephemeral range: a port the kernel hands out
    to clients could be taken by one while the broker is down for a restart, or be the next one."""
    while True:
        (port,) = pick_ports(1, {"127.0.0.1"})
        if all(bindable("127.0.0.1", port + n) for n in range(1, listeners)):
            return port


def forum_event(event_id: int, user_id: int = 181855) -> bytes:
    """The forum's documented user.created example with another event id (and user id)."""
    envelope = orjson.loads(USER_CREATED)
    envelope["id"] = event_id
    envelope["data"]["object"]["userId"] = user_id
    return orjson.dumps(envelope)


def user_created_cloudevent(*, received_at: str, raw: str) -> dict[str, Any]:
    """The CloudEvent of SPEC §2 for the forum's documented user.created example."""
    return {
        "specversion": "1.0",
        "id": "websitetoolbox:1534",
        "source": "urn:hookstream:websitetoolbox",
        "type": "com.websitetoolbox.user.created",
        "subject": "user/181855",
        "time": "2011-12-02T07:31:59Z",
        "datacontenttype": "application/json",
        "dataschema": "urn:hookstream:schema:com.websitetoolbox.user.created:v1",
        "data": orjson.loads(USER_CREATED)["data"],
        "hsmode": "live",
        "hsreceivedat": received_at,
        "hsraw": raw,
    }


def x_signature(secret: str, body: bytes) -> str:
    """`x-twitter-webhooks-signature` as X computes it (stdlib only, independent of our verifier)."""
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def sso_form(secret: str, ts: int, *, algorithm: str = "sha512", **fields: str) -> bytes:
    """A Hootsuite assignment callback, form-urlencoded, with the SSO token Hootsuite would compute
    (very old SDKs: `algorithm="sha1"`)."""
    token = hashlib.new(algorithm, f"421335{ts}{secret}".encode()).hexdigest()
    form = {"action": "Assignment", "sso_i": "421335", "sso_ts": str(ts), "sso_token": token}
    form |= {"assignmentId": "654321", "status": "OPEN"} | fields
    return urlencode(form).encode()


def standard_headers(secret: str, msg_id: str, at: datetime, body: str) -> dict[str, str]:
    """Standard Webhooks headers signed by the official `standardwebhooks` package."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }
