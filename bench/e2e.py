"""End-to-end latency: HTTP request sent → CloudEvent on the firehose, at a fixed request rate, through
the real receivers and one worker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson
from aiokafka import TopicPartition

from bench.payloads import payload
from bench.profile import Profiler
from bench.receivers import TOKEN, wait_ready
from hookstream import clients
from hookstream.kafka import FETCH_MAX_WAIT_MS, core_topics, ensure_topics
from hookstream.settings import Settings
from hookstream.topics import Topics

HOOKSTREAM = Path(sys.executable).with_name("hookstream")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(
    env: dict[str, str],
    http_port: int,
    worker_port: int,
    rate: int,
    seconds: int,
    warmup_seconds: int,
    profiler: Profiler,
) -> dict[str, float]:
    settings = Settings.from_env(env)
    await ensure_topics(settings, core_topics(settings))
    service_env = {
        **env,
        "HOOKSTREAM_HTTP_PORT": str(http_port),
        "HOOKSTREAM_WORKER_PORT": str(worker_port),
        "HOOKSTREAM_WEBSITETOOLBOX_TOKEN": TOKEN,
    }
    services = [
        await asyncio.create_subprocess_exec(
            str(HOOKSTREAM), command, env=service_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for command in ("receivers", "worker")
    ]
    consumer = clients.consumer(
        settings,
        isolation_level="read_committed",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    try:
        await wait_ready(f"http://127.0.0.1:{http_port}/readyz")
        await wait_ready(f"http://127.0.0.1:{worker_port}/healthz")
        await consumer.start()
        firehose = Topics(settings.namespace).events
        partitions = [TopicPartition(firehose, p) for p in range(settings.topic_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        sent: dict[str, float] = {}
        latencies: dict[str, float] = {}
        url = f"http://127.0.0.1:{http_port}/webhooks/websitetoolbox/{TOKEN}"

        async def collect(count: int) -> None:
            while len(latencies) < count:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    arrived = time.perf_counter()
                    for record in records:
                        event_id = orjson.loads(record.value)["id"]
                        if (started := sent.get(event_id)) is not None:
                            latencies[event_id] = (arrived - started) * 1000

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

            async def post(n: int) -> None:
                _, body, _ = payload(4 * n)  # every fourth delivery of the mix is a forum event: id 4n
                sent[f"websitetoolbox:{4 * n}"] = time.perf_counter()
                async with session.post(url, data=body) as response:
                    assert response.status == 200, response.status

            async def at_rate(first: int, count: int) -> list[float]:
                """`count` deliveries at the fixed rate; their latencies once every one has arrived."""
                sent.clear()
                latencies.clear()
                collecting = asyncio.create_task(collect(count))
                begin = time.perf_counter()
                posts = []
                for n in range(count):
                    await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))
                    posts.append(asyncio.create_task(post(first + n)))
                await asyncio.gather(*posts)
                await asyncio.wait_for(collecting, 60)
                return list(latencies.values())

            # Warm-up at the same rate, not measured: new topics, connections, the broker's JIT.
            await at_rate(10**6, rate * warmup_seconds)
            receivers, worker = services
            async with (
                profiler.attached("receivers-e2e", receivers.pid),
                profiler.attached("worker-e2e", worker.pid),
            ):
                measured = await at_rate(10**7, rate * seconds)
        return {"e2e_p50_ms": percentile(measured, 0.5), "e2e_p99_ms": percentile(measured, 0.99)}
    finally:
        await consumer.stop()
        for service in services:
            service.terminate()
            await service.wait()
