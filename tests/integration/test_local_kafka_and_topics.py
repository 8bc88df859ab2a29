"""`hookstream kafka start|stop|status` and `hookstream topics` against real brokers."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import aiohttp
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hookstream import clients
from hookstream.settings import Settings
from hookstream.tail import tail
from tests.integration.harness import Stack
from tests.support import USER_CREATED, broker_port, run_cli


def test_the_local_broker_starts_stops_and_restarts_from_its_cache() -> None:
    cache_dir = Settings.from_env().cache_dir
    env = {"HOOKSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{broker_port()}", "HOOKSTREAM_CACHE_DIR": str(cache_dir)}
    port = env["HOOKSTREAM_KAFKA_BOOTSTRAP"].rpartition(":")[2]
    try:
        first = run_cli("kafka", "start", env=env)
        assert first.returncode == 0, first.stderr
        assert "Kafka is up" in first.stdout
        assert "fetching" not in first.stdout, "the suite's own broker already filled the cache"

        again = run_cli("kafka", "start", env=env)
        assert again.returncode == 0
        assert "already answers" in again.stdout
        assert run_cli("kafka", "status", env=env).returncode == 0

        stopped = run_cli("kafka", "stop", env=env)
        assert "Kafka stopped" in stopped.stdout
        assert run_cli("kafka", "status", env=env).returncode == 1

        restarted = run_cli("kafka", "start", env=env)
        assert restarted.returncode == 0, restarted.stderr
        assert "fetching" not in restarted.stdout
        assert "Kafka is up" in restarted.stdout
    finally:
        run_cli("kafka", "stop", env=env)
        shutil.rmtree(cache_dir / f"broker-{port}", ignore_errors=True)


async def test_topics_creates_then_verifies_with_the_configured_partitions_and_retention(
    bootstrap: str, namespace: str
) -> None:
    env = {
        "HOOKSTREAM_KAFKA_BOOTSTRAP": bootstrap,
        "HOOKSTREAM_NAMESPACE": namespace,
        "HOOKSTREAM_TOPIC_PARTITIONS": "2",
    }
    created = run_cli("topics", env=env)
    assert created.returncode == 0, created.stderr
    names = [f"{namespace}.raw.{s}" for s in ("x", "hootsuite", "websitetoolbox", "standard")]
    names += [f"{namespace}.events", f"{namespace}.dlq"]
    names += [f"{namespace}.internal.keyed", f"{namespace}.internal.seen"]
    assert created.stdout.splitlines() == [f"created  {name} (2 partitions)" for name in names]
    verified = run_cli("topics", env=env)
    assert verified.stdout.split() == [word for name in names for word in ("exists", name)]

    admin = clients.admin(Settings(kafka_bootstrap=bootstrap))
    await admin.start()
    try:
        described = await admin.describe_topics(names)
        assert {t["topic"]: len(t["partitions"]) for t in described} == dict.fromkeys(names, 2)
        raw, dlq, seen = names[0], f"{namespace}.dlq", f"{namespace}.internal.seen"
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in (raw, dlq, seen)]
        )
        configs = {
            resource[3]: {entry[0]: entry[1] for entry in resource[4]} for resource in response.resources
        }
        assert configs[raw]["retention.ms"] == str(7 * 86_400_000)
        assert configs[dlq]["retention.ms"] == str(30 * 86_400_000)
        assert configs[seen]["cleanup.policy"] == "delete"
        assert configs[seen]["retention.ms"] == str(8 * 86_400_000), "the dedup window (7 days) and a day"
    finally:
        await admin.close()


async def test_tail_prints_each_event_as_a_readable_line(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    token = "forum-token-0123456789abcdef"
    stack.env["HOOKSTREAM_WEBSITETOOLBOX_TOKEN"] = token
    receivers = await stack.receivers()
    await stack.worker()
    async with aiohttp.ClientSession() as session:
        url = f"{receivers.url}/webhooks/websitetoolbox/{token}"
        async with session.post(url, data=USER_CREATED) as response:
            assert response.status == 200
    out = io.StringIO()
    settings = Settings(kafka_bootstrap=bootstrap, namespace=namespace)
    assert await tail(settings, f"{namespace}.events", from_beginning=True, out=out, limit=1) == 1
    assert (
        out.getvalue()
        == "2011-12-02T07:31:59Z  com.websitetoolbox.user.created  websitetoolbox:1534  user/181855\n"
    )


def test_cache_dir_default_is_outside_the_repository() -> None:
    assert not Settings.from_env({}).cache_dir.is_relative_to(Path(__file__).resolve().parents[2])
