"""The local Kafka's runtime: Java 17 to run it, and its jars, fetched from Maven Central by the machine's
own Maven once into `<cache>/kafka-<version>/lib`."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from hookstream.errors import LocalKafkaError
from hookstream.localcluster import KAFKA_VERSION

LOG4J_VERSION = "2.25.3"
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


def java() -> str:
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


def fetch(lib_dir: Path, say: Callable[[str], None]) -> None:
    """Resolve the broker's jars with Maven, once; a partial fetch is redone, never used."""
    complete = lib_dir.parent / ".complete"
    if complete.exists():
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError(f"Maven is needed to fetch the local Kafka: install it, {NO_RUNTIME_HINT}")
    work = lib_dir.parent
    shutil.rmtree(lib_dir, ignore_errors=True)
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
            f"-DoutputDirectory={lib_dir}",
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
    jars = len(list(lib_dir.glob("*.jar")))
    say(f"fetched {fetched} new artifacts; {jars} jars ready in {lib_dir}")
