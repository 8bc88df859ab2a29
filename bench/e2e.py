"""End-to-end latency: HTTP request sent → CloudEvent on the firehose, at a fixed request rate, through
the real receivers and one worker; and where it goes, hop by hop.

The run's topics stamp records with the broker's append time (LogAppendTime), so each record says when
it landed: the raw record, the keyed record (stage one's output) and the CloudEvent on the firehose (the
dedup stage's). With the receiver's `hs-received-at` and the load generator's send and arrival times these
give each hop's latency (`e2e_hop_<hop>_p50_ms`, `_p99_ms`): HOPS below. One clock: everything runs on
this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import children, meter
from bench.payloads import payload
from bench.profile import Profiler
from bench.receivers import TOKEN, wait_ready
from hookstream import clients
from hookstream import headers as H
from hookstream.kafka import FETCH_MAX_WAIT_MS, core_topics, ensure_topics
from hookstream.localkafka import LocalBroker
from hookstream.settings import Settings
from hookstream.topics import Topics

HOOKSTREAM = Path(sys.executable).with_name("hookstream")
# The hops in order; each is the time between two of the five moments a measured event passes.
HOPS = (
    "http",  # sent by the load generator -> taken by the receiver (hs-received-at): client and aiohttp
    "raw",  # taken -> raw record appended: the receiver's produce
    "stage_one",  # raw record appended -> keyed record appended: fetch, Faust, normalize, produce
    "dedup",  # keyed record appended -> CloudEvent appended: fetch, dedup, produce
    "collect",  # CloudEvent appended -> fetched by the latency collector (the bench's own consumer)
)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class Moments:
    """When each measured event passed each point, epoch seconds, by event id."""

    sent: dict[str, float] = field(default_factory=dict)
    received: dict[str, float] = field(default_factory=dict)  # hs-received-at
    raw: dict[str, float] = field(default_factory=dict)  # broker append times from here on
    keyed: dict[str, float] = field(default_factory=dict)
    published: dict[str, float] = field(default_factory=dict)
    collected: dict[str, float] = field(default_factory=dict)

    def latencies_ms(self) -> list[float]:
        return [(self.collected[id_] - self.sent[id_]) * 1000 for id_ in self.collected]

    def hops_ms(self) -> dict[str, list[float]]:
        """Each hop's latencies over the events seen at every point."""
        points = (self.sent, self.received, self.raw, self.keyed, self.published, self.collected)
        whole = [id_ for id_ in self.collected if all(id_ in point for point in points)]
        return {
            hop: [(later[id_] - earlier[id_]) * 1000 for id_ in whole]
            for hop, earlier, later in zip(HOPS, points[:-1], points[1:], strict=True)
        }


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
    topics = Topics(settings.namespace)
    timed = [topics.raw("websitetoolbox"), topics.keyed, topics.events]
    specs = core_topics(settings)
    for spec in specs:
        if spec.name in timed:
            spec.config["message.timestamp.type"] = "LogAppendTime"
    await ensure_topics(settings, specs)
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
        firehose = partitions_of(settings, topics.events)
        consumer.assign(firehose)
        await consumer.seek_to_end(*firehose)
        path = f"/webhooks/websitetoolbox/{TOKEN}"
        load = LoadGenerator(consumer, HttpClient("127.0.0.1", http_port, path), rate)
        try:
            # Warm-up at the same rate, not measured: new topics, connections, the broker's JIT.
            await load.at_rate(10**6, rate * warmup_seconds)
            receivers, worker = services
            processes = {"receivers": receivers.pid, "worker": worker.pid, "load": os.getpid()}
            if broker := LocalBroker.for_settings(settings).pid():
                processes["broker"] = broker
            upstream = [tp for topic in timed[:2] for tp in partitions_of(settings, topic)]
            starts = await consumer.end_offsets(upstream)
            async with (
                profiler.attached("receivers-e2e", receivers.pid),
                profiler.attached("worker-e2e", worker.pid),
            ):
                before = {name: meter.sample([pid], 0) for name, pid in processes.items()}
                moments = await load.at_rate(10**7, rate * seconds)
                after = {name: meter.sample([pid], 0) for name, pid in processes.items()}
        finally:
            await load.close()
        await read_upstream(consumer, starts, topics, moments)
        return {
            "e2e_p50_ms": percentile(moments.latencies_ms(), 0.5),
            "e2e_p99_ms": percentile(moments.latencies_ms(), 0.99),
            **hop_figures(moments),
            **{f"e2e_cpu_share_{name}": meter.share(before[name], after[name]) for name in processes},
        }
    finally:
        await consumer.stop()
        await children.stop(services)


