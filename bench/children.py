"""Stopping the services a benchmark started: SIGTERM, then SIGKILL for one that does not stop in time,
always by the pid we started (never by name), so that no worker or receiver outlives the run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

STOP_TIMEOUT_S = 30.0


async def stop(processes: Sequence[asyncio.subprocess.Process], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop every one of `processes`; raise once all have ended if one had to be killed (a service that
    ignores SIGTERM is a bug the run must not hide)."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    killed = []
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            killed.append(process.pid)
    if killed:
        raise RuntimeError(f"pids {killed} did not stop within {timeout_s:.0f} s of SIGTERM and were killed")
