"""The bench stops the services it started by pid, and kills (and says so) one that ignores SIGTERM."""

from __future__ import annotations

import asyncio
import sys

import pytest

from bench import children

WAITS = "print('ready', flush=True); import time; time.sleep(60)"
IGNORES_SIGTERM = f"import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); {WAITS}"


async def started(code: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    assert await process.stdout.readline() == b"ready\n"
    return process


async def test_a_service_that_stops_on_sigterm_is_stopped_quietly() -> None:
    process = await started(WAITS)
    await children.stop([process])
    assert process.returncode is not None


async def test_a_service_that_ignores_sigterm_is_killed_and_the_run_fails() -> None:
    stubborn = await started(IGNORES_SIGTERM)
    polite = await started(WAITS)
    with pytest.raises(RuntimeError, match=str(stubborn.pid)):
        await children.stop([stubborn, polite], timeout_s=0.5)
    assert stubborn.returncode == -9  # SIGKILL
    assert polite.returncode is not None
