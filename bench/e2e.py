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
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import children, meter
from bench.payloads import payload
from bench.profile import Profiler
from bench.receivers import TOKEN, WRK_TIMEOUT, parse_wrk, wait_ready, wrk_binary
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
        """Each hop's latencies over the events seen at every point. The receiver stamps whole
        milliseconds, so the first hop starts at the millisecond of the send: from the microsecond it
        read up to 1 ms below zero."""
        sent = {id_: math.floor(at * 1000) / 1000 for id_, at in self.sent.items()}
        points = (sent, self.received, self.raw, self.keyed, self.published, self.collected)
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
        url = f"http://127.0.0.1:{http_port}/webhooks/websitetoolbox/{TOKEN}"
        load = LoadGenerator(consumer, url, rate)
        # Warm-up at the same rate, not measured: new topics, connections, the broker's JIT.
        await load.run(warmup_seconds)
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
            moments = await load.run(seconds)
            after = {name: meter.sample([pid], 0) for name, pid in processes.items()}
        shares = {name: meter.share(before[name], after[name]) for name in processes}
        shares["load"] += load.wrk_cpu_s / (after["load"].at_s - before["load"].at_s)
        await read_upstream(consumer, starts, topics, moments)
        return {
            "e2e_p50_ms": percentile(moments.latencies_ms(), 0.5),
            "e2e_p99_ms": percentile(moments.latencies_ms(), 0.99),
            **hop_figures(moments),
            **{f"e2e_cpu_share_{name}": share for name, share in shares.items()},
        }
    finally:
        await consumer.stop()
        await children.stop(services)


def partitions_of(settings: Settings, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(settings.topic_partitions)]


# wrk's script (LuaJIT): a forum delivery every `period_us` on a fixed schedule, however late those
# before it are answered (open loop, as senders are, while fewer than CONNECTIONS are unanswered), its id
# the microsecond it is sent and a digit (ten a microsecond at most), so that the collector knows when
# each was sent without talking to wrk.
WRK_LOAD = """local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} hs_timespec;
int clock_gettime(int clock, hs_timespec *now);
]]
local now = ffi.new("hs_timespec")
local function micros()
  ffi.C.clock_gettime(0, now)  -- CLOCK_REALTIME, the collector's time.time()
  return tonumber(now.tv_sec) * 1000000 + math.floor(tonumber(now.tv_nsec) / 1000)
end
local period_us, head, middle, tail = {period_us}, {head}, {middle}, {tail}
local due_us, sent = nil, 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function delay()
  local at = micros()
  due_us = (due_us or at) + period_us
  return math.max(0, math.floor((due_us - at) / 1000 + 0.5))
end
function request()
  local id = string.format("%.0f%d", micros(), sent % 10)
  sent = sent + 1
  return wrk.format(nil, nil, nil, head .. id .. middle .. id .. tail)
end
"""
ID_PLACEHOLDER = 987654321988  # a forum delivery's number in bench.payloads
# Connections wrk keeps: a delivery slower than this many periods holds up the schedule.
CONNECTIONS = 64


def lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def wrk_script(rate: int) -> str:
    """wrk's script for forum deliveries at `rate` a second: the example payload, its id and user id
    set per request."""
    head, middle, tail = payload(ID_PLACEHOLDER)[1].decode().split(str(ID_PLACEHOLDER))
    return WRK_LOAD.format(
        period_us=10**6 // rate, head=lua_string(head), middle=lua_string(middle), tail=lua_string(tail)
    )


def sent_at(event_id: str) -> float:
    """When a delivery of `wrk_script` was sent, from its event id (websitetoolbox:<µs><0-9>)."""
    return int(event_id.rpartition(":")[2]) // 10 / 1e6


class LoadGenerator:
    """Forum deliveries at a fixed rate from wrk (C, its own process, as the receivers' benchmark: the
    load generator shares the machine with what it measures, and a Python one took 0.3 of a core at
    1,000 requests/s from the receivers, the worker and the broker), and the CloudEvents they become
    collected off the firehose here."""

    def __init__(self, consumer: AIOKafkaConsumer, url: str, rate: int) -> None:
        self._consumer, self._url, self._rate = consumer, url, rate
        self._moments = Moments()
        self._expected = 0  # deliveries answered 200 in the current run, once wrk has said
        self.wrk_cpu_s = 0.0

    async def run(self, seconds: int) -> Moments:
        """Deliveries for `seconds`; their moments once every one answered 200 has arrived."""
        self._moments = Moments()
        self._expected = 10**9  # until wrk says how many it sent
        since = time.time()
        collecting = asyncio.create_task(self._collect(since))
        try:
            with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
                script.write(wrk_script(self._rate))
                script.flush()
                command = [
                    wrk_binary(),
                    "-t1",
                    f"-c{CONNECTIONS}",
                    f"-d{seconds}s",
                    "--latency",
                    "--timeout",
                    WRK_TIMEOUT,
                ]
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                wrk = await asyncio.to_thread(
                    subprocess.run, [*command, "-s", script.name, self._url], capture_output=True, text=True
                )
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
            self.wrk_cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            result = parse_wrk(wrk.stdout) if wrk.returncode == 0 else None
            if result is None or result.non_2xx:
                raise RuntimeError(f"wrk: not every delivery was answered 200:\n{wrk.stdout}{wrk.stderr}")
            self._expected = result.requests
            await asyncio.wait_for(collecting, 60)
        finally:
            collecting.cancel()
        return self._moments

    async def _collect(self, since: float) -> None:
        moments = self._moments
        while len(moments.collected) < self._expected:
            for records in (await self._consumer.getmany(timeout_ms=100)).values():
                arrived = time.time()
                for record in records:
                    event_id = orjson.loads(record.value)["id"]
                    sent = sent_at(event_id)
                    if sent >= since:
                        moments.sent[event_id] = sent
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
