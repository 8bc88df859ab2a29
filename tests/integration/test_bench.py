"""`make bench` still works: its quick mode runs every measurement end to end and writes every figure.
Never a timing assertion: these machines are shared and noisy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import e2e

FIGURES = (
    "receiver_rps",
    "receiver_p99_ms",
    "receiver_cpu_us_per_request",
    "baseline_http_rps",
    "processor_eps",
    "processor_cpu_us_per_record",
    "processor_eos_eps",
    "processor_eos_cpu_us_per_record",
    "baseline_kafka_eps",
    "baseline_kafka_cpu_us_per_record",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "e2e_cpu_share_receivers",
    "e2e_cpu_share_worker",
)
# Where the end-to-end latency goes: each hop's share, measured at broker append times (milliseconds: a hop
# on one machine may well take less than one).
HOPS = tuple(f"e2e_hop_{hop}_{share}_ms" for hop in e2e.HOPS for share in ("p50", "p99"))


def test_the_quick_benchmark_measures_every_figure(bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert {figure: results[figure] for figure in FIGURES if not results[figure] > 0} == {}
    assert {hop: results[hop] for hop in HOPS if not results[hop] >= 0} == {}
    assert results["receiver_non_2xx"] == 0
    assert results["machine"]["cores"] >= 1
    assert results["settings"]["quick"] is True
    for figure in FIGURES:
        assert figure in result.stdout
