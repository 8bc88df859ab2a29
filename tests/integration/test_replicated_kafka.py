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
from datetime import datetime
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hookstream.localcluster import LocalBroker, local_cluster, pick_ports
from hookstream.settings import Settings
from hookstream.topics import Topics
from tests.integration.harness import Service, Stack, caught_up, eventually, metric, read_all
from tests.support import FORUM_TOKEN, forum_event, run_cli

RATE_PER_S = 40  # per stack: steady, far below what the receivers and a worker can do on 2 cores
RECOVERY_S = 120.0  # generous: the machine is shared; Kafka fences a dead broker after ~9 s
pytestmark = pytest.mark.timeout(600)  # each test drives several faults through one cluster
_LEADER = re.compile(r"\[RaftManager id=(\d+)\] Completed transition to Leader\(.*?epoch=(\d+)")


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
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            described = await admin.describe_topics(topics)
        finally:
            await admin.close()
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
def cluster() -> Iterator[Cluster]:
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
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
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
    except aiohttp.ClientError:
        delivery.status = 0
    delivery.answered_at = time.monotonic()


@dataclass
class Phase:
    name: str
    began: float  # when the fault was done (the process was gone)
    ended: float = float("inf")


async def accepting_again(load: Load, stack: int, since: float, run: int = 20) -> bool:
    """The last `run` answers to deliveries sent after `since` are all 2xx."""
    answers = load.answered(stack, since)
    return len(answers) >= run and all(d.status == 200 for d in answers[-run:])


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


async def published(bootstrap: str, namespace: str) -> dict[int, list[float]]:
    """Each event id on the firehose → its receive-to-publish delays (s), one per copy."""
    topics = Topics(namespace)
    delays: dict[int, list[float]] = {}
    for record in await read_all(bootstrap, topics.events):
        event = orjson.loads(record.value)
        received = datetime.fromisoformat(event["hsreceivedat"]).timestamp()
        delays.setdefault(int(event["id"].split(":")[1]), []).append(record.timestamp / 1000 - received)
    return delays


def report(
    guarantee: str, load: Load, stack: int, phases: list[Phase], arrived: dict[int, list[float]]
) -> None:
    """One line per fault, for deliveries sent from the fault until the next one."""
    for phase in phases:
        sent = {n: d for n, d in load.deliveries[stack].items() if phase.began <= d.sent_at < phase.ended}
        acked = [n for n, d in sent.items() if d.status == 200]
        refused = [d for d in sent.values() if d.status == 503]
        window = max((d.answered_at for d in refused), default=phase.began) - phase.began
        waited = max((max(arrived[n]) for n in sent if n in arrived), default=0.0)
        print(
            f"\n[{phase.name}, {guarantee}] sent {len(sent)}, 2xx {len(acked)}, 503 {len(refused)}, "
            f"arrived {sum(1 for n in acked if n in arrived)}, "
            f"duplicated {sum(1 for n in sent if len(arrived.get(n, ())) > 1)}, "
            f"503s until {window:.1f} s after the fault, longest receive-to-publish {waited:.1f} s"
        )


def check(load: Load, stack: int, arrived: dict[int, list[float]], *, exactly_once: bool) -> None:
    acked = {n for n, d in load.deliveries[stack].items() if d.status == 200}
    assert acked, "deliveries were accepted"
    assert acked <= set(arrived), f"acknowledged but lost: {sorted(acked - set(arrived))[:20]}"
    assert {d.status for d in load.deliveries[stack].values()} <= {200, 503}, "only 2xx or 503"
    if exactly_once:
        doubled = sorted(n for n, delays in arrived.items() if len(delays) > 1)
        assert not doubled, f"published twice under exactly_once: {doubled[:20]}"


async def replicated(cluster: Cluster, topics: list[str]) -> None:
    """Three replicas of every partition, two of them needed in sync for an acks=all write."""
    partitions = await cluster.partitions(topics)
    assert partitions
    assert {len(p["replicas"]) for p in partitions} == {3}  # type: ignore[arg-type]
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, topic, {"min.insync.replicas": None})
                for topic in topics
            ]
        )
    finally:
        await admin.close()
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
    print(out)
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


