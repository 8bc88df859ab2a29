"""`hookstream kafka start|stop|status`: a real Apache Kafka for development and CI, no Docker.

The broker is the official `org.apache.kafka:kafka_2.13` artifact and its runtime dependencies, fetched
from Maven Central by the machine's own Maven into a cache outside the repository, then run as one KRaft
node (broker and controller) per `HOOKSTREAM_KAFKA_BOOTSTRAP` address: one address is the single
development broker, several a replicated cluster (hookstream/localcluster.py says where each node keeps
its files). Nothing is downloaded twice: the jars are kept under `<cache>/kafka-<version>/lib`.
Processes are started, found and stopped by the pid files the launcher writes, never by name.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from hookstream import kafkajars, securekafka
from hookstream.errors import LocalKafkaError
from hookstream.kafka import kafka_answers, live_brokers
from hookstream.localcluster import (
    KAFKA_VERSION,
    LocalBroker,
    LocalCluster,
    local_cluster,
    new_cluster_id,
    render,
    server_properties,
)
from hookstream.settings import Settings

__all__ = ["KAFKA_VERSION", "LocalBroker", "start", "status", "stop"]

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
# What Kafka's own bin/kafka-server-start.sh and kafka-run-class.sh give a broker (KAFKA_HEAP_OPTS,
# KAFKA_JVM_PERFORMANCE_OPTS). A smaller starting heap (-Xms256m, as before) left G1 a young generation
# of ~16 MB: three collections a second at 1,000 events/s, each a 10-15 ms pause of every produce and
# fetch, several of which an event meets on its way through the topics (measured with jstat).
JVM_OPTIONS = (
    "-Xms1g",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
)
BIND_ATTEMPTS = 3  # a new cluster whose picked controller port was taken meanwhile tries other ports

_LOG4J2 = """status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""

# A cluster's nodes also log each change of their controller quorum role: "Completed transition to
# Leader(localId=2, epoch=5, …)" names the active controller of that epoch.
_QUORUM_LOG = """logger.quorum.name = org.apache.kafka.raft.QuorumState
logger.quorum.level = INFO
"""

Say = Callable[[str], None]


class _ControllerPortTaken(LocalKafkaError):
    """A node of a new cluster could not bind its controller port: pick others and start again."""


def start(settings: Settings, say: Say = print, *, secure: bool = False) -> None:
    """Start every node of the bootstrap list that is not running; leave the running ones alone."""
    cluster = local_cluster(settings)
    broker = cluster.nodes[0]
    # A cluster's nodes share the first node's users and certificates (under its directory).
    secured = (
        securekafka.SecureNode(broker.home, broker.host, broker.port, mtls=not cluster.replicated)
        if secure
        else None
    )
    probe = settings
    if secured is not None:
        secured.prepare()
        probe = secured.settings(settings)
    down = _down_nodes(probe, cluster, say)
    if not down:
        return
    java = kafkajars.java()
    kafkajars.fetch(broker.lib_dir, say)
    fresh = not any(node.formatted for node in cluster.nodes)
    for attempt in range(1, BIND_ATTEMPTS + 1):
        try:
            _launch(probe, cluster, down, java, say, secured)
            break
        except _ControllerPortTaken as exc:
            if not fresh or attempt == BIND_ATTEMPTS:
                raise LocalKafkaError(str(exc)) from None
            say(f"{exc}; picking other controller ports")
            for node in cluster.nodes:
                shutil.rmtree(node.home, ignore_errors=True)
            cluster = local_cluster(settings, fresh_ports=True)
            down = list(cluster.nodes)
    if secured is not None:
        for path in asyncio.run(securekafka.grant(secured, settings)):
            say(f"  {path}")


def _down_nodes(settings: Settings, cluster: LocalCluster, say: Say) -> list[LocalBroker]:
    """The nodes to start: those neither answering nor running as a process of ours."""
    down = []
    for node in cluster.nodes:
        pid = node.pid()
        if asyncio.run(kafka_answers(_at(settings, node))):
            owner = f"the local broker (pid {pid})" if pid else "a Kafka broker not started by hookstream"
            say(f"Kafka already answers at {_where(settings, cluster, node)}: {owner}")
        elif pid:  # ours, busy or still starting: never a second one on its data
            where = _at_address(cluster, node)
            say(f"the local broker{where} (pid {pid}) runs but does not answer yet; waiting for it")
            _wait_until_it_answers(settings, node, gone=functools.partial(_gone, node))
        else:
            down.append(node)
    return down


