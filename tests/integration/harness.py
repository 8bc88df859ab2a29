"""Integration-test harness: real services as subprocesses, real topics read back from the broker.

Each test gets its own namespace (`HOOKSTREAM_NAMESPACE`), so its topics, consumer group and state are
its own and tests never see each other's records, however often the suite runs against one broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from hookstream import clients
from hookstream.settings import Settings
from hookstream.tail import wait_for_partitions
from tests.support import HOOKSTREAM, free_port

T = TypeVar("T")
DEFAULT_WAIT_S = 45.0
# Where to read and write: a bootstrap address of a PLAINTEXT broker, or whole settings (a secure one).
Kafka = str | Settings


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = DEFAULT_WAIT_S, what: str
) -> T:
    """Await `probe` until it returns something other than None/False; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Service:
    """A `hookstream <command>` subprocess with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    async def stopped(self, sig: int = signal.SIGTERM) -> int:
        """`stop`, without blocking this event loop (which may be serving the process, as fakes do)."""
        return await asyncio.to_thread(self.stop, sig)

    async def wait_http(self, path: str, *, status: int = 200, timeout: float = DEFAULT_WAIT_S) -> None:
        async def answers() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_text()[-3000:]}"
                )
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with aiohttp.ClientSession() as session, session.get(self.url + path) as response:
                    return response.status == status
            return False

        await eventually(answers, timeout=timeout, what=f"{self.name} {path} to answer {status}")


@dataclass
class Stack:
    """Starts receivers and workers of one namespace; stops every one of them at the end of the test."""

    bootstrap: str
    namespace: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)

    def environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        return {
            **os.environ,
            "HOOKSTREAM_KAFKA_BOOTSTRAP": self.bootstrap,
            "HOOKSTREAM_NAMESPACE": self.namespace,
            "HOOKSTREAM_HTTP_HOST": "127.0.0.1",
            "HOOKSTREAM_TOPIC_PARTITIONS": "3",
            "HOOKSTREAM_CACHE_DIR": str(self.workdir / "cache"),
            **self.env,
            **extra,
        }

    def start(self, command: str, port_setting: str, **extra: str) -> Service:
        port = free_port()
        log = self.workdir / f"{command}-{len(self.services)}.log"
        process = subprocess.Popen(
            [str(HOOKSTREAM), command],
            env=self.environment({port_setting: str(port), **extra}),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        service = Service(command, process, log, port)
        self.services.append(service)
        return service

    async def receivers(self, **extra: str) -> Service:
        service = self.start("receivers", "HOOKSTREAM_HTTP_PORT", **extra)
        await service.wait_http("/readyz")
        return service

    async def worker(self, **extra: str) -> Service:
        service = self.start("worker", "HOOKSTREAM_WORKER_PORT", **extra)
        await service.wait_http("/healthz")
        return service

    def create_topics(self) -> None:
        """`hookstream topics` for this namespace, so records can be produced before any service runs."""
        result = subprocess.run(
            [str(HOOKSTREAM), "topics"], env=self.environment({}), capture_output=True, check=False
        )
        assert result.returncode == 0, result.stderr

    def stop_all(self) -> None:
        for service in self.services:
            service.stop()

    def finish(self, request: pytest.FixtureRequest) -> None:
        """Stop every service; after a failed test, print the end of each one's log."""
        self.stop_all()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            for service in self.services:
                print(f"----- {service.name} ({service.log}) -----\n{service.log_text()[-5000:]}")


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` (a local stand-in for a SaaS API) on a free loopback port; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def _from_the_beginning(
    bootstrap: Kafka, topic: str, timeout: float = DEFAULT_WAIT_S
) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A read_committed consumer assigned every partition of `topic` (once it exists), at the start."""
    partitions = await asyncio.wait_for(wait_for_partitions(_settings(bootstrap), topic), timeout)
    consumer = clients.consumer(
        _settings(bootstrap), enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        yield consumer, assigned
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: Kafka, topic: str, count: int, *, timeout: float = DEFAULT_WAIT_S
) -> list[ConsumerRecord[bytes, bytes]]:
    """The first `count` records of `topic` (read_committed), oldest first within each partition."""
    records: list[ConsumerRecord[bytes, bytes]] = []
    async with _from_the_beginning(bootstrap, topic, timeout) as (consumer, assigned):

        async def collected() -> bool:
            batches = await consumer.getmany(*assigned, timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
            return len(records) >= count

        await eventually(collected, timeout=timeout, what=f"{count} records on {topic} (have {len(records)})")
    return records


async def end_offsets(bootstrap: Kafka, topic: str) -> dict[int, int]:
    """The end offset of each partition of `topic`, which must exist."""
    partitions = await asyncio.wait_for(wait_for_partitions(_settings(bootstrap), topic), DEFAULT_WAIT_S)
    consumer = clients.consumer(_settings(bootstrap), enable_auto_commit=False)
    await consumer.start()
    try:
        offsets = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return {tp.partition: offset for tp, offset in offsets.items()}
    finally:
        await consumer.stop()


def _settings(kafka: Kafka) -> Settings:
    return kafka if isinstance(kafka, Settings) else Settings(kafka_bootstrap=kafka)


async def produce(
    bootstrap: Kafka, records: Sequence[tuple[str, bytes, Mapping[str, bytes], int | None]]
) -> None:
    """Write `(topic, value, headers, partition)` records as a receiver would (acks=all), in order."""
    producer = clients.producer(_settings(bootstrap), acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        acks = [
            await producer.send(topic, value, headers=list(headers.items()), partition=partition)
            for topic, value, headers, partition in records
        ]
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


def raw_headers(source: str, *, route: str = "post", **extra: bytes) -> dict[str, bytes]:
    """The headers a receiver writes on a raw record (SPEC §2)."""
    return {
        "hs-source": source.encode(),
        "hs-route": route.encode(),
        "hs-received-at": str(time.time_ns() // 1_000_000).encode(),
        "hs-request-id": uuid.uuid4().hex.encode(),
        "hs-auth": b"path-token",
        "content-type": b"application/json",
        **{name.replace("_", "-"): value for name, value in extra.items()},
    }


async def metric(service: Service, name: str, **labels: str) -> float:
    """The sum of the samples `name{labels…}` on a service's /metrics page (0 when there are none)."""
    async with aiohttp.ClientSession() as session, session.get(f"{service.url}/metrics") as response:
        page = await response.text()
    return sum(
        float(sample.value)
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


async def read_all(bootstrap: Kafka, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record of `topic` up to its current end (read_committed stops at the LSO)."""
    records: list[ConsumerRecord[bytes, bytes]] = []
    async with _from_the_beginning(bootstrap, topic) as (consumer, assigned):
        ends = await consumer.end_offsets(assigned)

        async def done() -> bool:
            for batch in (await consumer.getmany(*assigned, timeout_ms=200)).values():
                records.extend(batch)
            return all([await consumer.position(tp) >= ends[tp] for tp in assigned])

        await eventually(done, what=f"all of {topic}")
    return records


async def caught_up(bootstrap: Kafka, group: str, topic: str) -> bool:
    """Whether consumer group `group` has committed everything currently in `topic`."""
    admin = clients.admin(_settings(bootstrap))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    consumer = clients.consumer(_settings(bootstrap), isolation_level="read_committed")
    await consumer.start()
    try:
        partitions = [tp for tp in committed if tp.topic == topic] or [TopicPartition(topic, 0)]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return bool(committed) and all(
        committed.get(tp) is not None and committed[tp].offset >= ends[tp] for tp in ends
    )
