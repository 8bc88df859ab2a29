"""The deployment: Dockerfile, docker-compose.yml, the Prometheus config and alerts, the Grafana dashboard
and the Kubernetes manifests.

There is no Docker engine or cluster where the suite runs, so these files are checked statically: they
parse, the services the README promises exist, the processor can be scaled, and every HOOKSTREAM_*
variable they set is a real setting (a typo there would silently fall back to a default). The Kubernetes
manifests are rendered with `kubectl kustomize` (or `kustomize build`; without either, a small renderer
below does what these manifests need). The Prometheus files are checked by promtool, from Debian's
`prometheus` package: where it is missing these tests skip, and fail when CI is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hookstream.errors import SettingsError
from hookstream.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_FILE = PROMETHEUS_DIR / "prometheus.yml"
ALERTS_FILE = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST_FILE = PROMETHEUS_DIR / "alerts_test.yml"
KUSTOMIZE_DIR = ROOT / "deploy" / "kubernetes"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD_FILE = GRAFANA_DIR / "hookstream.json"

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
APP_SERVICES = ("topics", "receivers", "processor", "poller")

# SPEC §7: the Kafka security settings, and the secrets that may come from a file (`<NAME>_FILE`).
KAFKA_SECURITY = frozenset(
    {
        "HOOKSTREAM_KAFKA_SECURITY_PROTOCOL",
        "HOOKSTREAM_KAFKA_SASL_MECHANISM",
        "HOOKSTREAM_KAFKA_SASL_USERNAME",
        "HOOKSTREAM_KAFKA_SASL_PASSWORD",
        "HOOKSTREAM_KAFKA_SSL_CAFILE",
        "HOOKSTREAM_KAFKA_SSL_CERTFILE",
        "HOOKSTREAM_KAFKA_SSL_KEYFILE",
        "HOOKSTREAM_KAFKA_SSL_CHECK_HOSTNAME",
    }
)
# What compose and the Kubernetes manifests may set: SPEC §3 and §7, and the settings the README adds.
OPERATOR_SETTINGS = (
    SETTINGS
    | KAFKA_SECURITY
    | {
        "HOOKSTREAM_POLLER_PORT",
        "HOOKSTREAM_HOOTSUITE_SSO_SHA1",
        "HOOKSTREAM_CACHE_DIR",
        "HOOKSTREAM_READ_TIMEOUT_MS",
        "HOOKSTREAM_MAX_IN_FLIGHT",
    }
)
OPERATOR_SETTINGS |= {f"{name}_FILE" for name in OPERATOR_SETTINGS}
# The values the ConfigMap must carry (production: three replicas, exactly-once, RocksDB on the volume).
K8S_CONFIG = {
    "HOOKSTREAM_TOPIC_PARTITIONS": "6",
    "HOOKSTREAM_REPLICATION_FACTOR": "3",
    "HOOKSTREAM_PROCESSING_GUARANTEE": "exactly_once",
    "HOOKSTREAM_DEDUP_WINDOW": "7d",
    "HOOKSTREAM_STORE": "rocksdb:///var/lib/hookstream/state",
    "HOOKSTREAM_HTTP_PORT": "8080",
    "HOOKSTREAM_WORKER_PORT": "6066",
    "HOOKSTREAM_POLLER_PORT": "6067",
    "HOOKSTREAM_LOG_LEVEL": "INFO",
}
K8S_SECRETS = (
    *SOURCE_SECRETS,
    "HOOKSTREAM_HOOTSUITE_CLIENT_ID",
    "HOOKSTREAM_HOOTSUITE_CLIENT_SECRET",
    "HOOKSTREAM_HOOTSUITE_REFRESH_TOKEN",
)
STATE_MOUNT = "/var/lib/hookstream/state"

# Every hookstream_* series the alerts and the dashboard may use: SPEC §5, the README's
# hookstream_pings_total, and the Hootsuite poller's.
METRICS = frozenset(
    {
        "hookstream_requests_total",
        "hookstream_rejections_total",
        "hookstream_raw_records_total",
        "hookstream_events_published_total",
        "hookstream_duplicates_total",
        "hookstream_dead_letters_total",
        "hookstream_pings_total",
        "hookstream_poller_polls_total",
        "hookstream_poller_api_errors_total",
        "hookstream_poller_state_changes_total",
        "hookstream_poller_token_refreshes_total",
        "hookstream_poller_token_failures_total",
        "hookstream_poller_token_valid",
    }
)
HISTOGRAMS = frozenset(
    {"hookstream_request_seconds", "hookstream_kafka_produce_seconds", "hookstream_event_latency_seconds"}
)
ALLOWED_SERIES = (
    METRICS
    | HISTOGRAMS
    | {f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)
ALERTS = (
    "HookstreamRejectionsSpike",
    "HookstreamDeadLettersGrowing",
    "HookstreamConsumerLagHigh",
    "HookstreamEventLatencyHigh",
    "HookstreamRequestLatencyHigh",
    "HookstreamReceiversNotReady",
    "HookstreamPollerTokenFailure",
)


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
    assert {
        "kafka",
        "topics",
        "receivers",
        "processor",
        "poller",
        "kafka-exporter",
        "prometheus",
    } <= services.keys()


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
    for name in ("receivers", "processor", "poller"):
        assert services[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_the_poller_runs_once_and_only_on_request(services: dict[str, dict[str, Any]]) -> None:
    poller = services["poller"]
    assert _command(poller) == ["poller"]
    assert poller["profiles"] == ["hootsuite"], "without its OAuth2 client the poller cannot start"
    assert not {"deploy", "scale"} & poller.keys(), "refresh tokens are single-use: one poller"
    env = _env(poller)
    assert env["HOOKSTREAM_POLLER_PORT"] == "6067"
    for name in ("CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN"):
        assert env[f"HOOKSTREAM_HOOTSUITE_{name}"] == f"${{HOOKSTREAM_HOOTSUITE_{name}:-}}"


def test_compose_exports_consumer_lag_for_the_lag_alert(
    services: dict[str, dict[str, Any]], prometheus_config: dict[str, Any]
) -> None:
    exporter = services["kafka-exporter"]
    assert str(exporter["image"]).startswith("danielqsj/kafka-exporter:")
    assert "--kafka.server=kafka:9092" in _command(exporter)
    targets = [
        t for group in _job(prometheus_config, "kafka-exporter")["static_configs"] for t in group["targets"]
    ]
    assert targets == ["kafka-exporter:9308"]


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
    assert used <= OPERATOR_SETTINGS, f"not settings: {sorted(used - OPERATOR_SETTINGS)}"


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


# ---------------------------------------------------------------------------------------------------------
# Prometheus: rule files, the poller job, promtool.


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """A compose service's bind mounts and volumes: target -> (source, read-only)."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts[volume["target"]] = (volume["source"], bool(volume.get("read_only")))
        else:
            source, target, *options = str(volume).split(":")
            mounts[target] = (source, "ro" in options)
    return mounts


