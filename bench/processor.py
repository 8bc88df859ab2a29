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

from bench import children, meter
from bench.payloads import raw_records
from bench.peers import kstreams
from bench.profile import Profiler
from hookstream import clients
from hookstream.kafka import core_topics, ensure_topics, topic_spec
from hookstream.settings import Settings
from hookstream.topics import Topics
from tests.support import free_port

HOOKSTREAM = Path(sys.executable).with_name("hookstream")
# How often the workers' /metrics are read for their progress. Each read costs a worker CPU that is
# counted as its own (at 20 reads a second, ~3% of it); Prometheus reads every 15 s or so.
PROGRESS_EVERY_S = 0.25
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


async def baseline(settings: Settings, topics: list[str], count: int) -> meter.Throughput:
    """consume → orjson.loads → orjson.dumps → produce (acks=all), committing after each batch, here in
    the bench's own process: its records/s, and its CPU per record after the first batch. What
    aiokafka costs a record that is read once and written once; a worker reads each raw record twice (raw,
    keyed) and writes it three times or more (keyed, firehose, its type's topic, tags)."""
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
    span = meter.CpuSpan([os.getpid()], count)
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
            span.progress(done)
        span.finish(done)
    finally:
        await consumer.stop()
        await producer.stop()
    return span.throughput(count / await meter.output_seconds(settings, out))


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


async def workers_run(
    settings: Settings, count: int, env: dict[str, str], profiler: Profiler, workers: int = 1
) -> meter.Throughput:
    """`workers` times `hookstream worker` over `count` loaded raw records, timed on the firehose once every
    record has its outcome (published, duplicate, dead letter or ping)."""
    ports = [free_port() for _ in range(workers)]  # not fixed: another bench's workers are not ours
    processes = [
        await asyncio.create_subprocess_exec(
            str(HOOKSTREAM),
            "worker",
            env={**env, "HOOKSTREAM_WORKER_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    span = meter.CpuSpan([process.pid for process in processes], count)
    try:
        async with profiler.attached(f"worker-{settings.processing_guarantee}-x{workers}", processes[0].pid):
            while (done := int(sum([await _outcomes(port) for port in ports]))) < count:
                if any(process.returncode is not None for process in processes):
                    raise RuntimeError("a worker exited")
                span.progress(done)
                await asyncio.sleep(PROGRESS_EVERY_S)
            span.finish(done)
    finally:
        await children.stop(processes)
    eps = count / await meter.output_seconds(settings, Topics(settings.namespace).events)
    return span.throughput(eps)


async def measure(
    kafka: Mapping[str, str],
    count: int,
    duplicates_share: float,
    profiler: Profiler,
    *,
    eos: bool = True,
    peers: bool = False,
    two_workers: bool = False,
) -> dict[str, float | str]:
    """processor_eps and its CPU per record, the plain aiokafka baseline, over the Kafka that the
    HOOKSTREAM_KAFKA_* of `kafka` name; (`eos`) the same under exactly_once; (`peers`) the Kafka Streams
    peer over the same raw records; (`two_workers`) two workers together."""
    stamp = f"bench-{os.getpid()}-{int(time.time())}"
    results: dict[str, float | str] = {}
    for name, guarantee, workers in (
        ("processor", "at_least_once", 1),
        *([("processor_eos", "exactly_once", 1)] if eos else []),
        *([("processor_two_workers", "at_least_once", 2)] if two_workers else []),
    ):
        env = {
            **kafka,
            "HOOKSTREAM_NAMESPACE": f"{stamp}-{name.replace('_', '-')}",
            "HOOKSTREAM_PROCESSING_GUARANTEE": guarantee,
            "HOOKSTREAM_LOG_LEVEL": "WARNING",
        }
        settings = Settings.from_env(env)
        topics = await load(settings, count, duplicates_share)
        if name == "processor":
            plain = await baseline(settings, topics, count)
            results["baseline_kafka_eps"] = plain.eps
            results["baseline_kafka_cpu_us_per_record"] = plain.cpu_us_per_record
        run = await workers_run(settings, count, env, profiler, workers)
        results.update(run.figures(name))
        if peers and name == "processor":
            results.update(await kstreams.measure_both(settings, topics, count))
    return results


if __name__ == "__main__":
    print(
        asyncio.run(
            measure(
                os.environ,
                int(sys.argv[1]) if len(sys.argv) > 1 else 20_000,
                0.1,
                Profiler(None),
                peers="--peers" in sys.argv,
            )
        )
    )
