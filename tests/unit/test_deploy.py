"""The container deployment: Dockerfile, docker-compose.yml and the Prometheus scrape config.

There is no Docker engine where the suite runs, so these files are checked statically: they parse, the
services the README promises exist, the processor can be scaled, and every HOOKSTREAM_* variable the
compose file sets is a real setting (a typo there would silently fall back to a default).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS_FILE = ROOT / "deploy" / "prometheus" / "prometheus.yml"

# SPEC §3, plus the two settings the code adds on top (topic namespace, log level).
SETTINGS = frozenset(
    {
        "HOOKSTREAM_KAFKA_BOOTSTRAP",
        "HOOKSTREAM_X_CONSUMER_SECRETS",
        "HOOKSTREAM_HOOTSUITE_SECRETS",
        "HOOKSTREAM_HOOTSUITE_SSO_TOLERANCE",
        "HOOKSTREAM_HOOTSUITE_EVENTS_TOKEN",
        "HOOKSTREAM_WEBSITETOOLBOX_TOKEN",
        "HOOKSTREAM_STANDARD_SECRETS",
        "HOOKSTREAM_MAX_BODY_BYTES",
        "HOOKSTREAM_ACK_TIMEOUT_MS",
        "HOOKSTREAM_HTTP_HOST",
        "HOOKSTREAM_HTTP_PORT",
        "HOOKSTREAM_DEDUP_WINDOW",
        "HOOKSTREAM_PROCESSING_GUARANTEE",
        "HOOKSTREAM_STORE",
        "HOOKSTREAM_WORKER_PORT",
        "HOOKSTREAM_TOPIC_PARTITIONS",
        "HOOKSTREAM_REPLICATION_FACTOR",
        "HOOKSTREAM_ROUTES",
        "HOOKSTREAM_HOOTSUITE_API_URL",
        "HOOKSTREAM_HOOTSUITE_CLIENT_ID",
        "HOOKSTREAM_HOOTSUITE_CLIENT_SECRET",
        "HOOKSTREAM_HOOTSUITE_REFRESH_TOKEN",
        "HOOKSTREAM_HOOTSUITE_POLL_INTERVAL",
        "HOOKSTREAM_NAMESPACE",
        "HOOKSTREAM_LOG_LEVEL",
    }
)
SOURCE_SECRETS = (
    "HOOKSTREAM_WEBSITETOOLBOX_TOKEN",
    "HOOKSTREAM_X_CONSUMER_SECRETS",
    "HOOKSTREAM_HOOTSUITE_SECRETS",
    "HOOKSTREAM_HOOTSUITE_EVENTS_TOKEN",
    "HOOKSTREAM_STANDARD_SECRETS",
)
APP_SERVICES = ("topics", "receivers", "processor")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


@pytest.fixture(scope="module")
def prometheus_config() -> dict[str, Any]:
    data = yaml.safe_load(PROMETHEUS_FILE.read_text())
    assert isinstance(data, dict)
    return data


def _env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whichever of compose's two spellings it uses."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {name: "" if value is None else str(value) for name, value in raw.items()}


def _command(service: dict[str, Any]) -> list[str]:
    raw = service.get("command", [])
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def _published_ports(service: dict[str, Any]) -> set[int]:
    """Container ports published on the host, from short ("8080:8080") or long syntax."""
    ports: set[int] = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(str(entry).rsplit(":", 1)[-1].split("/")[0]))
    return ports


def _job(config: dict[str, Any], name: str) -> dict[str, Any]:
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert name in jobs, f"no scrape job {name!r} in {PROMETHEUS_FILE.name}"
    job = jobs[name]
    assert isinstance(job, dict)
    return job


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            instruction, _, arguments = stripped.partition(" ")
            pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def test_compose_has_every_service(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka", "topics", "receivers", "processor", "prometheus"} <= services.keys()


def test_kafka_is_the_official_image_in_kraft_combined_mode(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    assert str(kafka["image"]).startswith("apache/kafka:4.")
    env = _env(kafka)
    roles = {role.strip() for role in env["KAFKA_PROCESS_ROLES"].split(",")}
    assert {"broker", "controller"} <= roles
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "kafka-broker-api-versions.sh" in json.dumps(kafka["healthcheck"]["test"])


def test_receivers_publish_8080_and_run_receivers(services: dict[str, dict[str, Any]]) -> None:
    receivers = services["receivers"]
    assert _command(receivers) == ["receivers"]
    assert 8080 in _published_ports(receivers)
    assert "/readyz" in json.dumps(receivers["healthcheck"]["test"])


def test_receivers_pass_the_source_secrets_through(services: dict[str, dict[str, Any]]) -> None:
    env = _env(services["receivers"])
    for name in SOURCE_SECRETS:
        assert env.get(name) == f"${{{name}:-}}", name


def test_processor_runs_worker_and_can_scale(services: dict[str, dict[str, Any]]) -> None:
    processor = services["processor"]
    assert _command(processor) == ["worker"]
    assert "container_name" not in processor, "a fixed container name stops --scale processor=N"
    assert "ports" not in processor, "a published host port stops --scale processor=N"
    assert _env(processor)["HOOKSTREAM_WORKER_PORT"] == "6066"
    assert "6066" in [str(port) for port in processor.get("expose", [])]


def test_topics_runs_once_before_the_services(services: dict[str, dict[str, Any]]) -> None:
    topics = services["topics"]
    assert _command(topics) == ["topics"]
    assert str(topics["restart"]) == "no"
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("receivers", "processor"):
        assert services[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_build_the_repo_image_and_use_the_compose_kafka(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    build = service["build"]
    if isinstance(build, str):
        build = {"context": build}
    dockerfile = (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).resolve()
    assert dockerfile == DOCKERFILE
    assert _env(service)["HOOKSTREAM_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_every_hookstream_variable_in_compose_is_a_setting() -> None:
    used = set(re.findall(r"HOOKSTREAM_[A-Z0-9_]+", COMPOSE_FILE.read_text()))
    assert used, "compose sets no HOOKSTREAM_* variable at all"
    assert used <= SETTINGS, f"not settings of SPEC §3: {sorted(used - SETTINGS)}"


def test_prometheus_mounts_the_repo_config(services: dict[str, dict[str, Any]]) -> None:
    mounts = []
    for volume in services["prometheus"].get("volumes", []):
        if isinstance(volume, dict):
            mounts.append((volume["source"], volume["target"], bool(volume.get("read_only"))))
        else:
            source, target, *options = str(volume).split(":")
            mounts.append((source, target, "ro" in options))
    config_mounts = [m for m in mounts if m[1] == "/etc/prometheus/prometheus.yml"]
    assert len(config_mounts) == 1
    source, _, read_only = config_mounts[0]
    assert (ROOT / source).resolve() == PROMETHEUS_FILE
    assert read_only


def test_prometheus_scrapes_the_receivers(prometheus_config: dict[str, Any]) -> None:
    job = _job(prometheus_config, "hookstream-receivers")
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [target for group in job["static_configs"] for target in group["targets"]]
    assert targets == ["receivers:8080"]


def test_prometheus_finds_every_processor_replica_by_dns(prometheus_config: dict[str, Any]) -> None:
    job = _job(prometheus_config, "hookstream-processor")
    assert job.get("metrics_path", "/metrics") == "/metrics"
    [dns] = job["dns_sd_configs"]
    assert dns["names"] == ["processor"]
    assert dns["type"] == "A"
    assert dns["port"] == 6066


def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed; the config is still checked structurally by the tests above")
    # Fixed arguments and a binary found on PATH: nothing untrusted reaches the command line.
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_FILE)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_installs_the_package_and_runs_hookstream() -> None:
    instructions = _dockerfile_instructions()
    entrypoints = [arguments for instruction, arguments in instructions if instruction == "ENTRYPOINT"]
    assert entrypoints, "no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == ["hookstream"]
    runs = " && ".join(arguments for instruction, arguments in instructions if instruction == "RUN")
    assert re.search(r"pip install (--?[\w-]+ )*\.(\s|$)", runs), "the package itself is not pip-installed"
    assert "[dev]" not in runs
    copied = " ".join(arguments for instruction, arguments in instructions if instruction == "COPY")
    for needed in ("pyproject.toml", "README.md", "hookstream/", "receivers/", "processor/"):
        assert needed in copied, needed
    users = [arguments for instruction, arguments in instructions if instruction == "USER"]
    assert users, "the image runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")
