"""A three-node local Kafka (replication 3, min.insync.replicas 2) losing brokers under steady load.

One cluster on ports of its own serves the module; the tests kill and restart its nodes by pid, through
the same `hookstream kafka start` an operator runs (it starts only the nodes that are down). Every
delivery answered 2xx must arrive on the firehose, exactly once under exactly_once (read_committed).
Each fault prints one line: sent, answered 2xx, answered 503, arrived, duplicated, and how long the
receivers answered 503 after the fault and the longest any delivery waited to be published."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shutil
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from hookstream import clients
from hookstream.localcluster import LocalBroker, local_cluster, pick_ports
from hookstream.settings import Settings
from hookstream.topics import Topics
from tests.integration.harness import Service, Stack, caught_up, end_offsets, eventually, metric, read_all
from tests.support import FORUM_TOKEN, forum_event, run_cli

RATE_PER_S = 40  # per stack: steady, far below what the receivers and a worker can do on 2 cores
RECOVERY_S = 120.0  # generous: the machine is shared; Kafka fences a dead broker after ~9 s
# each test drives several faults through one cluster
pytestmark = [pytest.mark.timeout(600), pytest.mark.long(300)]
_LEADER = re.compile(r"\[RaftManager id=(\d+)\] Completed transition to Leader\(.*?epoch=(\d+)")


@contextlib.asynccontextmanager
async def admin_client(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = clients.admin(Settings(kafka_bootstrap=bootstrap))
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


@dataclass
class Cluster:
    """The module's three-node cluster, driven by pid and by `hookstream kafka start`."""

    env: dict[str, str]
    nodes: tuple[LocalBroker, ...]

    @property
    def bootstrap(self) -> str:
        return self.env["HOOKSTREAM_KAFKA_BOOTSTRAP"]

    def node(self, broker_id: int) -> LocalBroker:
        return self.nodes[broker_id - 1]

    async def kill(self, broker_id: int, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the node's process and return once it is gone."""
        node = self.node(broker_id)
        pid = node.pid()
        assert pid is not None, f"broker {broker_id} runs"
        os.kill(pid, sig)

        async def gone() -> bool:
            return node.pid() is None

        await eventually(gone, timeout=RECOVERY_S, what=f"broker {broker_id} to exit")

    async def start(self) -> str:
        """`hookstream kafka start`: starts the nodes that are down; its output."""
        started = await asyncio.to_thread(run_cli, "kafka", "start", env=self.env)
        assert started.returncode == 0, started.stdout + started.stderr
        return started.stdout

    async def partitions(self, topics: list[str]) -> list[dict[str, object]]:
        async with admin_client(self.bootstrap) as admin:
            described = await admin.describe_topics(topics)
        return [p for topic in described for p in topic["partitions"]]

    async def leaders(self, topics: list[str]) -> Counter[int]:
        return Counter(int(str(p["leader"])) for p in await self.partitions(topics))

    async def fully_replicated(self, topics: list[str]) -> bool:
        partitions = await self.partitions(topics)
        return bool(partitions) and all(len(p["isr"]) == len(self.nodes) for p in partitions)  # type: ignore[arg-type]

    def active_controller(self) -> int:
        """The node that last completed a transition to quorum leader (the highest epoch)."""
        epochs = [
            (int(epoch), int(node_id))
            for node in self.nodes
            for node_id, epoch in _LEADER.findall(node.log_file.read_text(errors="replace"))
        ]
        return max(epochs)[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three nodes on ports of their own (below the ephemeral range, so a restart finds them free)."""
    cache_dir = Settings.from_env().cache_dir
    ports = pick_ports(3, {"127.0.0.1"})
    bootstrap = ",".join(f"127.0.0.1:{port}" for port in ports)
    env = {"HOOKSTREAM_KAFKA_BOOTSTRAP": bootstrap, "HOOKSTREAM_CACHE_DIR": str(cache_dir)}
    settings = Settings.from_env(env)
    started = run_cli("kafka", "start", env=env)
    nodes = local_cluster(settings).nodes
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield Cluster(env, nodes)
    finally:
        run_cli("kafka", "stop", env=env)
        logs = tmp_path_factory.mktemp("kafka-logs")
        for node in nodes:  # kept with the test's other logs
            with contextlib.suppress(FileNotFoundError):
                shutil.copy(node.log_file, logs / f"node-{node.node_id}.log")
        shutil.rmtree(nodes[0].home.parent, ignore_errors=True)


@dataclass
class Delivery:
    sent_at: float
    status: int = -1  # -1: no answer yet; 0: the connection failed
    answered_at: float = 0.0


@dataclass
class Load:
    """Distinct forum deliveries at a steady rate to each stack's receivers until stopped."""

    urls: list[str]
    deliveries: defaultdict[int, dict[int, Delivery]] = field(default_factory=lambda: defaultdict(dict))
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        # No connection limit: while Kafka is away hundreds of requests wait for their 503 at once, and
        # a request queued for a free connection would time out here, not at the receivers.
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=30)
        ) as session:
            pending: set[asyncio.Task[None]] = set()
            begun = time.monotonic()
            n = 0
            while not self._stopped.is_set():
                await asyncio.sleep(max(0.0, begun + n / RATE_PER_S - time.monotonic()))  # pacing
                for stack, url in enumerate(self.urls):
                    task = asyncio.create_task(_post(session, url, n, self.deliveries[stack]))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                n += 1
            await asyncio.gather(*pending)

    def stop(self) -> None:
        self._stopped.set()

    def answered(self, stack: int, since: float) -> list[Delivery]:
        """The answers to deliveries sent after `since`, in the order they were sent."""
        return [d for d in self.deliveries[stack].values() if d.sent_at > since and d.status >= 0]


