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
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import meter
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
        load = LoadGenerator(consumer, f"http://127.0.0.1:{http_port}/webhooks/websitetoolbox/{TOKEN}", rate)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:
            # Warm-up at the same rate, not measured: new topics, connections, the broker's JIT.
            await load.at_rate(session, 10**6, rate * warmup_seconds)
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
                moments = await load.at_rate(session, 10**7, rate * seconds)
                after = {name: meter.sample([pid], 0) for name, pid in processes.items()}
        await read_upstream(consumer, starts, topics, moments)
        return {
            "e2e_p50_ms": percentile(moments.latencies_ms(), 0.5),
            "e2e_p99_ms": percentile(moments.latencies_ms(), 0.99),
            **hop_figures(moments),
            **{f"e2e_cpu_share_{name}": meter.share(before[name], after[name]) for name in processes},
        }
    finally:
        await consumer.stop()
        for service in services:
            service.terminate()
            await service.wait()


def partitions_of(settings: Settings, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(settings.topic_partitions)]


class LoadGenerator:
    """Forum deliveries at a fixed rate, and the CloudEvents they become collected off the firehose."""

    def __init__(self, consumer: AIOKafkaConsumer, url: str, rate: int) -> None:
        self._consumer, self._url, self._rate = consumer, url, rate
        self._moments = Moments()

    async def at_rate(self, session: aiohttp.ClientSession, first: int, count: int) -> Moments:
        """`count` deliveries at the fixed rate; their moments once every one has arrived."""
        self._moments = Moments()
        collecting = asyncio.create_task(self._collect(count))
        begin = time.perf_counter()
        posts = []
        for n in range(count):
            await asyncio.sleep(max(0.0, begin + n / self._rate - time.perf_counter()))
            posts.append(asyncio.create_task(self._post(session, first + n)))
        await asyncio.gather(*posts)
        await asyncio.wait_for(collecting, 60)
        return self._moments

    async def _post(self, session: aiohttp.ClientSession, n: int) -> None:
        _, body, _ = payload(4 * n)  # every fourth delivery of the mix is a forum event: id 4n
        self._moments.sent[f"websitetoolbox:{4 * n}"] = time.time()
        async with session.post(self._url, data=body) as response:
            assert response.status == 200, response.status

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
