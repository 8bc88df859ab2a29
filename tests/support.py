"""Helpers both test suites use: run our CLI, pick a free port, the expected forum CloudEvent."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from tests.fixtures import fixture_bytes

HOOKSTREAM = Path(sys.executable).with_name("hookstream")
USER_CREATED = fixture_bytes("websitetoolbox/user_created.json")


def run_cli(*args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
    """`hookstream ARGS…` with `env` added to ours; never raises on a non-zero exit."""
    return subprocess.run(
        [str(HOOKSTREAM), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
        "data": orjson.loads(USER_CREATED)["data"],
        "hsmode": "live",
        "hsreceivedat": received_at,
        "hsraw": raw,
    }
