"""Receiver throughput and tail latency at a fixed concurrency, measured with wrk (a C load generator in
its own process), against the real receivers (acks=all) and the same app with a sink that answers at
once (the HTTP baseline)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench import children, meter
from bench.profile import Profiler
from tests.fixtures import FIXTURES

TOKEN = "bench-forum-token-0123456789"
BODY = FIXTURES / "websitetoolbox" / "user_created.json"
# Longer than the receivers' ack timeout, so every request gets its answer (200 or 503) and its latency
# is counted: wrk leaves requests over its timeout (2 s by default) out of the latency figures.
WRK_TIMEOUT = "10s"
WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb")
wrk.body = f:read("*a")
f:close()
"""


@dataclass(frozen=True)
class HttpResult:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int
    cpu_us_per_request: float = 0.0  # the server process's, all threads


def wrk_binary() -> str:
    """wrk from PATH, installed from Debian's packages when missing and we may (root with apt)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk (Debian package) for the HTTP benchmark…", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)  # noqa: S607
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)  # noqa: S607
        if found := shutil.which("wrk"):
            return found
    raise SystemExit("make bench needs wrk: apt-get install wrk")


def parse_wrk(output: str) -> HttpResult:
    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        assert match, f"no {label}% line in wrk output:\n{output}"
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert rps, output
    if not float(rps.group(1)) or re.search(r"Socket errors:", output):
        raise RuntimeError(f"wrk saw no answers or socket errors, not a measurement:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    requests = re.search(r"(\d+) requests in", output)
    assert requests, output
    non_2xx_count = int(non_2xx.group(1)) if non_2xx else 0
    return HttpResult(float(rps.group(1)), ms("50"), ms("99"), non_2xx_count, int(requests.group(1)))


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never became ready")


async def wait_accepting(url: str, body: bytes) -> None:
    """Until one delivery is answered 200: a fresh topic's partition leaders may not be known yet."""
    async with aiohttp.ClientSession() as session:
        for _ in range(120):
            async with session.post(url, data=body) as response:
                if response.status == 200:
                    return
            await asyncio.sleep(0.5)
    raise RuntimeError(f"{url} never accepted a delivery")


async def measure_server(
    sink: str, env: dict[str, str], port: int, seconds: int, connections: int, profiler: Profiler
) -> HttpResult:
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.http_server",
        "--sink",
        sink,
        env={**env, "HOOKSTREAM_HTTP_PORT": str(port), "HOOKSTREAM_WEBSITETOOLBOX_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}/readyz")
        url = f"http://127.0.0.1:{port}/webhooks/websitetoolbox/{TOKEN}"
        await wait_accepting(url, BODY.read_bytes())
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(WRK_SCRIPT.format(body=BODY))
        wrk = wrk_binary()
        warmup = [wrk, "-t1", f"-c{connections}", "-d2s", "--timeout", WRK_TIMEOUT, "-s", script.name, url]
        await asyncio.to_thread(subprocess.run, warmup, capture_output=True, check=True)
        run = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", WRK_TIMEOUT, "--latency"]
        run += ["-s", script.name, url]
        async with profiler.attached(f"receivers-{sink}-sink", server.pid):
            before = meter.sample([server.pid], 0)
            done = await asyncio.to_thread(subprocess.run, run, capture_output=True, text=True, check=True)
            result = parse_wrk(done.stdout)
            after = meter.sample([server.pid], result.requests)
        await asyncio.to_thread(Path(script.name).unlink)
        return dataclasses.replace(result, cpu_us_per_request=meter.us_per_unit(before, after))
    finally:
        await children.stop([server])