def _launch(
    settings: Settings,
    cluster: LocalCluster,
    down: list[LocalBroker],
    java: str,
    say: Say,
    secure: securekafka.SecureNode | None = None,
) -> None:
    """Start the `down` nodes together (a cluster serves only with a quorum of its controllers) and
    wait until each answers, and for a cluster until all its brokers are registered. `secure` adds its
    listeners, users and ACL settings to every node's properties."""
    cluster.save()
    for node in down:
        extra = secure.properties(node.controller_port, host=node.host, port=node.port) if secure else {}
        _write_config(node, cluster, extra)
        _format_storage(node, cluster, java, secure.format_args() if secure else [])
    begun = time.monotonic()
    processes = {}
    for node in down:
        role = f" (node {node.node_id}, controller port {node.controller_port})" if cluster.replicated else ""
        say(f"starting Kafka {KAFKA_VERSION} at {node.address}{role} (log: {node.log_file})")
        processes[node] = _spawn(node, java)
    try:
        _await_up(settings, cluster, processes)
    except LocalKafkaError:
        for node, process in processes.items():
            process.kill()
            node.pid_file.unlink(missing_ok=True)
        raise
    for node, process in processes.items():
        where = _where(settings, cluster, node)
        say(f"Kafka is up at {where} in {time.monotonic() - begun:.1f}s (pid {process.pid})")