async def _post(session: aiohttp.ClientSession, url: str, n: int, sent: dict[int, Delivery]) -> None:
    delivery = sent[n] = Delivery(time.monotonic())
    try:
        async with session.post(url, data=forum_event(n, user_id=n)) as response:
            delivery.status = response.status
    except (aiohttp.ClientError, TimeoutError):
        delivery.status = 0
    delivery.answered_at = time.monotonic()


@dataclass
class Phase:
    name: str
    began: float  # when the fault was done (the process was gone)
    caught_up: dict[int, float] = field(default_factory=dict)  # per stack: its worker had published
    # everything received until its receivers accepted again
    since: str = "the fault"  # what recovery is measured from
    at: float = 0.0  # when that was; the fault unless set
    ended: float = float("inf")  # when the next fault began


async def accepting_again(load: Load, stack: int, since: float) -> bool:
    """The last RUN answers to deliveries sent after `since` are all 2xx."""
    answers = load.answered(stack, since)
    return len(answers) >= RUN and all(d.status == 200 for d in answers[-RUN:])


async def readyz(receivers: Service) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{receivers.url}/readyz") as response:
        return response.status


async def settled(bootstrap: str, namespace: str) -> None:
    """Wait until both stages of `namespace` have committed everything in their input topics."""
    topics = Topics(namespace)

    async def committed() -> bool:
        return await caught_up(bootstrap, namespace, topics.raw("websitetoolbox")) and await caught_up(
            bootstrap, f"{namespace}-dedup", topics.keyed
        )

    await eventually(committed, timeout=RECOVERY_S, what="both stages to commit everything")


async def drained(bootstrap: str, namespace: str) -> float:
    """Wait until both stages have committed what their input topics held when this was called (the
    worker caught up); return that moment."""
    topics = Topics(namespace)
    for group, topic in ((namespace, topics.raw("websitetoolbox")), (f"{namespace}-dedup", topics.keyed)):
        ends = await end_offsets(bootstrap, topic)

        async def committed(group: str = group, topic: str = topic, ends: dict[int, int] = ends) -> bool:
            offsets = await group_offsets(bootstrap, group)
            return all(offsets.get(TopicPartition(topic, p), -1) >= end for p, end in ends.items())

        await eventually(committed, timeout=RECOVERY_S, what=f"{group} to commit {topic} up to {ends}")
    return time.monotonic()


async def group_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    try:
        async with admin_client(bootstrap) as admin:
            return {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()}
    except KafkaError:
        return {}  # asked while the group's coordinator moves: not yet


async def published(bootstrap: str, namespace: str) -> Counter[int]:
    """How often each event id is on the firehose (read_committed)."""
    records = await read_all(bootstrap, Topics(namespace).events)
    return Counter(int(orjson.loads(record.value)["id"].split(":")[1]) for record in records)


RUN = 20  # consecutive 2xx answers that count as "accepting again"


def report(guarantee: str, load: Load, stack: int, phases: list[Phase], arrived: Counter[int]) -> None:
    """One line per fault, for deliveries sent from the fault until the next one: what was sent and
    answered, what arrived, and when the receivers accepted again (the first RUN consecutive 2xx after
    the first 503) and the worker had published everything received until then."""
    for phase in phases:
        sent = sorted(
            ((n, d) for n, d in load.deliveries[stack].items() if phase.began <= d.sent_at < phase.ended),
            key=lambda item: item[1].sent_at,
        )
        statuses = [d.status for _, d in sent]
        acked = [n for n, d in sent if d.status == 200]
        first = statuses.index(503) if 503 in statuses else 0
        back = next((i for i in range(first, len(sent)) if statuses[i : i + RUN] == [200] * RUN), first)
        at = phase.at or phase.began
        print(
            f"\n[{phase.name}, {guarantee}] sent {len(sent)}, 2xx {len(acked)}, 503 {statuses.count(503)}, "
            f"arrived {sum(1 for n in acked if n in arrived)}, "
            f"duplicated {sum(1 for n, _ in sent if arrived[n] > 1)}; after {phase.since}: "
            f"receivers accepting again {max(0.0, sent[back][1].sent_at - at):.1f} s, "
            f"worker caught up {phase.caught_up[stack] - at:.1f} s"
        )


