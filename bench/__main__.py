"""`make bench`: every figure of SPEC §6 beside its baseline, measured in one run on this machine.

    python -m bench [--quick] [--peers] [--out bench/results/latest.json] [--profile DIR]

Prints a table and writes the JSON. `--quick` runs everything briefly: CI uses it to check that the
benchmark still works, never to judge speed (these machines are shared and noisy: compare ratios, and
CPU per record, which does not depend on the neighbours). `--peers` adds the Kafka Streams peer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import time
from pathlib import Path

from bench import e2e, processor, receivers
from bench.profile import Profiler
from hookstream.kafka import delete_topics_starting_with
from hookstream.localkafka import KAFKA_VERSION
from hookstream.settings import Settings
from tests.support import free_port

CONNECTIONS = 64
E2E_RATE = 1000
# Raw records a processor run reads: enough that the second half of them is the steady state of every
# process measured (meter.CpuSpan). The Kafka Streams peer ran at 3-7k records/s for its first ~5 s
# (JIT, its group settling), then at 30-40k; over 30,000 or 100,000 records its start dominated its CPU
# per record (116-383 and 95-200 µs from run to run); over the second half of 200,000 it cost 29-44 µs.
PROCESSOR_RECORDS = 200_000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="short runs: checks the benchmark works")
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    parser.add_argument(
        "--peers", action="store_true", help="also measure the Kafka Streams peer (bench/peers/kstreams)"
    )
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="write py-spy flame graphs of what is measured to DIR"
    )
    parser.add_argument(
        "--secure",
        type=Path,
        metavar="ENVFILE",
        help="also measure receivers and processor over the HOOKSTREAM_KAFKA_* settings in ENVFILE "
        "(e.g. the admin.env `hookstream kafka start --secure` writes)",
    )
    args = parser.parse_args()
    # aiokafka warns while a topic created a moment ago has no leader yet: expected here, not news.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    secure = env_file(args.secure) if args.secure else None
    results = asyncio.run(
        measured(quick=args.quick, peers=args.peers, profiler=Profiler(args.profile), secure=secure)
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nwritten to {args.out}")


def env_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


async def measured(
    *, quick: bool, peers: bool, profiler: Profiler, secure: dict[str, str] | None
) -> dict[str, object]:
    """Every figure, and with `secure` the receivers' and processor's again over those Kafka settings;
    the topics the run created are deleted afterwards, so that repeated runs do not pile partitions up
    on a developer's broker (and slow it down)."""
    kafkas = [dict(os.environ), *([{**os.environ, **secure}] if secure else [])]
    try:
        bootstrap = kafkas[0].get("HOOKSTREAM_KAFKA_BOOTSTRAP", "localhost:9092")
        results = await run(bootstrap, quick=quick, peers=peers, profiler=profiler)
        if secure:
            results["secure"] = await secure_run(kafkas[1], quick=quick, profiler=profiler)
        return results
    finally:
        for kafka in kafkas:
            await delete_topics_starting_with(Settings.from_env(kafka), [f"bench-{os.getpid()}-"])


async def secure_run(kafka: dict[str, str], *, quick: bool, profiler: Profiler) -> dict[str, object]:
    """receiver_rps, receiver_p99_ms and processor_eps over another Kafka connection (SASL_SSL, say), to
    set beside the PLAINTEXT figures of the same run: what encryption and logins cost."""
    http_seconds, records = (2, 2000) if quick else (10, PROCESSOR_RECORDS)
    stamp = f"bench-{os.getpid()}-{int(time.time())}"
    env = {**kafka, "HOOKSTREAM_LOG_LEVEL": "WARNING", "HOOKSTREAM_NAMESPACE": f"{stamp}-secure-http"}
    http = await receivers.measure_server("kafka", env, free_port(), http_seconds, CONNECTIONS, profiler)
    eps = await processor.measure(kafka, records, 0.1, profiler, eos=False)
    return {
        "security_protocol": Settings.from_env(kafka).kafka_security.protocol,
        "receiver_rps": round(http.rps),
        "receiver_p99_ms": round(http.p99_ms, 2),
        "receiver_non_2xx": http.non_2xx,
        "processor_eps": _rounded(eps["processor_eps"]),
        "baseline_kafka_eps": _rounded(eps["baseline_kafka_eps"]),
    }


