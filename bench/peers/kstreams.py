"""The Kafka Streams peer (bench/peers/kstreams/, Java 17, Maven): hookstream's processor topology
in Kafka Streams at the broker's version, run over the same raw records under both guarantees, timed
like processor_eps (by its firehose's record timestamps) and costed like it (CPU per raw record).

Built with Maven offline when the local repository has everything, else online. A peer that cannot
be built or run is reported in one line and the rest of the benchmark goes on.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench import meter
from hookstream.settings import Settings

PROJECT = Path(__file__).resolve().parent / "kstreams"
CLASSPATH_FILE = PROJECT / "target" / "classpath.txt"
GUARANTEES = {"kstreams": "at_least_once", "kstreams_eos": "exactly_once_v2"}
START_TIMEOUT_S = 120


class PeerUnavailable(Exception):
    """The peer could not be built or run here; the message says why, in one line."""


def build() -> str:
    """Compile the peer; its Java classpath."""
    mvn = shutil.which("mvn")
    if not mvn or not shutil.which("java"):
        raise PeerUnavailable("needs java and mvn on PATH")
    goals = ["compile", "dependency:build-classpath", f"-Dmdep.outputFile={CLASSPATH_FILE}"]
    for mode in (["-o"], []):  # offline first: a warm ~/.m2 needs no network
        done = subprocess.run(
            [mvn, "-q", "-B", *mode, *goals], cwd=PROJECT, capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            return f"{PROJECT / 'target' / 'classes'}{os.pathsep}{CLASSPATH_FILE.read_text().strip()}"
    last = (done.stdout + done.stderr).strip().splitlines()
    raise PeerUnavailable(f"mvn failed: {last[-1] if last else done.returncode}")


async def measure_both(settings: Settings, raw_topics: list[str], count: int) -> dict[str, float | str]:
    """kstreams_eps, kstreams_cpu_us_per_record and their exactly_once_v2 twins; or `kstreams_error`."""
    try:
        classpath = await asyncio.to_thread(build)
        results: dict[str, float | str] = {}
        for name, guarantee in GUARANTEES.items():
            namespace = f"{settings.namespace}-{name}"
            run = await _run(settings, classpath, guarantee, namespace, raw_topics, count)
            results.update(run.figures(name))
    except PeerUnavailable as exc:
        print(f"kstreams peer skipped: {exc}", file=sys.stderr)
        return {"kstreams_error": str(exc)}
    return results


async def _run(
    settings: Settings, classpath: str, guarantee: str, namespace: str, raw_topics: list[str], count: int
) -> meter.Throughput:
    """One peer process over `count` raw records: CPU sampled at the first record through its dedup step,
    at half of them and at the last, as for the worker (`meter.CpuSpan`)."""
    java = await asyncio.create_subprocess_exec(
        "java", "-cp", classpath, "hookstream.peer.Peer",
        settings.kafka_bootstrap, namespace, guarantee, namespace,
        str(int(settings.dedup_window_s)), str(settings.topic_partitions), *raw_topics,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert java.stdout is not None
    span = meter.CpuSpan([java.pid], count)
    try:
        async with asyncio.timeout(START_TIMEOUT_S + count / 100):
            while (line := await java.stdout.readline()) and (done := int(line.split()[-1])) < count:
                span.progress(done)
        if not line:
            raise PeerUnavailable(f"the {guarantee} peer exited with {await java.wait()}")
        span.finish(done)
    except TimeoutError as exc:
        raise PeerUnavailable(f"the {guarantee} peer did not finish {count} records in time") from exc
    finally:
        if java.returncode is None:
            java.terminate()
        await java.wait()
    eps = count / await meter.output_seconds(settings, f"{namespace}.events")
    return span.throughput(eps)