def check(load: Load, stack: int, arrived: Counter[int], *, exactly_once: bool) -> None:
    acked = {n for n, d in load.deliveries[stack].items() if d.status == 200}
    assert acked, "deliveries were accepted"
    assert acked <= set(arrived), f"acknowledged but lost: {sorted(acked - set(arrived))[:20]}"
    assert {d.status for d in load.deliveries[stack].values()} <= {200, 503}, "only 2xx or 503"
    if exactly_once:
        doubled = sorted(n for n, count in arrived.items() if count > 1)
        assert not doubled, f"published twice under exactly_once: {doubled[:20]}"


async def replicated(cluster: Cluster, topics: list[str]) -> None:
    """Three replicas of every partition, two of them needed in sync for an acks=all write."""
    partitions = await cluster.partitions(topics)
    assert partitions
    assert {len(p["replicas"]) for p in partitions} == {3}  # type: ignore[arg-type]
    async with admin_client(cluster.bootstrap) as admin:
        (response,) = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, topic, {"min.insync.replicas": None})
                for topic in topics
            ]
        )
    assert {resource[3]: resource[4][0][1] for resource in response.resources} == dict.fromkeys(topics, "2")


def forum_stack(cluster: Cluster, workdir: Path, guarantee: str) -> Stack:
    workdir.mkdir()
    return Stack(
        bootstrap=cluster.bootstrap,
        namespace=f"hs-test-{uuid.uuid4().hex[:12]}",
        workdir=workdir,
        env={"HOOKSTREAM_WEBSITETOOLBOX_TOKEN": FORUM_TOKEN, "HOOKSTREAM_PROCESSING_GUARANTEE": guarantee},
    )


async def restart(cluster: Cluster, brokers: list[int], watched: list[str]) -> None:
    """`hookstream kafka start` starts exactly the nodes that are down; wait until they are in sync."""
    out = await cluster.start()
    print(out.rstrip())
    assert out.count("starting Kafka") == len(brokers), out
    assert all(f"{cluster.node(b).address} (node {b}" in out for b in brokers), out

    async def in_sync() -> bool:
        return await cluster.fully_replicated(watched)

    await eventually(in_sync, timeout=RECOVERY_S, what="every partition back in sync on three brokers")


@contextlib.asynccontextmanager
async def under_load(cluster: Cluster, stacks: list[Stack]) -> AsyncIterator[Load]:
    """Each stack's receivers and worker running, and steady load to them while the block runs; then
    the load stops, and once both stages of every stack have committed everything, the services."""
    load = Load([])
    sending: asyncio.Task[None] | None = None
    try:
        for stack in stacks:
            receivers = await stack.receivers()
            await stack.worker()
            load.urls.append(f"{receivers.url}/webhooks/websitetoolbox/{FORUM_TOKEN}")
        sending = asyncio.create_task(load.run())
        for index in range(len(stacks)):
            await accepting(load, index, since=0.0)
        yield load
        load.stop()
        await sending
        for stack in stacks:
            await settled(cluster.bootstrap, stack.namespace)
    except BaseException:
        for service in (service for stack in stacks for service in stack.services):
            print(f"----- {service.name} ({service.log}) -----\n{service.log_text()[-5000:]}")
        raise
    finally:
        load.stop()
        if sending is not None:
            await asyncio.gather(sending, return_exceptions=True)
        for stack in stacks:
            stack.stop_all()


async def accepting(load: Load, stack: int, since: float) -> None:
    await eventually(
        lambda: accepting_again(load, stack, since), timeout=RECOVERY_S, what=f"stack {stack} to answer 2xx"
    )