async def run(bootstrap: str, *, quick: bool, peers: bool, profiler: Profiler) -> dict[str, object]:
    stamp = f"bench-{os.getpid()}-{int(time.time())}"
    env = {**os.environ, "HOOKSTREAM_KAFKA_BOOTSTRAP": bootstrap, "HOOKSTREAM_LOG_LEVEL": "WARNING"}
    quick_settings, full_settings = (2, 2000, 2, 1), (10, PROCESSOR_RECORDS, 10, 3)
    http_seconds, records, e2e_seconds, warmup_seconds = quick_settings if quick else full_settings

    # Free ports, never fixed ones: another bench, or the suite's, may run beside this one.
    http_env = {**env, "HOOKSTREAM_NAMESPACE": f"{stamp}-http"}
    kafka_http = await receivers.measure_server(
        "kafka", http_env, free_port(), http_seconds, CONNECTIONS, profiler
    )
    plain_http = await receivers.measure_server(
        "null", http_env, free_port(), http_seconds, CONNECTIONS, profiler
    )
    eps = await processor.measure(
        env, records, duplicates_share=0.1, profiler=profiler, peers=peers, two_workers=not quick
    )
    latency = await e2e.measure(
        {**env, "HOOKSTREAM_NAMESPACE": f"{stamp}-e2e"},
        free_port(),
        free_port(),
        E2E_RATE,
        e2e_seconds,
        warmup_seconds,
        profiler,
    )
    figures: dict[str, object] = {
        "receiver_rps": round(kafka_http.rps),
        "receiver_p99_ms": round(kafka_http.p99_ms, 2),
        "receiver_non_2xx": kafka_http.non_2xx,
        "receiver_cpu_us_per_request": round(kafka_http.cpu_us_per_request, 1),
        "baseline_http_rps": round(plain_http.rps),
        "baseline_http_p99_ms": round(plain_http.p99_ms, 2),
        "baseline_http_cpu_us_per_request": round(plain_http.cpu_us_per_request, 1),
        **{name: _rounded(value) for name, value in eps.items()},
        **{name: round(value, 3 if "share" in name else 2) for name, value in latency.items()},
    }
    return {
        **figures,
        "ratios": ratios(figures),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "quick": quick,
            "peers": peers,
            "http_connections": CONNECTIONS,
            "http_seconds": http_seconds,
            "processor_records": records,
            "processor_duplicates_share": 0.1,
            "e2e_rate_per_s": E2E_RATE,
            "e2e_seconds": e2e_seconds,
            "e2e_warmup_seconds": warmup_seconds,
            "kafka": KAFKA_VERSION,
            "payloads": "the senders' example payloads, about 1 KB",
            "cpu": "user+system seconds of the whole process, all threads, over the measured span",
        },
    }


def _rounded(value: float | str) -> float | str:
    return value if isinstance(value, str) else round(value, 1) if value < 1000 else round(value)


RATIOS = {  # name: (numerator, denominator)
    "receiver_vs_http": ("receiver_rps", "baseline_http_rps"),
    "processor_vs_kafka": ("processor_eps", "baseline_kafka_eps"),
    "cpu_vs_kstreams": ("processor_cpu_us_per_record", "kstreams_cpu_us_per_record"),
    "eos_cpu_vs_kstreams_eos": ("processor_eos_cpu_us_per_record", "kstreams_eos_cpu_us_per_record"),
    "steady_cpu_vs_kstreams": ("processor_steady_cpu_us_per_record", "kstreams_steady_cpu_us_per_record"),
    "steady_eos_cpu_vs_kstreams_eos": (
        "processor_eos_steady_cpu_us_per_record",
        "kstreams_eos_steady_cpu_us_per_record",
    ),
    "processor_vs_kstreams": ("processor_eps", "kstreams_eps"),
    "eos_vs_kstreams_eos": ("processor_eos_eps", "kstreams_eos_eps"),
    "two_workers_vs_kstreams": ("processor_two_workers_eps", "kstreams_eps"),
}


