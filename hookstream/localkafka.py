"""`hookstream kafka start|stop|status`: one real Apache Kafka broker for development and CI, no Docker.

The broker is the official `org.apache.kafka:kafka_2.13` artifact and its runtime dependencies, fetched
from Maven Central by the machine's own Maven into a cache outside the repository, then run as one KRaft
node that is both broker and controller. Nothing is downloaded twice: the jars are kept under
`<cache>/kafka-<version>/lib`, the broker's data and log under `<cache>/broker-<port>/`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hookstream import securekafka
from hookstream.errors import LocalKafkaError
from hookstream.kafka import kafka_answers
from hookstream.settings import Settings

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.25.3"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
NO_RUNTIME_HINT = "or point HOOKSTREAM_KAFKA_BOOTSTRAP at an existing Kafka"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.hookstream</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

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

_SERVER = """process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers={host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
"""

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class LocalBroker:
    """Where the local broker of one `HOOKSTREAM_KAFKA_BOOTSTRAP` address keeps its files."""

    host: str
    port: int
    cache_dir: Path

    @classmethod
    def for_settings(cls, settings: Settings) -> LocalBroker:
        host, _, port = settings.bootstrap_servers[0].rpartition(":")
        return cls(host=host, port=int(port), cache_dir=settings.cache_dir)

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def lib_dir(self) -> Path:
        return self.cache_dir / f"kafka-{KAFKA_VERSION}" / "lib"

    @property
    def home(self) -> Path:
        return self.cache_dir / f"broker-{self.port}"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    def pid(self) -> int | None:
        """The pid of the broker this launcher started, if that process still runs."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid


def start(settings: Settings, say: Say = print, *, secure: bool = False) -> None:
    broker = LocalBroker.for_settings(settings)
    node = securekafka.SecureNode(broker.home, broker.host, broker.port) if secure else None
    probe = settings
    if node is not None:
        node.prepare()
        probe = node.settings(settings)
    if asyncio.run(kafka_answers(probe)):
        pid = broker.pid()
        owner = f"the local broker (pid {pid})" if pid else "a Kafka broker not started by hookstream"
        say(f"Kafka already answers at {settings.kafka_bootstrap}: {owner}")
        return
    if (pid := broker.pid()) is not None:  # ours, busy or still starting: never a second one on its data
        say(f"the local broker (pid {pid}) runs but does not answer yet; waiting for it")
        _wait_until_it_answers(probe, broker, lambda: broker.pid() is None)
        return
    java = _java()
    _fetch_jars(broker, say)
    _write_config(broker, node.properties(broker.controller_port) if node else {})
    _format_storage(broker, java, node.format_args() if node else [])
    begun = time.monotonic()
    say(f"starting Kafka {KAFKA_VERSION} at {broker.host}:{broker.port} (log: {broker.log_file})")
    with broker.log_file.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - argv built from fixed parts and the cache path
            [
                java,
                "-Xms256m",
                "-Xmx1g",
                "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={broker.home / 'log4j2.properties'}",
                "-cp",
                str(broker.lib_dir / "*"),
                "kafka.Kafka",
                str(broker.home / "server.properties"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    broker.pid_file.write_text(f"{process.pid}\n")
    try:
        _wait_until_it_answers(probe, broker, lambda: process.poll() is not None)
    except LocalKafkaError:
        process.kill()
        broker.pid_file.unlink(missing_ok=True)
        raise
    say(f"Kafka is up at {settings.kafka_bootstrap} in {time.monotonic() - begun:.1f}s (pid {process.pid})")
    if node is not None:
        for path in asyncio.run(securekafka.grant(node, settings)):
            say(f"  {path}")


def _wait_until_it_answers(settings: Settings, broker: LocalBroker, gone: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not asyncio.run(kafka_answers(settings, timeout_s=1.0)):
        if gone() or time.monotonic() > deadline:
            raise LocalKafkaError(
                f"Kafka did not start at {settings.kafka_bootstrap}; last lines of {broker.log_file}:\n"
                + _tail(broker.log_file)
            )
        time.sleep(0.2)


def stop(settings: Settings, say: Say = print) -> None:
    broker = LocalBroker.for_settings(settings)
    pid = broker.pid()
    if pid is None:
        broker.pid_file.unlink(missing_ok=True)
        say(f"no local Kafka of hookstream runs for {settings.kafka_bootstrap}")
        return
    say(f"stopping Kafka (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while broker.pid() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    if broker.pid() is not None:
        say(f"Kafka did not stop within {STOP_TIMEOUT_S:.0f}s; killing it")
        os.kill(pid, signal.SIGKILL)
    broker.pid_file.unlink(missing_ok=True)
    say("Kafka stopped")


def status(settings: Settings, say: Say = print) -> bool:
    """Say whether Kafka answers at the bootstrap address; True when it does."""
    broker = LocalBroker.for_settings(settings)
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


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise LocalKafkaError(
            f"Java 17 or newer is needed to run the local Kafka: install it, {NO_RUNTIME_HINT}"
        )
    probe = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)  # noqa: S603
    match = re.search(r'version "(\d+)', probe.stderr + probe.stdout)
    if not match or int(match.group(1)) < 17:
        raise LocalKafkaError(
            f"Java 17 or newer is needed to run the local Kafka (found: {probe.stderr.splitlines()[:1]}); "
            f"install it, {NO_RUNTIME_HINT}"
        )
    return java


def _fetch_jars(broker: LocalBroker, say: Say) -> None:
    """Resolve the broker's jars with Maven, once; a partial fetch is redone, never used."""
    complete = broker.lib_dir.parent / ".complete"
    if complete.exists():
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError(f"Maven is needed to fetch the local Kafka: install it, {NO_RUNTIME_HINT}")
    work = broker.lib_dir.parent
    shutil.rmtree(broker.lib_dir, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(_POM.format(kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
    say(f"fetching Apache Kafka {KAFKA_VERSION} from Maven Central into {work} (once)")
    process = subprocess.Popen(  # noqa: S603
        [
            mvn,
            "-B",
            "-f",
            str(work / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={broker.lib_dir}",
            "-DincludeScope=runtime",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    transcript, fetched = [], 0
    for line in process.stdout:
        transcript.append(line)
        downloaded = re.search(r"Downloaded from \S+: \S+/([^/\s]+\.jar) \(([^)]*?)(?: at [^)]*)?\)", line)
        if downloaded:
            fetched += 1
            say(f"  [{fetched:3d}] {downloaded.group(1)} ({downloaded.group(2)})")
    if process.wait() != 0:
        raise LocalKafkaError("Maven could not fetch Kafka:\n" + "".join(transcript[-25:]))
    complete.write_text(f"{KAFKA_VERSION}\n")
    jars = len(list(broker.lib_dir.glob("*.jar")))
    say(f"fetched {fetched} new artifacts; {jars} jars ready in {broker.lib_dir}")


def _write_config(broker: LocalBroker, secure: Mapping[str, str]) -> None:
    broker.home.mkdir(parents=True, exist_ok=True)
    (broker.home / "log4j2.properties").write_text(_LOG4J2)
    plain = _SERVER.format(
        host=broker.host, port=broker.port, controller_port=broker.controller_port, data=broker.home / "data"
    )
    config = broker.home / "server.properties"
    config.touch()
    config.chmod(0o600)  # a secure node's properties hold passwords
    config.write_text(securekafka.override(plain, secure))


def _format_storage(broker: LocalBroker, java: str, users: list[str]) -> None:
    if (broker.home / "data" / "meta.properties").exists():
        return
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    result = subprocess.run(  # noqa: S603
        [
            java,
            "-cp",
            str(broker.lib_dir / "*"),
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            f"--cluster-id={cluster_id}",  # one argv word: a random id may start with "-"
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
