"""Processor throughput: raw → normalized events per second for one worker with dedup on, beside a
plain aiokafka consume → orjson parse → produce loop over the same records, on the same broker.

Both read a topic that already holds every record, so neither waits on a producer, and each is timed
by its output's record timestamps, from the first record it wrote to the last: exact, and blind to how
long a process takes to start or to join its group.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from bench.payloads import raw_records
from bench.profile import Profiler
from hookstream import clients
from hookstream.kafka import core_topics, ensure_topics, topic_spec
from hookstream.settings import Settings
from hookstream.topics import Topics
from tests.integration.harness import read_all

HOOKSTREAM = Path(sys.executable).with_name("hookstream")
OUTCOMES = (
    "hookstream_events_published_total",
    "hookstream_duplicates_total",
    "hookstream_dead_letters_total",
    "hookstream_pings_total",
)


async def load(settings: Settings, count: int, duplicates_share: float) -> list[str]:
    """Create the namespace's topics and fill its raw topics; return the raw topics used."""
    await ensure_topics(settings, core_topics(settings))
    records = raw_records(Topics(settings.namespace), count, duplicates_share)
    producer = clients.producer(settings, linger_ms=20, acks="all")
    await producer.start()
    try:
        acks = [
            await producer.send(topic, value, headers=list(hdrs.items())) for topic, value, hdrs in records
        ]
        await asyncio.gather(*acks)
    finally:
        await producer.stop()
    return sorted({topic for topic, _, _ in records})


async def baseline_eps(settings: Settings, topics: list[str], count: int) -> float:
    """consume → orjson.loads → orjson.dumps → produce (acks=all), committing after each batch."""
    out = f"{settings.namespace}.baseline"
    await ensure_topics(settings, [topic_spec(settings, out)])
    consumer = clients.consumer(
        settings,
        *topics,
        group_id=f"{settings.namespace}-baseline",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=1000,
    )
    producer = clients.producer(settings, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    done = 0
    try:
        while done < count:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            acks = [
                await producer.send(out, orjson.dumps(orjson.loads(record.value)), key=record.key)
                for records in batches.values()
                for record in records
            ]
            await asyncio.gather(*acks)
            await consumer.commit()
            done += len(acks)
    finally:
        await consumer.stop()
        await producer.stop()
    return count / await output_seconds(settings, out)


async def output_seconds(settings: Settings, topic: str) -> float:
    """From the first record written to `topic` to the last, by their timestamps."""
    stamps: list[int] = [record.timestamp for record in await read_all(settings, topic)]
    if len(stamps) < 2 or max(stamps) == min(stamps):
        raise RuntimeError(f"{topic}: {len(stamps)} records within one millisecond, not a measurement")
    return (max(stamps) - min(stamps)) / 1000


async def _outcomes(port: int) -> float:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            page = await response.text()
    except aiohttp.ClientError:
        return 0.0
    return sum(
        sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name in OUTCOMES
    )


async def worker_eps(settings: Settings, count: int, env: dict[str, str], profiler: Profiler) -> float:
    """One `hookstream worker` over `count` loaded raw records: raw records per second, timed on the
    firehose once every record has its outcome (published, duplicate, dead letter or ping)."""
    port = int(env["HOOKSTREAM_WORKER_PORT"])
    process = await asyncio.create_subprocess_exec(
        str(HOOKSTREAM), "worker", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        async with profiler.attached("worker-throughput", process.pid):
            while await _outcomes(port) < count:
                if process.returncode is not None:
                    raise RuntimeError("the worker exited")
                await asyncio.sleep(0.05)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
    return count / await output_seconds(settings, Topics(settings.namespace).events)


async def measure(
    kafka: Mapping[str, str], count: int, duplicates_share: float, guarantee: str, profiler: Profiler
) -> dict[str, float]:
    """processor_eps and baseline_kafka_eps over the Kafka that the HOOKSTREAM_KAFKA_* of `kafka` name."""
    namespace = f"bench-{os.getpid()}-{int(time.time())}"
    env = {
        **kafka,
        "HOOKSTREAM_NAMESPACE": namespace,
        "HOOKSTREAM_WORKER_PORT": "16066",
        "HOOKSTREAM_PROCESSING_GUARANTEE": guarantee,
        "HOOKSTREAM_LOG_LEVEL": "WARNING",
    }
    settings = Settings.from_env(env)
    topics = await load(settings, count, duplicates_share)
    baseline = await baseline_eps(settings, topics, count)
    processor = await worker_eps(settings, count, env, profiler)
    return {"processor_eps": processor, "baseline_kafka_eps": baseline}


if __name__ == "__main__":
    result = asyncio.run(
        measure(
            os.environ,
            20_000,
            0.1,
            sys.argv[1] if len(sys.argv) > 1 else "at_least_once",
            Profiler(None),
        )
    )
    print(result, f"ratio {result['processor_eps'] / result['baseline_kafka_eps']:.2f}")