def _promtool_tool(name: str) -> str:
    """The path of `name` (promtool, prometheus); skip without it, but fail in CI."""
    path = shutil.which(name)
    if path is None and Path(f"/usr/bin/{name}").is_file():
        path = f"/usr/bin/{name}"
    if path is None:
        message = (
            f"{name} is not installed: install Debian's `prometheus` package "
            f"(apt-get install -y prometheus), which provides /usr/bin/{name}"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # Fixed arguments and a binary found on PATH: nothing untrusted reaches the command line.
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd, timeout=120)


def test_prometheus_loads_the_alerts_next_to_its_config(
    prometheus_config: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """rule_files are relative to prometheus.yml, and compose mounts each of them beside it."""
    rule_files = prometheus_config["rule_files"]
    assert rule_files == ["alerts.yml"]
    mounts = _mounts(services["prometheus"])
    config_dir = Path("/etc/prometheus")
    assert (ROOT / mounts[str(config_dir / "prometheus.yml")][0]).resolve() == PROMETHEUS_FILE
    for rule_file in rule_files:
        assert not Path(rule_file).is_absolute()
        assert (PROMETHEUS_DIR / rule_file).is_file()
        source, read_only = mounts[str(config_dir / rule_file)]
        assert (ROOT / source).resolve() == (PROMETHEUS_DIR / rule_file).resolve()
        assert read_only


def test_prometheus_scrapes_the_poller(prometheus_config: dict[str, Any]) -> None:
    job = _job(prometheus_config, "hookstream-poller")
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [target for group in job["static_configs"] for target in group["targets"]]
    assert targets == ["poller:6067"]


@pytest.mark.parametrize("layout", ["repository", "compose", "kubernetes"])
def test_promtool_accepts_the_prometheus_config_as_each_deployment_lays_it_out(
    layout: str, tmp_path: Path, services: dict[str, dict[str, Any]], manifests: list[dict[str, Any]]
) -> None:
    promtool = _promtool_tool("promtool")
    if layout == "repository":
        config = PROMETHEUS_FILE
    elif layout == "compose":
        # Every file compose mounts under /etc/prometheus, at the same place under tmp_path.
        for target, (source, _) in _mounts(services["prometheus"]).items():
            if target.startswith("/etc/prometheus/"):
                placed = tmp_path / target.lstrip("/")
                placed.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ROOT / source, placed)
        config = tmp_path / "etc" / "prometheus" / "prometheus.yml"
    else:
        # The ConfigMap mounted as a directory: one file per key.
        configmap = _resource(manifests, "ConfigMap", "hookstream-prometheus")
        mounted = tmp_path / "etc" / "prometheus"
        mounted.mkdir(parents=True)
        for key, value in configmap["data"].items():
            (mounted / key).write_text(value)
        config = mounted / "prometheus.yml"
    # cwd is elsewhere on purpose: the rule file must be found relative to the config, not the cwd.
    result = _run([promtool, "check", "config", str(config)], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr


def test_promtool_accepts_the_alerting_rules() -> None:
    promtool = _promtool_tool("promtool")
    result = _run([promtool, "check", "rules", str(ALERTS_FILE)], cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alerting_rules_pass_their_promtool_unit_tests() -> None:
    promtool = _promtool_tool("promtool")
    result = _run([promtool, "test", "rules", str(ALERTS_TEST_FILE)], cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS_FILE.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_alert_has_a_duration_severity_and_explanation(alert_rules: list[dict[str, Any]]) -> None:
    assert {rule["alert"] for rule in alert_rules} == set(ALERTS)
    for rule in alert_rules:
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]


def _exprs(alert_rules: list[dict[str, Any]], name: str) -> str:
    return "\n".join(rule["expr"] for rule in alert_rules if rule["alert"] == name)


@pytest.mark.parametrize(
    ("alert", "needles"),
    [
        (
            "HookstreamRejectionsSpike",
            ["hookstream_rejections_total", "by (reason)", "hookstream_requests_total"],
        ),
        ("HookstreamDeadLettersGrowing", ["increase(hookstream_dead_letters_total[15m])", "> 0"]),
        ("HookstreamConsumerLagHigh", ["kafka_consumergroup_lag", "by (consumergroup)", "hookstream-dedup"]),
        (
            "HookstreamEventLatencyHigh",
            ["histogram_quantile(0.99", "hookstream_event_latency_seconds_bucket"],
        ),
        ("HookstreamRequestLatencyHigh", ["histogram_quantile(0.99", "hookstream_request_seconds_bucket"]),
        (
            "HookstreamReceiversNotReady",
            ['up{job="hookstream-receivers"} == 0', "absent(", 'hookstream_requests_total{code="503"}'],
        ),
        (
            "HookstreamPollerTokenFailure",
            ["hookstream_poller_token_valid", "== 0", "increase(hookstream_poller_token_failures_total"],
        ),
    ],
)
def test_each_alert_watches_what_it_is_named_for(
    alert_rules: list[dict[str, Any]], alert: str, needles: list[str]
) -> None:
    expr = _exprs(alert_rules, alert)
    for needle in needles:
        assert needle in expr, f"{alert}: {needle!r} not in {expr}"


def test_the_lag_alert_says_where_lag_comes_from() -> None:
    """hookstream exports no lag itself: the rule file must say that kafka-exporter provides it."""
    text = ALERTS_FILE.read_text()
    assert "kafka-exporter" in text
    assert "does not export lag" in text


def test_the_dead_letter_and_poller_alerts_have_unit_tests() -> None:
    document = yaml.safe_load(ALERTS_TEST_FILE.read_text())
    assert document["rule_files"] == ["alerts.yml"]
    tested = {case["alertname"] for test in document["tests"] for case in test.get("alert_rule_test", [])}
    assert {"HookstreamDeadLettersGrowing", "HookstreamPollerTokenFailure"} <= tested
    firing = {
        case["alertname"]
        for test in document["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {"HookstreamDeadLettersGrowing", "HookstreamPollerTokenFailure"} <= firing


def _series_names(text: str) -> set[str]:
    return set(re.findall(r"\bhookstream_[a-z0-9_]+", text))


def test_alerts_use_only_metrics_hookstream_exports(alert_rules: list[dict[str, Any]]) -> None:
    used = _series_names(ALERTS_FILE.read_text())
    assert used, "the alerts reference no hookstream metric"
    assert used <= ALLOWED_SERIES, f"not hookstream metrics: {sorted(used - ALLOWED_SERIES)}"
    assert _series_names("\n".join(rule["expr"] for rule in alert_rules)) <= ALLOWED_SERIES


# ---------------------------------------------------------------------------------------------------------
# Grafana: the dashboard and its provisioning for compose.


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD_FILE.read_text())
    assert isinstance(data, dict)
    return data


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in _panels(dashboard) for target in panel.get("targets", [])]


def test_dashboard_identity_and_datasource_variable(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "hookstream"
    assert dashboard["schemaVersion"] == 39
    [variable] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    reference = "${" + variable["name"] + "}"
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == reference, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == reference, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_dashboard_panels_have_unique_ids_and_do_not_overlap(dashboard: dict[str, Any]) -> None:
    panels = list(_panels(dashboard))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine


@pytest.mark.parametrize(
    "needle",
    [
        "sum by (source, code) (rate(hookstream_requests_total",
        "histogram_quantile(0.5, sum by (le, source) (rate(hookstream_request_seconds_bucket",
        "histogram_quantile(0.99, sum by (le, source) (rate(hookstream_request_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(hookstream_kafka_produce_seconds_bucket",
        "sum by (reason) (rate(hookstream_rejections_total",
        "sum by (source) (rate(hookstream_raw_records_total",
        "sum by (type) (rate(hookstream_events_published_total",
        "rate(hookstream_duplicates_total",
        "sum by (source, reason) (rate(hookstream_dead_letters_total",
        "histogram_quantile(0.5, sum by (le) (rate(hookstream_event_latency_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(hookstream_event_latency_seconds_bucket",
        "sum by (consumergroup) (kafka_consumergroup_lag",
        "rate(hookstream_poller_polls_total",
        "rate(hookstream_poller_api_errors_total",
        "hookstream_poller_token_valid",
    ],
)
def test_dashboard_shows(dashboard: dict[str, Any], needle: str) -> None:
    assert any(needle in expr for expr in _dashboard_exprs(dashboard)), needle


def test_dashboard_uses_only_metrics_hookstream_exports(dashboard: dict[str, Any]) -> None:
    used = _series_names(DASHBOARD_FILE.read_text())
    assert used <= ALLOWED_SERIES, f"not hookstream metrics: {sorted(used - ALLOWED_SERIES)}"
    lag = [expr for expr in _dashboard_exprs(dashboard) if "kafka_consumergroup_lag" in expr]
    assert lag
    assert all("hookstream-dedup" in expr for expr in lag)
    lag_panels = [panel for panel in _panels(dashboard) if "kafka_consumergroup_lag" in json.dumps(panel)]
    assert all("kafka-exporter" in panel["description"] for panel in lag_panels)


def test_compose_runs_grafana_with_the_provisioned_dashboard(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    image, _, tag = str(grafana["image"]).partition(":")
    assert image == "grafana/grafana-oss"
    assert re.fullmatch(r"11\.\d+\.\d+", tag), f"pin a Grafana 11.x release, not {tag!r}"
    assert 3000 in _published_ports(grafana)
    mounts = _mounts(grafana)
    for kind in ("datasources", "dashboards"):
        source, read_only = mounts[f"/etc/grafana/provisioning/{kind}"]
        assert (ROOT / source).resolve() == GRAFANA_DIR / "provisioning" / kind
        assert read_only
        assert list((GRAFANA_DIR / "provisioning" / kind).glob("*.yml"))
    [dashboard_target] = [t for t, (src, _) in mounts.items() if (ROOT / src).resolve() == DASHBOARD_FILE]

    datasources = [
        source
        for path in (GRAFANA_DIR / "provisioning" / "datasources").glob("*.yml")
        for source in yaml.safe_load(path.read_text())["datasources"]
    ]
    assert [(d["type"], d["url"]) for d in datasources] == [("prometheus", "http://prometheus:9090")]
    providers = [
        provider
        for path in (GRAFANA_DIR / "provisioning" / "dashboards").glob("*.yml")
        for provider in yaml.safe_load(path.read_text())["providers"]
    ]
    assert [p["type"] for p in providers] == ["file"]
    assert Path(dashboard_target).parent == Path(providers[0]["options"]["path"])


# ---------------------------------------------------------------------------------------------------------
# Kubernetes: deploy/kubernetes rendered by kustomize.

CLUSTER_SCOPED = frozenset({"Namespace"})


def _load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _add_labels(labels: dict[str, str], doc: dict[str, Any]) -> None:
    """What kustomize's commonLabels does to the kinds these manifests use."""
    doc.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    spec = doc.get("spec", {})
    kind = doc["kind"]
    if kind in ("Deployment", "StatefulSet", "Job"):
        spec["template"].setdefault("metadata", {}).setdefault("labels", {}).update(labels)
        for constraint in spec["template"]["spec"].get("topologySpreadConstraints", []):
            constraint.setdefault("labelSelector", {}).setdefault("matchLabels", {}).update(labels)
    if kind in ("Deployment", "StatefulSet", "PodDisruptionBudget"):
        spec.setdefault("selector", {}).setdefault("matchLabels", {}).update(labels)
    if kind == "StatefulSet":
        for claim in spec.get("volumeClaimTemplates", []):
            claim.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    if kind == "Service":
        spec.setdefault("selector", {}).update(labels)


def render_without_kustomize(directory: Path) -> list[dict[str, Any]]:
    """A small stand-in for `kustomize build`, for machines without kubectl or kustomize: resources
    (files and nested kustomizations), configMapGenerator files, namespace, commonLabels and images."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        docs.extend(render_without_kustomize(path) if path.is_dir() else _load_yaml_documents(path))
    for generator in kustomization.get("configMapGenerator", []):
        data = {}
        for item in generator.get("files", []):
            key, _, source = item.rpartition("=")
            data[key or Path(source).name] = (directory / source).read_text()
        for literal in generator.get("literals", []):
            key, _, value = literal.partition("=")
            data[key] = value
        options = generator.get("options", {})
        assert options.get("disableNameSuffixHash"), "this stand-in does not add kustomize's name hashes"
        metadata = {"name": generator["name"], "labels": dict(options.get("labels", {}))}
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
    for doc in docs:
        if kustomization.get("commonLabels"):
            _add_labels(kustomization["commonLabels"], doc)
        if kustomization.get("namespace") and doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = kustomization["namespace"]
        for image in kustomization.get("images", []):
            for container in _containers(doc):
                if container["image"].partition(":")[0] == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return docs


def _recent_kubectl() -> str | None:
    """kubectl, if it is 1.21 or later: older ones embed kustomize v2.0.3, which cannot build a
    kustomization that lists another directory (Debian bookworm's kubernetes-client is 1.20)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    command = [kubectl, "version", "--client", "-o", "json"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    with contextlib.suppress(ValueError, KeyError, TypeError):
        version = json.loads(result.stdout)["clientVersion"]
        if (int(version["major"]), int(version["minor"].rstrip("+"))) >= (1, 21):
            return kubectl
    return None


def render_with_kustomize(directory: Path) -> list[dict[str, Any]] | None:
    """`kubectl kustomize DIR` or `kustomize build DIR`; None when neither is installed."""
    if kubectl := _recent_kubectl():
        command = [kubectl, "kustomize", str(directory)]
    elif kustomize := shutil.which("kustomize"):
        command = [kustomize, "build", str(directory)]
    else:
        return None
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return render_with_kustomize(KUSTOMIZE_DIR) or render_without_kustomize(KUSTOMIZE_DIR)


def _resource(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in manifests if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] not in ("Deployment", "StatefulSet", "Job"):
        return []
    containers = _pod_spec(doc)["containers"]
    assert isinstance(containers, list)
    return containers


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    [container] = _containers(doc)
    return container


def _probe(container: dict[str, Any], kind: str) -> tuple[str, int]:
    """(path, container port number) of an httpGet probe, resolving a named port."""
    http = container[kind]["httpGet"]
    port = http["port"]
    if isinstance(port, str):
        [port] = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return http["path"], int(port)


def _selects(selector: dict[str, str], doc: dict[str, Any]) -> bool:
    labels = doc["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(key) == value for key, value in selector.items())


def _workloads(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in manifests if d["kind"] in ("Deployment", "StatefulSet", "Job")]


WORKLOADS = {
    ("Deployment", "receivers"): (["receivers"], 8080),
    ("StatefulSet", "processor"): (["worker"], 6066),
    ("Deployment", "poller"): (["poller"], 6067),
    ("Job", "topics"): (["topics"], None),
}
# The Kafka user each workload logs in as (SPEC §7 roles), and the sender secrets it reads from files.
KAFKA_USERS = {"receivers": "receivers", "processor": "worker", "poller": "poller", "topics": "admin"}
SENDER_FILES = {
    "receivers": set(SOURCE_SECRETS),
    "processor": set(),
    "poller": {
        "HOOKSTREAM_HOOTSUITE_CLIENT_ID",
        "HOOKSTREAM_HOOTSUITE_CLIENT_SECRET",
        "HOOKSTREAM_HOOTSUITE_REFRESH_TOKEN",
    },
    "topics": set(),
}


def test_kustomize_renders_every_resource_in_the_namespace(manifests: list[dict[str, Any]]) -> None:
    rendered = {(d["kind"], d["metadata"]["name"]) for d in manifests}
    assert rendered == {
        ("Namespace", "hookstream"),
        ("ConfigMap", "hookstream-config"),
        ("ConfigMap", "hookstream-prometheus"),
        ("Secret", "hookstream-secrets"),
        *(("Secret", f"hookstream-kafka-{role}") for role in ("receivers", "worker", "poller", "admin")),
        ("Deployment", "receivers"),
        ("Service", "receivers"),
        ("HorizontalPodAutoscaler", "receivers"),
        ("PodDisruptionBudget", "receivers"),
        ("StatefulSet", "processor"),
        ("Service", "processor"),
        ("PodDisruptionBudget", "processor"),
        ("Deployment", "poller"),
        ("Service", "poller"),
        ("Job", "topics"),
    }
    for doc in manifests:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "hookstream", doc["metadata"]
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"]["namespace"] == "hookstream", doc["metadata"]


def test_the_stand_in_renderer_agrees_with_kustomize() -> None:
    """The fallback renderer is only trusted as far as it matches the real thing, where that exists."""
    real = render_with_kustomize(KUSTOMIZE_DIR)
    if real is None:
        pytest.skip("neither kubectl (1.21 or later) nor kustomize is installed")

    def key(doc: dict[str, Any]) -> tuple[str, str]:
        return doc["kind"], doc["metadata"]["name"]

    assert sorted(render_without_kustomize(KUSTOMIZE_DIR), key=key) == sorted(real, key=key)


@pytest.mark.parametrize(("kind", "name"), list(WORKLOADS))
def test_each_workload_runs_its_command_with_the_settings(
    manifests: list[dict[str, Any]], kind: str, name: str
) -> None:
    doc = _resource(manifests, kind, name)
    container = _container(doc)
    args, port = WORKLOADS[kind, name]
    assert container["args"] == args
    assert "command" not in container, "the image's entrypoint is `hookstream`"
    assert container["image"].partition(":")[0] == "hookstream"
    assert container["envFrom"] == [{"configMapRef": {"name": "hookstream-config"}}], "no secret in env"
    assert {"requests", "limits"} <= container["resources"].keys()
    for resources in container["resources"].values():
        assert {"cpu", "memory"} <= resources.keys()

    pod = _pod_spec(doc)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/home/hookstream/.cache"]]

    if port is None:
        assert pod["restartPolicy"] == "OnFailure"
        return
    assert port in [p["containerPort"] for p in container["ports"]]
    liveness = "/livez" if port == 6066 else "/healthz"  # a worker's /livez also catches a stall
    assert _probe(container, "livenessProbe") == (liveness, port)
    annotations = doc["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_receivers_deployment(manifests: list[dict[str, Any]]) -> None:
    deployment = _resource(manifests, "Deployment", "receivers")
    assert deployment["spec"]["replicas"] == 2
    container = _container(deployment)
    assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
    assert _probe(container, "readinessProbe") == ("/readyz", 8080)
    assert _probe(container, "livenessProbe") == ("/healthz", 8080)
    assert _pod_spec(deployment)["terminationGracePeriodSeconds"] == 30
    service = _resource(manifests, "Service", "receivers")
    assert _selects(service["spec"]["selector"], deployment)
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(8080, "http")]


def test_receivers_scale_on_cpu_and_keep_one_pod_through_disruptions(manifests: list[dict[str, Any]]) -> None:
    hpa = _resource(manifests, "HorizontalPodAutoscaler", "receivers")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "receivers",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}

    pdb = _resource(manifests, "PodDisruptionBudget", "receivers")
    assert pdb["spec"]["minAvailable"] == 1
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert [d["metadata"]["name"] for d in _workloads(manifests) if _selects(selector, d)] == ["receivers"]
    hpas = [d for d in manifests if d["kind"] == "HorizontalPodAutoscaler"]
    assert [h["spec"]["scaleTargetRef"]["name"] for h in hpas] == ["receivers"]


def test_processor_keeps_its_rocksdb_state_on_its_own_volume(manifests: list[dict[str, Any]]) -> None:
    statefulset = _resource(manifests, "StatefulSet", "processor")
    spec = statefulset["spec"]
    assert spec["replicas"] == 3
    assert spec["serviceName"] == "processor"
    container = _container(statefulset)
    assert {"name": "metrics", "containerPort": 6066, "protocol": "TCP"} in container["ports"]

    [claim] = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert {"name": "state", "mountPath": STATE_MOUNT} in container["volumeMounts"]

    configmap = _resource(manifests, "ConfigMap", "hookstream-config")["data"]
    env = {**configmap, **{e["name"]: e["value"] for e in container.get("env", [])}}
    store = env["HOOKSTREAM_STORE"]
    assert store.startswith("rocksdb://")
    assert Path(store.removeprefix("rocksdb://")).is_relative_to(STATE_MOUNT)
    assert Path(env["HOOKSTREAM_CACHE_DIR"]).is_relative_to(STATE_MOUNT)

    service = _resource(manifests, "Service", "processor")
    assert service["spec"]["clusterIP"] == "None"
    assert _selects(service["spec"]["selector"], statefulset)
    assert [p["port"] for p in service["spec"]["ports"]] == [6066]
    pdb = _resource(manifests, "PodDisruptionBudget", "processor")
    assert pdb["spec"]["maxUnavailable"] == 1
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert [d["metadata"]["name"] for d in _workloads(manifests) if _selects(selector, d)] == ["processor"]


def test_poller_never_runs_twice(manifests: list[dict[str, Any]]) -> None:
    deployment = _resource(manifests, "Deployment", "poller")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = _container(deployment)
    assert [p["containerPort"] for p in container["ports"]] == [6067]
    service = _resource(manifests, "Service", "poller")
    assert _selects(service["spec"]["selector"], deployment)


def test_topics_job_runs_once(manifests: list[dict[str, Any]]) -> None:
    job = _resource(manifests, "Job", "topics")
    assert _container(job)["args"] == ["topics"]
    assert _pod_spec(job)["restartPolicy"] == "OnFailure"


def test_prometheus_targets_resolve_to_the_kubernetes_services(
    manifests: list[dict[str, Any]], prometheus_config: dict[str, Any]
) -> None:
    """prometheus.yml names compose services; in the namespace the same names are Services (but for
    kafka-exporter, which runs next to the Kafka cluster, as prometheus.yml says)."""
    services = {d["metadata"]["name"]: d for d in manifests if d["kind"] == "Service"}
    for job in prometheus_config["scrape_configs"]:
        if job["job_name"] == "kafka-exporter":
            continue
        targets = [t for group in job.get("static_configs", []) for t in group["targets"]]
        targets += [f"{name}:{dns['port']}" for dns in job.get("dns_sd_configs", []) for name in dns["names"]]
        for target in targets:
            host, _, port = target.rpartition(":")
            assert host in services, f"{job['job_name']}: no Service {host!r}"
            assert int(port) in [p["port"] for p in services[host]["spec"]["ports"]], target
    assert services["processor"]["spec"]["clusterIP"] == "None", "DNS must list every worker pod"


def test_kubernetes_sets_only_real_settings(manifests: list[dict[str, Any]]) -> None:
    configmap = _resource(manifests, "ConfigMap", "hookstream-config")["data"]
    secret = _resource(manifests, "Secret", "hookstream-secrets")
    secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    env_names = {
        e["name"] for doc in _workloads(manifests) for c in _containers(doc) for e in c.get("env", [])
    }
    for names in (set(configmap), secret_keys, env_names):
        assert names <= OPERATOR_SETTINGS, f"not settings: {sorted(names - OPERATOR_SETTINGS)}"
    assert set(configmap) & secret_keys == set(), "a setting is both in the ConfigMap and the Secret"
    assert secret_keys == set(K8S_SECRETS)
    for name, value in K8S_CONFIG.items():
        assert configmap[name] == value, name
    assert configmap["HOOKSTREAM_KAFKA_BOOTSTRAP"]
    # Everything else in the manifests that looks like a setting is one, too.
    rendered = yaml.safe_dump_all([d for d in manifests if d["metadata"]["name"] != "hookstream-prometheus"])
    used = set(re.findall(r"HOOKSTREAM_[A-Z0-9_]+", rendered))
    assert used <= OPERATOR_SETTINGS, f"not settings: {sorted(used - OPERATOR_SETTINGS)}"


def test_the_configmap_is_a_valid_configuration(manifests: list[dict[str, Any]]) -> None:
    configmap = _resource(manifests, "ConfigMap", "hookstream-config")["data"]
    # Each workload adds its own Kafka user and password file (see the test after next).
    login = {"HOOKSTREAM_KAFKA_SASL_USERNAME": "u", "HOOKSTREAM_KAFKA_SASL_PASSWORD": "p"}
    settings = Settings.from_env({**configmap, **login})
    assert settings.replication_factor == 3
    assert settings.processing_guarantee == "exactly_once"
    assert (settings.kafka_security.protocol, settings.kafka_security.sasl_mechanism) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )


@pytest.mark.parametrize("name", SOURCE_SECRETS)
def test_a_forgotten_secret_placeholder_stops_startup(manifests: list[dict[str, Any]], name: str) -> None:
    """Placeholders must never enable a webhook source with a secret published in this repository."""
    value = _resource(manifests, "Secret", "hookstream-secrets")["stringData"][name]
    assert "replace" in value.lower()
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_every_secret_value_is_a_placeholder(manifests: list[dict[str, Any]]) -> None:
    secret = _resource(manifests, "Secret", "hookstream-secrets")
    assert "data" not in secret, "no base64 values: nothing real belongs in this file"
    for name, value in secret["stringData"].items():
        assert "replace" in value.lower(), name


def test_the_prometheus_configmap_carries_the_repository_files(manifests: list[dict[str, Any]]) -> None:
    configmap = _resource(manifests, "ConfigMap", "hookstream-prometheus")
    assert configmap["data"] == {
        "prometheus.yml": PROMETHEUS_FILE.read_text(),
        "alerts.yml": ALERTS_FILE.read_text(),
    }
    # Mounted as one directory, the config finds its rule files among the ConfigMap's keys.
    rule_files = yaml.safe_load(configmap["data"]["prometheus.yml"])["rule_files"]
    assert set(rule_files) <= configmap["data"].keys()


def _mounted_files(doc: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Each file path the container sees from a Secret volume → (Secret name, key)."""
    container = _container(doc)
    volumes = {v["name"]: v for v in _pod_spec(doc)["volumes"]}
    files = {}
    for mount in container["volumeMounts"]:
        secret = volumes.get(mount["name"], {}).get("secret")  # (not a claim template's volume)
        if secret is None:
            continue
        assert mount.get("readOnly") is True, mount
        for item in secret.get("items") or [{"key": "password", "path": "password"}]:
            files[f"{mount['mountPath']}/{item['path']}"] = (secret["secretName"], item["key"])
    return files


@pytest.mark.parametrize(("kind", "name"), list(WORKLOADS))
def test_each_workload_logs_in_as_its_own_user_with_secrets_from_files(
    manifests: list[dict[str, Any]], kind: str, name: str
) -> None:
    doc = _resource(manifests, kind, name)
    env = {e["name"]: e["value"] for e in _container(doc).get("env", [])}
    files = _mounted_files(doc)
    user = KAFKA_USERS[name]
    assert env["HOOKSTREAM_KAFKA_SASL_USERNAME"] == user
    assert files[env["HOOKSTREAM_KAFKA_SASL_PASSWORD_FILE"]] == (f"hookstream-kafka-{user}", "password")
    read_from_files = {k.removesuffix("_FILE") for k in env if k.endswith("_FILE")}
    assert read_from_files == {"HOOKSTREAM_KAFKA_SASL_PASSWORD"} | SENDER_FILES[name]
    for setting in SENDER_FILES[name]:
        assert files[env[f"{setting}_FILE"]] == ("hookstream-secrets", setting)
    assert _pod_spec(doc)["securityContext"]["fsGroup"] == 10001, "mounted secrets readable by the user"


@pytest.mark.parametrize(("kind", "name"), list(WORKLOADS))
def test_each_workloads_settings_are_complete_once_its_files_are_mounted(
    manifests: list[dict[str, Any]], tmp_path: Path, kind: str, name: str
) -> None:
    """The ConfigMap and a workload's env, with each mounted file standing in for its Secret, start."""
    configmap = _resource(manifests, "ConfigMap", "hookstream-config")["data"]
    env = {
        **configmap,
        **{e["name"]: e["value"] for e in _container(_resource(manifests, kind, name)).get("env", [])},
    }
    for setting, path in list(env.items()):
        if setting.endswith("_FILE"):
            mounted = tmp_path / Path(path).name
            secret = "acme=whsec_MDEyMzQ1Njc4OWFiY2RlZg==" if "STANDARD" in setting else "x" * 24
            mounted.write_text(secret + "\n")
            env[setting] = str(mounted)
    settings = Settings.from_env(env)
    assert settings.kafka_security.protocol == "SASL_SSL"
    assert settings.kafka_security.sasl_username == KAFKA_USERS[name]


def test_every_kafka_password_is_a_placeholder(manifests: list[dict[str, Any]]) -> None:
    for user in set(KAFKA_USERS.values()):
        secret = _resource(manifests, "Secret", f"hookstream-kafka-{user}")
        assert "data" not in secret
        assert set(secret["stringData"]) == {"password"}
        assert "replace" in secret["stringData"]["password"]
