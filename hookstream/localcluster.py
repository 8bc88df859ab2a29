"""The nodes of the local Kafka: one KRaft node (broker and controller) per `HOOKSTREAM_KAFKA_BOOTSTRAP`
address, where each keeps its files, and the server properties each runs with.

One address is the development default: `<cache>/broker-<port>/`, its controller on the next port. Several
addresses make a replicated cluster under `<cache>/cluster-<port>-<port>…/`, one `broker-<port>/`
directory per node and a `cluster.json` that keeps what all nodes must agree on: the cluster id and each
node's controller port. Those ports are picked once, when the cluster is created, below 32768: Linux
hands out ephemeral ports for outgoing connections from 32768 up, so no client socket can hold one of
them when a node restarts (the controller quorum is static: a node cannot move to another port).
"""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from hookstream.kafka import REPLICATED, min_insync_for
from hookstream.settings import Settings

KAFKA_VERSION = "4.1.1"
CONTROLLER_PORTS = range(20000, 32768)  # below the ephemeral range (32768-60999)


@dataclass(frozen=True, slots=True)
class LocalBroker:
    """Where one node of the local Kafka keeps its files, and where it listens."""

    host: str
    port: int
    cache_dir: Path
    node_id: int = 1
    home_dir: Path | None = None  # a node of a cluster; None: the single development broker
    controller: int | None = None  # its controller port, picked when the cluster was created

    @classmethod
    def for_settings(cls, settings: Settings) -> LocalBroker:
        host, _, port = settings.bootstrap_servers[0].rpartition(":")
        return cls(host=host, port=int(port), cache_dir=settings.cache_dir)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def controller_port(self) -> int:
        return self.controller if self.controller is not None else self.port + 1

    @property
    def lib_dir(self) -> Path:
        return self.cache_dir / f"kafka-{KAFKA_VERSION}" / "lib"

    @property
    def home(self) -> Path:
        return self.home_dir if self.home_dir is not None else self.cache_dir / f"broker-{self.port}"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def formatted(self) -> bool:
        return (self.home / "data" / "meta.properties").exists()

    def pid(self) -> int | None:
        """The pid of the node this launcher started, if that process still runs."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return None if _zombie(pid) else pid


@dataclass(frozen=True, slots=True)
class LocalCluster:
    """The nodes of one bootstrap list; `cluster_id` is None for the single broker (formatted alone)."""

    nodes: tuple[LocalBroker, ...]
    cluster_id: str | None = None
    layout: Path | None = None  # cluster.json

    @property
    def replicated(self) -> bool:
        return len(self.nodes) > 1

    def save(self) -> None:
        """Keep the cluster id and controller ports for every later start of any node."""
        if self.layout is not None:
            self.layout.parent.mkdir(parents=True, exist_ok=True)
            ports = {node.address: node.controller_port for node in self.nodes}
            self.layout.write_text(json.dumps({"cluster_id": self.cluster_id, "controller_ports": ports}))


def local_cluster(settings: Settings, *, fresh_ports: bool = False) -> LocalCluster:
    """The nodes of `HOOKSTREAM_KAFKA_BOOTSTRAP`: as created before (cluster.json), else a new cluster
    with newly picked controller ports; `fresh_ports` picks again (a bind failed before any node ran)."""
    if len(settings.bootstrap_servers) == 1:
        return LocalCluster((LocalBroker.for_settings(settings),))
    addresses = [server.rpartition(":") for server in settings.bootstrap_servers]
    root = settings.cache_dir / ("cluster-" + "-".join(port for _, _, port in addresses))
    layout = root / "cluster.json"
    known: dict[str, object] = {} if fresh_ports or not layout.exists() else json.loads(layout.read_text())
    cluster_id = str(known.get("cluster_id") or new_cluster_id())
    ports = known.get("controller_ports")
    if not isinstance(ports, dict):
        taken = {int(port) for _, _, port in addresses}  # the brokers' own, not listening yet
        picked = pick_ports(len(addresses), {host for host, _, _ in addresses}, taken)
        ports = dict(zip(settings.bootstrap_servers, picked, strict=True))
    nodes = tuple(
        LocalBroker(
            host=host,
            port=int(port),
            cache_dir=settings.cache_dir,
            node_id=index,
            home_dir=root / f"broker-{port}",
            controller=int(ports[f"{host}:{port}"]),
        )
        for index, (host, _, port) in enumerate(addresses, start=1)
    )
    return LocalCluster(nodes, cluster_id, layout)


def _zombie(pid: int) -> bool:
    """A killed node whose exit nobody has collected yet (its launcher is gone) is not running."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def pick_ports(count: int, hosts: set[str], taken: set[int] | None = None) -> list[int]:
    """`count` distinct ports below the ephemeral range, none of `taken`, that nothing listens on now
    on any of `hosts`."""
    picked: list[int] = []
    rng = random.SystemRandom()
    while len(picked) < count:
        port = rng.choice(CONTROLLER_PORTS)
        if port not in picked and port not in (taken or set()) and all(bindable(h, port) for h in hosts):
            picked.append(port)
    return picked


def bindable(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def server_properties(node: LocalBroker, cluster: LocalCluster) -> dict[str, str]:
    """The node's server.properties. A dict, so that a caller may add or replace properties per node
    (listeners of another security protocol, say) before it is written."""
    replicas = min(len(cluster.nodes), REPLICATED)
    min_isr = str(min_insync_for(replicas))
    quorum = (
        {
            "controller.quorum.voters": ",".join(
                f"{n.node_id}@{n.host}:{n.controller_port}" for n in cluster.nodes
            )
        }
        if cluster.replicated
        else {"controller.quorum.bootstrap.servers": f"{node.host}:{node.controller_port}"}
    )
    return {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        **quorum,
        "listeners": f"PLAINTEXT://{node.host}:{node.port},CONTROLLER://{node.host}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{node.host}:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(node.home / "data"),
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        # Kafka's own topics (offsets, transaction state) replicated like ours: a transaction or an
        # offset commit survives the loss of one node of three, as an acknowledged delivery does.
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": min_isr,
        # and so are topics created without a replication factor of their own
        "default.replication.factor": str(replicas),
        "min.insync.replicas": min_isr,
        "group.initial.rebalance.delay.ms": "0",
    }


def render(properties: dict[str, str]) -> str:
    return "".join(f"{name}={value}\n" for name, value in properties.items())
