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
    every process, user + system, from the first outcome to the last)."""

    eps: float
    cpu_us_per_record: float


async def output_seconds(settings: Settings, topic: str) -> float:
    """From the first record written to `topic` to the last, by their timestamps."""
    stamps: list[int] = [record.timestamp for record in await read_all(settings, topic)]
    if len(stamps) < 2 or max(stamps) == min(stamps):
        raise RuntimeError(f"{topic}: {len(stamps)} records within one millisecond, not a measurement")
    return (max(stamps) - min(stamps)) / 1000