@dataclass
class Drill:
    """Faults driven through one cluster under one load, and what each of them did."""

    cluster: Cluster
    load: Load
    stacks: list[Stack]
    phases: list[Phase] = field(default_factory=list)

    @property
    def watched(self) -> list[str]:
        """Each stack's busy topics: where leaders are counted and replicas waited for."""
        return [
            t
            for s in self.stacks
            for t in (Topics(s.namespace).raw("websitetoolbox"), Topics(s.namespace).keyed)
        ]

    def fault(self, name: str) -> Phase:
        self.phases.append(Phase(name, time.monotonic()))
        return self.phases[-1]

    async def recovered(self) -> None:
        """Every stack answers 2xx again, and its worker has published what was received until then."""
        for index, stack in enumerate(self.stacks):
            await accepting(self.load, index, since=self.phases[-1].began)
            self.phases[-1].caught_up[index] = await drained(self.cluster.bootstrap, stack.namespace)

    async def restart(self, brokers: list[int]) -> None:
        await restart(self.cluster, brokers, self.watched)

    async def verdict(self) -> None:
        """Print a line per fault and stack; every 2xx arrived, none twice under exactly_once."""
        for before, after in itertools.pairwise(self.phases):
            before.ended = after.began
        for index, stack in enumerate(self.stacks):
            arrived = await published(self.cluster.bootstrap, stack.namespace)
            guarantee = stack.env["HOOKSTREAM_PROCESSING_GUARANTEE"]
            report(guarantee, self.load, index, self.phases, arrived)
            check(self.load, index, arrived, exactly_once=guarantee == "exactly_once")


async def test_brokers_killed_and_restarted_under_load_lose_nothing_acknowledged(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Two stacks, exactly_once and at_least_once, under one steady load through four faults in turn:
    the leader of the most partitions SIGKILLed and restarted; the active controller SIGKILLed and,
    while it is still down, a second broker (two of three lost); both restarted; then a rolling restart
    of all three."""
    status = run_cli("kafka", "status", env=cluster.env)
    assert status.returncode == 0, status.stdout
    assert [line.split()[0] for line in status.stdout.splitlines()] == cluster.bootstrap.split(",")
    assert all(" pid " in line for line in status.stdout.splitlines()), "one line per node with its pid"

    stacks = [forum_stack(cluster, tmp_path / g, g) for g in ("exactly_once", "at_least_once")]
    async with under_load(cluster, stacks) as load:
        drill = Drill(cluster, load, stacks)
        worker = stacks[0].services[1]
        await eventually(lambda: metric(worker, "hookstream_events_published_total"), what="events")
        events = Topics(stacks[0].namespace).events
        await replicated(cluster, [*drill.watched, events, "__transaction_state", "__consumer_offsets"])

        leader = (await cluster.leaders(drill.watched)).most_common(1)[0][0]
        await one_lost(drill, leader, "the leader of the most partitions")
        await drill.restart([leader])

        controller = cluster.active_controller()
        await one_lost(drill, controller, "the active controller")
        second = next(b for b, _ in (await cluster.leaders(drill.watched)).most_common() if b != controller)
        await majority_lost(drill, [controller, second])

        rolling = drill.fault("rolling restart, one broker at a time (SIGTERM, start, in sync)")
        for broker in range(1, 4):
            await cluster.kill(broker, signal.SIGTERM)
            await drill.restart([broker])
        rolling.since, rolling.at = "the last broker was back", time.monotonic()
        await drill.recovered()
    await drill.verdict()


async def one_lost(drill: Drill, broker: int, name: str) -> None:
    """SIGKILL one broker and wait until the receivers accept again and the workers caught up."""
    await drill.cluster.kill(broker)
    drill.fault(f"broker {broker}, {name}, SIGKILLed")
    await drill.recovered()


async def majority_lost(drill: Drill, down: list[int]) -> None:
    """With `down[0]` down already, `down[1]` killed too: no write can reach min.insync.replicas, so
    only 503s, and /readyz says so on every probe once it has noticed; once both are restarted, 2xx
    again without restarting any service."""
    await drill.cluster.kill(down[1])
    outage = drill.fault(f"brokers {down[0]} and {down[1]}, two of three, down")
    receivers = [stack.services[0] for stack in drill.stacks]
    for service in receivers:
        await service.wait_http("/readyz", status=503, timeout=RECOVERY_S)
    probes: list[int] = []

    async def outage_observed() -> bool:
        probes.extend([await readyz(service) for service in receivers])
        return len(drill.load.answered(0, outage.began)) >= 10 * RATE_PER_S  # ten seconds of deliveries

    await eventually(outage_observed, timeout=RECOVERY_S, what="ten seconds of deliveries during the outage")
    for index in range(len(drill.stacks)):
        answers = {d.status for d in drill.load.answered(index, outage.began)}
        assert answers == {503}, "never a 2xx without two replicas in sync"
    assert set(probes) == {503}, f"/readyz answered {Counter(probes)} during the outage"
    print(f"\n{outage.name}: /readyz answered {Counter(probes)} during the outage")
    await drill.restart(down)
    for service in receivers:
        await service.wait_http("/readyz", status=200, timeout=RECOVERY_S)
    await drill.recovered()
    assert all(service.process.poll() is None for service in receivers), "recovered without a restart"