async def test_a_lost_leader_a_lost_controller_and_a_lost_majority_under_load(
    cluster: Cluster, tmp_path: Path
) -> None:
    status = run_cli("kafka", "status", env=cluster.env)
    assert status.returncode == 0, status.stdout
    assert [line.split()[0] for line in status.stdout.splitlines()] == cluster.bootstrap.split(",")
    assert all(" pid " in line for line in status.stdout.splitlines()), "one line per node with its pid"

    stack = forum_stack(cluster, tmp_path / "exactly_once", "exactly_once")
    topics = Topics(stack.namespace)
    watched = [topics.raw("websitetoolbox"), topics.keyed, topics.events]
    phases: list[Phase] = []
    async with under_load(cluster, [stack]) as load:
        await eventually(
            lambda: metric(stack.services[1], "hookstream_events_published_total"), what="a commit"
        )
        await replicated(cluster, [*watched, "__transaction_state", "__consumer_offsets"])
        most = (await cluster.leaders(watched[:2])).most_common(1)[0][0]
        await one_lost(cluster, load, phases, f"broker {most}, leader of the most partitions", most, watched)
        controller = cluster.active_controller()
        await one_lost(
            cluster, load, phases, f"broker {controller}, the active controller", controller, watched
        )
        await majority_lost(cluster, load, stack.services[0], phases, watched)
    for before, after in itertools.pairwise(phases):
        before.ended = after.began
    arrived = await published(cluster.bootstrap, stack.namespace)
    report("exactly_once", load, 0, phases, arrived)
    check(load, 0, arrived, exactly_once=True)


async def one_lost(
    cluster: Cluster, load: Load, phases: list[Phase], name: str, broker: int, watched: list[str]
) -> None:
    """SIGKILL one broker, restart it once the receivers accept again, wait until it is back in sync."""
    await cluster.kill(broker)
    phases.append(Phase(f"broker {broker}, {name}, SIGKILLed", time.monotonic()))
    await accepting(load, 0, since=phases[-1].began)
    print(f"\n{phases[-1].name}: accepting again after {time.monotonic() - phases[-1].began:.1f} s")
    await restart(cluster, [broker], watched)
    print(f"back in sync after {time.monotonic() - phases[-1].began:.1f} s")


async def majority_lost(
    cluster: Cluster, load: Load, receivers: Service, phases: list[Phase], watched: list[str]
) -> None:
    """Two of three brokers killed: no write can reach min.insync.replicas, so only 503s, and /readyz
    says so on every probe once it has noticed; after they return, 2xx again without a restart."""
    two = [broker for broker, _ in (await cluster.leaders(watched[:2])).most_common(2)]
    two += [b for b in range(1, 4) if b not in two][: 2 - len(two)]
    for broker in two:
        await cluster.kill(broker)
    phases.append(Phase(f"brokers {two[0]} and {two[1]}, two of three, SIGKILLed", time.monotonic()))
    await receivers.wait_http("/readyz", status=503, timeout=RECOVERY_S)
    probes: list[int] = []

    async def outage_observed() -> bool:
        probes.append(await readyz(receivers))
        return len(load.answered(0, phases[-1].began)) >= 10 * RATE_PER_S  # ten seconds of deliveries

    await eventually(outage_observed, timeout=RECOVERY_S, what="ten seconds of deliveries during the outage")
    assert {d.status for d in load.answered(0, phases[-1].began)} == {503}, "never a 2xx without two in sync"
    assert set(probes) == {503}, f"/readyz answered {Counter(probes)} during the outage"
    print(f"\n{phases[-1].name}: {Counter(probes)} readyz probes during the outage")
    await restart(cluster, two, watched)
    await receivers.wait_http("/readyz", status=200, timeout=RECOVERY_S)
    await accepting(load, 0, since=phases[-1].began)
    print(f"accepting again after {time.monotonic() - phases[-1].began:.1f} s")
    assert receivers.process.poll() is None, "the receivers recovered without a restart"


async def test_a_rolling_restart_under_load_loses_nothing_and_doubles_nothing_under_exactly_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    stacks = [forum_stack(cluster, tmp_path / g, g) for g in ("exactly_once", "at_least_once")]
    watched = [topic for stack in stacks for topic in _watched(Topics(stack.namespace))]
    async with under_load(cluster, stacks) as load:
        phases = [Phase("rolling restart, one broker at a time (SIGTERM, start, in sync)", time.monotonic())]
        for broker in range(1, 4):
            await cluster.kill(broker, signal.SIGTERM)
            await restart(cluster, [broker], watched)
        done = time.monotonic()
        for index in range(len(stacks)):
            await accepting(load, index, since=done)
    for index, stack in enumerate(stacks):
        arrived = await published(cluster.bootstrap, stack.namespace)
        guarantee = stack.env["HOOKSTREAM_PROCESSING_GUARANTEE"]
        report(guarantee, load, index, phases, arrived)
        check(load, index, arrived, exactly_once=guarantee == "exactly_once")


def _watched(topics: Topics) -> list[str]:
    return [topics.raw("websitetoolbox"), topics.keyed, topics.events]
