"""`make bench`: every figure of SPEC §6 beside its baseline, measured in one run on this machine.

    python -m bench [--quick] [--out bench/results/latest.json] [--profile DIR]

Prints a table and writes the JSON. `--quick` runs everything briefly: CI uses it to check that the
benchmark still works, never to judge speed (these machines are shared and noisy: compare ratios).
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
from hookstream import clients
from hookstream.localkafka import KAFKA_VERSION
from hookstream.settings import Settings

CONNECTIONS = 64
E2E_RATE = 1000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="short runs: checks the benchmark works")
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
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
    results = asyncio.run(measured(quick=args.quick, profiler=Profiler(args.profile), secure=secure))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nwritten to {args.out}")


def env_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


async def measured(*, quick: bool, profiler: Profiler, secure: dict[str, str] | None) -> dict[str, object]:
    """Every figure, and with `secure` the receivers' and processor's again over those Kafka settings;
    the topics the run created are deleted afterwards, so that repeated runs do not pile partitions up
    on a developer's broker (and slow it down)."""
    kafkas = [dict(os.environ), *([{**os.environ, **secure}] if secure else [])]
    try:
        bootstrap = kafkas[0].get("HOOKSTREAM_KAFKA_BOOTSTRAP", "localhost:9092")
        results = await run(bootstrap, quick=quick, profiler=profiler)
        if secure:
            results["secure"] = await secure_run(kafkas[1], quick=quick, profiler=profiler)
        return results
    finally:
        for kafka in kafkas:
            await delete_bench_topics(Settings.from_env(kafka))


async def secure_run(kafka: dict[str, str], *, quick: bool, profiler: Profiler) -> dict[str, object]:
    """receiver_rps, receiver_p99_ms and processor_eps over another Kafka connection (SASL_SSL, say), to
    set beside the PLAINTEXT figures of the same run: what encryption and logins cost."""
    http_seconds, records = (2, 2000) if quick else (10, 30_000)
    stamp = f"bench-{os.getpid()}-{int(time.time())}"
    env = {**kafka, "HOOKSTREAM_LOG_LEVEL": "WARNING", "HOOKSTREAM_NAMESPACE": f"{stamp}-secure-http"}
    http = await receivers.measure_server("kafka", env, 18183, http_seconds, CONNECTIONS, profiler)
    eps = await processor.measure(kafka, records, 0.1, "at_least_once", profiler)
    return {
        "security_protocol": Settings.from_env(kafka).kafka_security.protocol,
        "receiver_rps": round(http.rps),
        "receiver_p99_ms": round(http.p99_ms, 2),
        "receiver_non_2xx": http.non_2xx,
        "processor_eps": round(eps["processor_eps"]),
        "baseline_kafka_eps": round(eps["baseline_kafka_eps"]),
    }


async def delete_bench_topics(settings: Settings) -> None:
    admin = clients.admin(settings)
    await admin.start()
    try:
        ours = [topic for topic in await admin.list_topics() if topic.startswith(f"bench-{os.getpid()}-")]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


async def run(bootstrap: str, *, quick: bool, profiler: Profiler) -> dict[str, object]:
    stamp = f"bench-{os.getpid()}-{int(time.time())}"
    env = {**os.environ, "HOOKSTREAM_KAFKA_BOOTSTRAP": bootstrap, "HOOKSTREAM_LOG_LEVEL": "WARNING"}
    http_seconds, records, e2e_seconds, warmup_seconds = (2, 2000, 2, 1) if quick else (10, 30_000, 10, 3)

    kafka_http = await receivers.measure_server(
        "kafka", {**env, "HOOKSTREAM_NAMESPACE": f"{stamp}-http"}, 18180, http_seconds, CONNECTIONS, profiler
    )
    plain_http = await receivers.measure_server(
        "null", {**env, "HOOKSTREAM_NAMESPACE": f"{stamp}-http"}, 18181, http_seconds, CONNECTIONS, profiler
    )
    eps = await processor.measure(
        env, records, duplicates_share=0.1, guarantee="at_least_once", profiler=profiler
    )
    latency = await e2e.measure(
        {**env, "HOOKSTREAM_NAMESPACE": f"{stamp}-e2e"},
        18182,
        16067,
        E2E_RATE,
        e2e_seconds,
        warmup_seconds,
        profiler,
    )
    return {
        "receiver_rps": round(kafka_http.rps),
        "receiver_p99_ms": round(kafka_http.p99_ms, 2),
        "receiver_non_2xx": kafka_http.non_2xx,
        "baseline_http_rps": round(plain_http.rps),
        "baseline_http_p99_ms": round(plain_http.p99_ms, 2),
        "processor_eps": round(eps["processor_eps"]),
        "baseline_kafka_eps": round(eps["baseline_kafka_eps"]),
        "e2e_p50_ms": round(latency["e2e_p50_ms"], 2),
        "e2e_p99_ms": round(latency["e2e_p99_ms"], 2),
        "ratios": {
            "receiver_vs_http": round(kafka_http.rps / plain_http.rps, 3),
            "processor_vs_kafka": round(eps["processor_eps"] / eps["baseline_kafka_eps"], 3),
        },
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "quick": quick,
            "http_connections": CONNECTIONS,
            "http_seconds": http_seconds,
            "processor_records": records,
            "processor_duplicates_share": 0.1,
            "processor_guarantee": "at_least_once",
            "e2e_rate_per_s": E2E_RATE,
            "e2e_seconds": e2e_seconds,
            "e2e_warmup_seconds": warmup_seconds,
            "kafka": KAFKA_VERSION,
            "payloads": "the senders' example payloads, about 1 KB",
        },
    }


def print_table(results: dict[str, object]) -> None:
    ratios = results["ratios"]
    assert isinstance(ratios, dict)
    rows = [
        ("receiver_rps", results["receiver_rps"], f"{ratios['receiver_vs_http']:.2f} x baseline_http_rps"),
        ("receiver_p99_ms", results["receiver_p99_ms"], f"baseline p99 {results['baseline_http_p99_ms']} ms"),
        ("baseline_http_rps", results["baseline_http_rps"], "same app, sink answers at once"),
        (
            "processor_eps",
            results["processor_eps"],
            f"{ratios['processor_vs_kafka']:.2f} x baseline_kafka_eps",
        ),
        ("baseline_kafka_eps", results["baseline_kafka_eps"], "aiokafka consume -> orjson -> produce"),
        ("e2e_p50_ms", results["e2e_p50_ms"], f"at {E2E_RATE} events/s"),
        ("e2e_p99_ms", results["e2e_p99_ms"], f"at {E2E_RATE} events/s"),
    ]
    secure = results.get("secure")
    if isinstance(secure, dict):
        protocol = secure["security_protocol"]
        rows += [
            (f"  {protocol} rps", secure["receiver_rps"], f"receiver_rps over {protocol}, same run"),
            (f"  {protocol} p99_ms", secure["receiver_p99_ms"], f"receiver_p99_ms over {protocol}"),
            (f"  {protocol} eps", secure["processor_eps"], f"processor_eps over {protocol}"),
            (f"  {protocol} kafka", secure["baseline_kafka_eps"], f"baseline_kafka_eps over {protocol}"),
        ]
    print(f"\n{'figure':<20} {'value':>10}  note")
    for name, value, note in rows:
        print(f"{name:<20} {value!s:>10}  {note}")


if __name__ == "__main__":
    main()