def _spawn(node: LocalBroker, java: str) -> subprocess.Popen[bytes]:
    with node.log_file.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - argv built from fixed parts and the cache path
            [
                java,
                *JVM_OPTIONS,
                f"-Dlog4j2.configurationFile={node.home / 'log4j2.properties'}",
                "-cp",
                str(node.lib_dir / "*"),
                "kafka.Kafka",
                str(node.home / "server.properties"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    node.pid_file.write_text(f"{process.pid}\n")
    return process


def _await_up(
    settings: Settings, cluster: LocalCluster, processes: dict[LocalBroker, subprocess.Popen[bytes]]
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    waiting = dict(processes)
    while waiting or (cluster.replicated and _brokers(settings) < len(cluster.nodes)):
        for node, process in list(waiting.items()):
            if asyncio.run(kafka_answers(_at(settings, node), timeout_s=1.0)):
                del waiting[node]
            elif process.poll() is not None or time.monotonic() > deadline:
                raise _start_failure(node, cluster)
        if time.monotonic() > deadline:
            raise LocalKafkaError(f"not all brokers of {settings.kafka_bootstrap} registered in time")
        time.sleep(0.2)


def _start_failure(node: LocalBroker, cluster: LocalCluster | None) -> LocalKafkaError:
    log = _tail(node.log_file)
    if (
        cluster is not None
        and cluster.replicated
        and "Address already in use" in log
        and f":{node.controller_port}" in log
    ):
        return _ControllerPortTaken(f"controller port {node.controller_port} of {node.address} is taken")
    return LocalKafkaError(f"Kafka did not start at {node.address}; last lines of {node.log_file}:\n{log}")


def _brokers(settings: Settings) -> int:
    return asyncio.run(live_brokers(settings, timeout_s=1.0))


def _at(settings: Settings, node: LocalBroker) -> Settings:
    """The settings with only this node to bootstrap from: does *it* answer."""
    return replace(settings, kafka_bootstrap=node.address)


def _where(settings: Settings, cluster: LocalCluster, node: LocalBroker) -> str:
    return f"{node.address} (node {node.node_id})" if cluster.replicated else settings.kafka_bootstrap


def _at_address(cluster: LocalCluster, node: LocalBroker) -> str:
    return f" at {node.address}" if cluster.replicated else ""


def _gone(node: LocalBroker) -> bool:
    return node.pid() is None


def _wait_until_it_answers(settings: Settings, node: LocalBroker, gone: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not asyncio.run(kafka_answers(_at(settings, node), timeout_s=1.0)):
        if gone() or time.monotonic() > deadline:
            raise _start_failure(node, None)
        time.sleep(0.2)


def stop(settings: Settings, say: Say = print) -> None:
    """Stop every node this launcher started, by pid: SIGTERM to all, SIGKILL after STOP_TIMEOUT_S."""
    cluster = local_cluster(settings)
    running = {node: pid for node in cluster.nodes if (pid := node.pid()) is not None}
    for node in cluster.nodes:
        if node not in running:
            node.pid_file.unlink(missing_ok=True)
    if not running:
        say(f"no local Kafka of hookstream runs for {settings.kafka_bootstrap}")
        return
    for node, pid in running.items():
        say(f"stopping Kafka{_at_address(cluster, node)} (pid {pid})")
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while any(node.pid() is not None for node in running) and time.monotonic() < deadline:
        time.sleep(0.1)
    for node, pid in running.items():
        if node.pid() is not None:
            say(f"Kafka at {node.address} did not stop within {STOP_TIMEOUT_S:.0f}s; killing it")
            os.kill(pid, signal.SIGKILL)
        node.pid_file.unlink(missing_ok=True)
    say("Kafka stopped")


def status(settings: Settings, say: Say = print) -> bool:
    """Say whether Kafka answers, for a cluster one line per node; True when every node answers."""
    cluster = local_cluster(settings)
    if not cluster.replicated:
        return _status_single(settings, cluster.nodes[0], say)
    answering = 0
    for node in cluster.nodes:
        pid = node.pid()
        answers = asyncio.run(kafka_answers(_at(settings, node), timeout_s=1.0))
        answering += answers
        if pid:
            state = f"pid {pid}, {'answers' if answers else 'does not answer yet'}, log {node.log_file}"
        else:
            state = "answers, not started by hookstream" if answers else "not running"
        say(f"{node.address} node {node.node_id} (controller port {node.controller_port}): {state}")
    return answering == len(cluster.nodes)


def _status_single(settings: Settings, broker: LocalBroker, say: Say) -> bool:
    answers = asyncio.run(kafka_answers(settings))
    pid = broker.pid()
    if answers:
        owner = f"local broker, pid {pid}, log {broker.log_file}" if pid else "not started by hookstream"
        say(f"Kafka answers at {settings.kafka_bootstrap} ({owner})")
    elif pid:
        say(f"local broker (pid {pid}) runs but does not answer at {settings.kafka_bootstrap} yet")
    else:
        say(f"Kafka does not answer at {settings.kafka_bootstrap}")
    return answers


def _write_config(broker: LocalBroker, cluster: LocalCluster, extra: Mapping[str, str]) -> None:
    """The node's log and server properties: ours, with `extra` added or replacing ours."""
    broker.home.mkdir(parents=True, exist_ok=True)
    (broker.home / "log4j2.properties").write_text(_LOG4J2 + (_QUORUM_LOG if cluster.replicated else ""))
    config = broker.home / "server.properties"
    config.touch()
    config.chmod(0o600)  # a secure node's properties hold passwords
    config.write_text(render({**server_properties(broker, cluster), **extra}))


def _format_storage(broker: LocalBroker, cluster: LocalCluster, java: str, users: list[str]) -> None:
    """Format a new node's storage: the single broker as a quorum of its own, a cluster's nodes with
    the cluster's id (their static quorum is in server.properties)."""
    if broker.formatted:
        return
    if cluster.cluster_id is None:
        quorum = ["--standalone", f"--cluster-id={new_cluster_id()}"]
    else:
        quorum = [f"--cluster-id={cluster.cluster_id}"]
    result = subprocess.run(  # noqa: S603
        [
            java,
            "-cp",
            str(broker.lib_dir / "*"),
            "kafka.tools.StorageTool",
            "format",
            *quorum,  # --cluster-id=… is one argv word: a random id may start with "-"
            "-c",
            str(broker.home / "server.properties"),
            *users,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise LocalKafkaError(f"could not format Kafka's storage: {result.stdout}{result.stderr}".strip())


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
