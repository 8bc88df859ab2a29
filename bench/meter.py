"""What a benchmark run measures. Time: from the first record written to the last, by their timestamps.
CPU: time of a process, all its threads, user + system, from /proc/<pid>/stat (Linux): the cost per
record that does not depend on what else runs on the machine, where wall-clock figures do."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from hookstream.settings import Settings
from tests.integration.harness import read_all

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds `pid` has used so far, every thread of it included."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S  # utime, stime (fields 14 and 15)


@dataclass(frozen=True)
class Sample:
    """CPU seconds of some processes together, and how much work was done, at one moment."""

    cpu_s: float
    done: float
    at_s: float


def sample(pids: list[int], done: float) -> Sample:
    return Sample(sum(cpu_seconds(pid) for pid in pids), done, time.monotonic())


def us_per_unit(first: Sample, last: Sample) -> float:
    """CPU microseconds per unit of work between two samples."""
    if last.done <= first.done:
        raise RuntimeError("no work done between the CPU samples, not a measurement")
    return (last.cpu_s - first.cpu_s) / (last.done - first.done) * 1e6


def share(first: Sample, last: Sample) -> float:
    """CPU used between two samples as a share of one core (1.0 = one core busy all the time)."""
    return (last.cpu_s - first.cpu_s) / (last.at_s - first.at_s)


@dataclass(frozen=True)
class Throughput:
    """Raw records per second (by output timestamps) and CPU microseconds per raw record (all threads of
    every process, user + system, from the first outcome to the last; `steady_cpu_us_per_record` over the
    second half of the records only, when progress was seen there)."""

    eps: float
    cpu_us_per_record: float
    steady_cpu_us_per_record: float | None = None

    def figures(self, name: str) -> dict[str, float]:
        """`<name>_eps`, `<name>_cpu_us_per_record` and, where measured, `<name>_steady_cpu_us_per_record`."""
        figures = {f"{name}_eps": self.eps, f"{name}_cpu_us_per_record": self.cpu_us_per_record}
        if self.steady_cpu_us_per_record is not None:
            figures[f"{name}_steady_cpu_us_per_record"] = self.steady_cpu_us_per_record
        return figures


class CpuSpan:
    """CPU samples of some processes as they work through `total` units: at the first unit done, at half
    of them, and at the end. The second half is the steady state: a JVM's first seconds compile its hot
    code (the Kafka Streams peer ran at 3-7k records/s for ~5 s, then at 30-40k) and a consumer group
    settles; a run's whole span counts that start-up against the records of that one run."""

    def __init__(self, pids: list[int], total: int) -> None:
        self._pids, self._total = pids, total
        self._first: Sample | None = None
        self._half: Sample | None = None
        self._last: Sample | None = None

    def progress(self, done: int) -> None:
        if self._first is None and done > 0:
            self._first = sample(self._pids, done)
        if self._half is None and self._total / 2 <= done < self._total:
            self._half = sample(self._pids, done)

    def finish(self, done: int) -> None:
        self._last = sample(self._pids, done)

    def throughput(self, eps: float) -> Throughput:
        """`eps` with the CPU per record of the whole span and of its second half. A run so short that no
        progress was seen before its end (`--quick`) counts the processes' CPU from their start."""
        last = self._last
        assert last is not None, "finish() first"
        first = self._first if self._first is not None and self._first.done < last.done else None
        steady = us_per_unit(self._half, last) if self._half is not None else None
        return Throughput(eps, us_per_unit(first or Sample(0.0, 0.0, 0.0), last), steady)


async def output_seconds(settings: Settings, topic: str) -> float:
    """From the first record written to `topic` to the last, by their timestamps."""
    stamps: list[int] = [record.timestamp for record in await read_all(settings, topic)]
    if len(stamps) < 2 or max(stamps) == min(stamps):
        raise RuntimeError(f"{topic}: {len(stamps)} records within one millisecond, not a measurement")
    return (max(stamps) - min(stamps)) / 1000
