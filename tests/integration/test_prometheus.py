"""A real Prometheus scrapes a real receivers process and a real worker, and loads our alerting rules.

Prometheus comes from Debian's `prometheus` package (/usr/bin/prometheus). Without it this test skips,
and fails when CI is set: CI must install the package.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.integration.harness import Stack, eventually
from tests.support import FORUM_TOKEN, USER_CREATED, free_port

ROOT = Path(__file__).resolve().parents[2]
ALERTS_FILE = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD_FILE = ROOT / "deploy" / "grafana" / "hookstream.json"

RECEIVERS = 'job="hookstream-receivers"'
PROCESSOR = 'job="hookstream-processor"'
FORUM = 'source="websitetoolbox"'
# One forum webhook in: every series of both services, each with a sample that counts it.
SERIES_AFTER_ONE_EVENT = (
    f'hookstream_requests_total{{{RECEIVERS}, {FORUM}, code="200"}} >= 1',
    f'hookstream_request_seconds_bucket{{{RECEIVERS}, {FORUM}, le="+Inf"}} >= 1',
    f'hookstream_kafka_produce_seconds_bucket{{{RECEIVERS}, le="+Inf"}} >= 1',
    f"hookstream_raw_records_total{{{PROCESSOR}, {FORUM}}} >= 1",
    f'hookstream_events_published_total{{{PROCESSOR}, type="com.websitetoolbox.user.created"}} >= 1',
    f'hookstream_event_latency_seconds_bucket{{{PROCESSOR}, le="+Inf"}} >= 1',
)
# The same event again, a wrong token, and bytes that are not JSON.
SERIES_AFTER_TROUBLE = (
    f"hookstream_duplicates_total{{{PROCESSOR}, {FORUM}}} >= 1",
    f'hookstream_rejections_total{{{RECEIVERS}, {FORUM}, reason="bad_token"}} >= 1',
    f'hookstream_requests_total{{{RECEIVERS}, {FORUM}, code="401"}} >= 1',
    f'hookstream_dead_letters_total{{{PROCESSOR}, {FORUM}, reason="invalid_json"}} >= 1',
)

DASHBOARD_PANELS_WITH_DATA = (
    "Requests/s by source and code",
    "Raw records/s by source",
    "Events published/s by type",
    "Dead letters/s by reason",
)


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None and Path("/usr/bin/prometheus").is_file():
        path = "/usr/bin/prometheus"
    if path is None:
        message = (
            "prometheus is not installed: install Debian's `prometheus` package "
            "(apt-get install -y prometheus), which provides /usr/bin/prometheus"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextlib.contextmanager
def running_prometheus(binary: str, workdir: Path, targets: dict[str, str]) -> Iterator[str]:
    """Prometheus scraping `targets` (job name -> host:port) every second, with deploy/'s alerting
    rules; yields its base URL and stops it afterwards."""
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS_FILE)],
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics", "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ],
    }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log = workdir / "prometheus.log"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    except BaseException:
        print(f"----- prometheus ({log}) -----\n{log.read_text(errors='replace')[-5000:]}")
        raise
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def api(session: aiohttp.ClientSession, base: str, path: str, **params: str) -> Any:
    async with session.get(f"{base}/api/v1/{path}", params=params) as response:
        body = await response.json()
    assert body["status"] == "success", body
    return body["data"]


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> int:
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
        return response.status


@pytest.mark.timeout(240)
async def test_prometheus_scrapes_every_series_and_evaluates_the_alerts(stack: Stack, tmp_path: Path) -> None:
    binary = prometheus_binary()
    stack.env["HOOKSTREAM_WEBSITETOOLBOX_TOKEN"] = FORUM_TOKEN
    receivers = await stack.receivers()
    worker = await stack.worker()
    targets = {
        "hookstream-receivers": f"127.0.0.1:{receivers.port}",
        "hookstream-processor": f"127.0.0.1:{worker.port}",
    }
    forum = f"{receivers.url}/webhooks/websitetoolbox/{FORUM_TOKEN}"

    with running_prometheus(binary, tmp_path, targets) as base:
        async with aiohttp.ClientSession() as session:

            async def has(query: str) -> bool:
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    return bool((await api(session, base, "query", query=query))["result"])
                return False

            await eventually(lambda: has('count(up{job=~"hookstream-.*"} == 1) == 2'), what="both targets up")

            assert await post(session, forum, USER_CREATED) == 200
            for query in SERIES_AFTER_ONE_EVENT:
                await eventually(functools.partial(has, query), what=f"Prometheus to have {query}")

            assert await post(session, forum, USER_CREATED) == 200
            wrong = f"{receivers.url}/webhooks/websitetoolbox/not-the-token-0123456789"
            assert await post(session, wrong, USER_CREATED) == 401
            assert await post(session, forum, b'{"id": 1, "type": "user.cre') == 200
            for query in SERIES_AFTER_TROUBLE:
                await eventually(functools.partial(has, query), what=f"Prometheus to have {query}")

            # deploy/prometheus/alerts.yml loads into a real Prometheus and every rule evaluates cleanly.
            async def rules_evaluated() -> list[dict[str, Any]] | None:
                groups = (await api(session, base, "rules", type="alert"))["groups"]
                rules = [rule for group in groups for rule in group["rules"]]
                return rules if rules and all(rule["health"] == "ok" for rule in rules) else None

            rules = await eventually(rules_evaluated, what="every alerting rule evaluated")
            assert {rule["name"] for rule in rules} >= {
                "HookstreamDeadLettersGrowing",
                "HookstreamPollerTokenFailure",
                "HookstreamReceiversNotReady",
            }

            # The first dead letter of its kind is reported (pending, then firing after `for`).
            async def dead_letter_alert() -> bool:
                alerts = (await api(session, base, "alerts"))["alerts"]
                return any(
                    alert["labels"]["alertname"] == "HookstreamDeadLettersGrowing"
                    and alert["labels"].get("reason") == "invalid_json"
                    and alert["labels"].get("source") == "websitetoolbox"
                    for alert in alerts
                )

            await eventually(dead_letter_alert, what="HookstreamDeadLettersGrowing for the invalid JSON")

            # Every query of the Grafana dashboard is valid PromQL for this Prometheus, and the panels of
            # what just happened show data.
            dashboard = json.loads(DASHBOARD_FILE.read_text())
            panels = [p for row in dashboard["panels"] for p in (row, *row.get("panels", []))]
            for panel in panels:
                for target in panel.get("targets", []):
                    query = target["expr"].replace("$__rate_interval", "1m")
                    await api(session, base, "query", query=query)
                    if panel["title"] in DASHBOARD_PANELS_WITH_DATA:
                        # rate() needs a second sample of a series born a moment ago.
                        await eventually(functools.partial(has, query), what=f"data for {query}")

            # Both services are up: the receivers' down alert stays quiet.
            alerts = (await api(session, base, "alerts"))["alerts"]
            assert not [
                alert
                for alert in alerts
                if alert["labels"]["alertname"] == "HookstreamReceiversNotReady"
                and alert["labels"].get("cause") == "target_down"
            ]