def partitions_of(settings: Settings, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(settings.topic_partitions)]


class HttpClient:
    """Keep-alive HTTP/1.1 POSTs over plain asyncio streams, a connection per request in flight. The
    load generator shares the machine with what it measures: aiohttp's client cost it ~400 µs of CPU a
    request (0.43 of a core at 1,000 requests/s, taken from the receivers, the worker and the broker)."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self._host, self._port = host, port
        self._head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._all: list[asyncio.StreamWriter] = []

    async def post(self, body: bytes) -> int:
        """POST `body`; the response's status once all of the response is read. A kept-alive connection
        the server has closed meanwhile is replaced, as any HTTP client does."""
        request = f"{self._head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof():
                with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                    return await self._exchange(reader, writer, request)
            writer.close()
        reader, writer = await asyncio.open_connection(self._host, self._port)
        self._all.append(writer)
        return await self._exchange(reader, writer, request)

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> int:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        self._idle.append((reader, writer))
        return int(head[9:12])  # HTTP/1.1 200 OK

    async def close(self) -> None:
        for writer in self._all:
            writer.close()
        await asyncio.gather(*(writer.wait_closed() for writer in self._all), return_exceptions=True)


class LoadGenerator:
    """Forum deliveries at a fixed rate, and the CloudEvents they become collected off the firehose."""

    def __init__(self, consumer: AIOKafkaConsumer, client: HttpClient, rate: int) -> None:
        self._consumer, self._client, self._rate = consumer, client, rate
        self._moments = Moments()

    async def at_rate(self, first: int, count: int) -> Moments:
        """`count` deliveries at the fixed rate; their moments once every one has arrived. The bodies
        are made before the first is sent: making them is the load generator's cost, not the run's."""
        self._moments = Moments()
        bodies = [payload(4 * n)[1] for n in range(first, first + count)]  # every fourth is a forum event
        collecting = asyncio.create_task(self._collect(count))
        try:
            begin = time.perf_counter()
            posts = []
            for n, body in enumerate(bodies):
                await asyncio.sleep(max(0.0, begin + n / self._rate - time.perf_counter()))
                posts.append(asyncio.create_task(self._post(f"websitetoolbox:{4 * (first + n)}", body)))
            await asyncio.gather(*posts)
            await asyncio.wait_for(collecting, 60)
        finally:
            collecting.cancel()
        return self._moments

    async def close(self) -> None:
        await self._client.close()

    async def _post(self, event_id: str, body: bytes) -> None:
        self._moments.sent[event_id] = time.time()
        status = await self._client.post(body)
        assert status == 200, status

    async def _collect(self, count: int) -> None:
        moments = self._moments
        while len(moments.collected) < count:
            for records in (await self._consumer.getmany(timeout_ms=100)).values():
                arrived = time.time()
                for record in records:
                    event_id = orjson.loads(record.value)["id"]
                    if event_id in moments.sent:
                        moments.collected[event_id] = arrived
                        moments.published[event_id] = record.timestamp / 1000


async def read_upstream(
    consumer: AIOKafkaConsumer, starts: dict[TopicPartition, int], topics: Topics, moments: Moments
) -> None:
    """The measured events' raw and keyed records, from the offsets the measured span began at."""
    consumer.assign(list(starts))
    for tp, offset in starts.items():
        consumer.seek(tp, offset)
    ends = await consumer.end_offsets(list(starts))
    while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
        for tp, records in (await consumer.getmany(timeout_ms=500)).items():
            for record in records:
                headers = dict(record.headers)
                if tp.topic == topics.keyed:
                    event_id = headers[H.EVENT_ID].decode()
                    moments.keyed.setdefault(event_id, record.timestamp / 1000)
                else:
                    event_id = f"websitetoolbox:{orjson.loads(record.value)['id']}"
                    moments.received.setdefault(event_id, int(headers[H.RECEIVED_AT]) / 1000)
                    moments.raw.setdefault(event_id, record.timestamp / 1000)


def hop_figures(moments: Moments) -> dict[str, float]:
    return {
        f"e2e_hop_{hop}_{name}_ms": percentile(latencies, share)
        for hop, latencies in moments.hops_ms().items()
        for name, share in (("p50", 0.5), ("p99", 0.99))
    }
