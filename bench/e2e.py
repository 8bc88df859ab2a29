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
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.payloads import payload
from bench.receivers import TOKEN, wait_ready
from hookstream.kafka import core_topics, ensure_topics
from hookstream.settings import Settings
from hookstream.topics import Topics

HOOKSTREAM = Path(sys.executable).with_name("hookstream")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(
    env: dict[str, str], http_port: int, worker_port: int, rate: int, seconds: int
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
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, isolation_level="read_committed"
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
        latencies: list[float] = []
        total = rate * seconds

        async def collect() -> None:
            while len(latencies) < total:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    arrived = time.perf_counter()
                    for record in records:
                        if (started := sent.get(orjson.loads(record.value)["id"])) is not None:
                            latencies.append((arrived - started) * 1000)

        url = f"http://127.0.0.1:{http_port}/webhooks/websitetoolbox/{TOKEN}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

            async def post(n: int) -> None:
                _, body, _ = payload(4 * n)  # every fourth delivery of the mix is a forum event: id 4n
                sent[f"websitetoolbox:{4 * n}"] = time.perf_counter()
                async with session.post(url, data=body) as response:
                    assert response.status == 200, response.status

            await post(1)  # warm-up: wait until the worker's groups are assigned and the path is hot
            while not latencies:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    latencies.extend(0.0 for _ in records)
            latencies.clear()
            collecting = asyncio.create_task(collect())
            begin = time.perf_counter()
            posts = []
            for n in range(total):
                await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))  # the fixed rate
                posts.append(asyncio.create_task(post(10**7 + n)))
            await asyncio.gather(*posts)
        await asyncio.wait_for(collecting, 60)
        return {"e2e_p50_ms": percentile(latencies, 0.5), "e2e_p99_ms": percentile(latencies, 0.99)}
    finally:
        await consumer.stop()
        for service in services:
            service.terminate()
            await service.wait()