def ratios(figures: dict[str, object]) -> dict[str, float]:
    """Every ratio whose two figures this run measured."""
    return {
        name: round(top / bottom, 3)
        for name, (a, b) in RATIOS.items()
        if isinstance(top := figures.get(a), int | float)
        and isinstance(bottom := figures.get(b), int | float)
    }


NOTES = {
    "receiver_rps": "{receiver_vs_http:.2f} x baseline_http_rps",
    "receiver_p99_ms": "baseline p99 {baseline_http_p99_ms} ms, 64 clients",
    "receiver_cpu_us_per_request": "baseline {baseline_http_cpu_us_per_request} us",
    "baseline_http_rps": "same app, sink answers at once",
    "processor_eps": "{processor_vs_kafka:.2f} x baseline_kafka_eps, one worker, at_least_once",
    "processor_cpu_us_per_record": "{cpu_vs_kstreams:.2f} x kstreams_cpu_us_per_record",
    "processor_steady_cpu_us_per_record": "{steady_cpu_vs_kstreams:.2f} x the peer's, steady state",
    "processor_eos_eps": "{eos_vs_kstreams_eos:.2f} x kstreams_eos_eps, one worker, exactly_once",
    "processor_eos_cpu_us_per_record": "{eos_cpu_vs_kstreams_eos:.2f} x kstreams_eos_cpu_us_per_record",
    "processor_eos_steady_cpu_us_per_record": "{steady_eos_cpu_vs_kstreams_eos:.2f} x the peer's, steady",
    "processor_two_workers_eps": "{two_workers_vs_kstreams:.2f} x kstreams_eps, two workers together",
    "processor_two_workers_cpu_us_per_record": "two workers, at_least_once",
    "baseline_kafka_eps": "aiokafka consume -> orjson -> produce",
    "baseline_kafka_cpu_us_per_record": "the same loop: one read and one write a record",
    "kstreams_eps": "Kafka Streams 4.1.1, one stream thread, at_least_once",
    "kstreams_cpu_us_per_record": "Kafka Streams, all JVM threads",
    "kstreams_steady_cpu_us_per_record": "Kafka Streams, steady state: the second half of the records",
    "kstreams_eos_eps": "Kafka Streams, exactly_once_v2",
    "kstreams_eos_cpu_us_per_record": "Kafka Streams, exactly_once_v2",
    "kstreams_eos_steady_cpu_us_per_record": "Kafka Streams, exactly_once_v2, steady state",
    "kstreams_error": "the peer did not run",
    "e2e_p50_ms": f"at {E2E_RATE} events/s",
    "e2e_p99_ms": f"at {E2E_RATE} events/s",
    **{
        f"e2e_hop_{hop}_{share}_ms": f"{share} of the hop {hop} (bench/e2e.py HOPS)"
        for hop in e2e.HOPS
        for share in ("p50", "p99")
    },
    "e2e_cpu_share_receivers": f"of one core at {E2E_RATE} events/s",
    "e2e_cpu_share_worker": f"of one core at {E2E_RATE} events/s",
    "e2e_cpu_share_load": "the load generator and latency collector",
    "e2e_cpu_share_broker": "the local broker (shared with anything else using it)",
}


def print_table(results: dict[str, object]) -> None:
    ratios = results["ratios"]
    assert isinstance(ratios, dict)
    print(f"\n{'figure':<40} {'value':>10}  note")
    for name, note in NOTES.items():
        if name in results:
            try:
                text = note.format(**ratios, **results)
            except KeyError:  # a ratio whose other figure this run did not measure
                text = ""
            print(f"{name:<40} {results[name]!s:>10}  {text}")
    secure = results.get("secure")
    if isinstance(secure, dict):  # the receivers' and processor's figures again over another Kafka
        protocol = secure["security_protocol"]
        for name in ("receiver_rps", "receiver_p99_ms", "processor_eps", "baseline_kafka_eps"):
            print(f"{'  ' + name:<40} {secure[name]!s:>10}  over {protocol}, same run")


if __name__ == "__main__":
    main()
