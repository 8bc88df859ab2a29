"""SPEC §7 on a real broker started with `hookstream kafka start --secure` (SASL_SSL SCRAM-SHA-512,
StandardAuthorizer, an extra mutual-TLS listener): each role's own credentials do its job end to end,
the broker itself refuses each role what it may not do, and a refused login is told and survived."""

from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka.errors import ClusterAuthorizationFailedError, TopicAuthorizationFailedError

from hookstream import clients
from hookstream.settings import Settings
from hookstream.topics import Topics
from tests.integration.harness import Service, Stack, eventually, read_topic
from tests.support import FORUM_TOKEN, USER_CREATED, broker_port, run_cli

pytestmark = pytest.mark.long(110)

Env = dict[str, str]


class SecureBroker:
    """The module's secure broker and the env files it wrote for each role."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def env(self, role: str, *, mtls: bool = False) -> Env:
        path = self.home / "secure" / (f"{role}-mtls.env" if mtls else f"{role}.env")
        return dict(line.split("=", 1) for line in path.read_text().splitlines())

    def settings(self, role: str, namespace: str) -> Settings:
        return Settings.from_env({**self.env(role), "HOOKSTREAM_NAMESPACE": namespace})


@pytest.fixture(scope="module")
def secure() -> Iterator[SecureBroker]:
    cache_dir = Settings.from_env().cache_dir
    port = broker_port(3)
    env = {"HOOKSTREAM_KAFKA_BOOTSTRAP": f"localhost:{port}", "HOOKSTREAM_CACHE_DIR": str(cache_dir)}
    started = run_cli("kafka", "start", "--secure", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    home = cache_dir / f"broker-{port}"
    assert f"{home}/secure/receivers.env" in started.stdout
    try:
        yield SecureBroker(home)
    finally:
        run_cli("kafka", "stop", env=env)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
async def deployed(
    secure: SecureBroker, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Stack]:
    """A namespace whose topics the admin created and whose roles got their ACLs from `acls --apply`."""
    admin = {**secure.env("admin"), "HOOKSTREAM_NAMESPACE": namespace}
    topics = run_cli("topics", env=admin)
    assert topics.returncode == 0, topics.stderr
    applied = run_cli("acls", "--apply", env=admin)
    assert applied.returncode == 0, applied.stderr
    assert f"User:reader\tDENY\tTOPIC\tPREFIXED\t{namespace}.raw.\tREAD" in applied.stdout
    stack = Stack(bootstrap=admin["HOOKSTREAM_KAFKA_BOOTSTRAP"], namespace=namespace, workdir=tmp_path)
    stack.env["HOOKSTREAM_WEBSITETOOLBOX_TOKEN"] = FORUM_TOKEN
    yield stack
    stack.finish(request)


async def post_forum_event(receivers: Service) -> tuple[int, str | None]:
    url = f"{receivers.url}/webhooks/websitetoolbox/{FORUM_TOKEN}"
    async with aiohttp.ClientSession() as session, session.post(url, data=USER_CREATED) as response:
        return response.status, response.headers.get("Retry-After")


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_the_whole_path_runs_on_each_roles_own_credentials(
    secure: SecureBroker, deployed: Stack, namespace: str, guarantee: str
) -> None:
    receivers = await deployed.receivers(**secure.env("receivers"))
    await deployed.worker(**secure.env("worker"), HOOKSTREAM_PROCESSING_GUARANTEE=guarantee)
    assert await post_forum_event(receivers) == (200, None)
    # The reader's own login, read_committed (read_topic's consumer), sees the published event.
    (event,) = await read_topic(secure.settings("reader", namespace), Topics(namespace).events, 1)
    assert b'"id":"websitetoolbox:1534"' in event.value


async def refusal(operation: Awaitable[Any]) -> BaseException:
    try:
        await operation
    except Exception as exc:
        return exc
    raise AssertionError("the broker allowed it")


async def write(settings: Settings, topic: str) -> None:
    producer = clients.producer(settings, acks="all", enable_idempotence=True)
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"forged")
    finally:
        await producer.stop()


def tail(settings: Settings, topic: str, role_env: Env) -> str:
    told = run_cli(
        "tail", topic, "--from-beginning", env={**role_env, "HOOKSTREAM_NAMESPACE": settings.namespace}
    )
    assert told.returncode == 2
    assert "Traceback" not in told.stderr
    return told.stderr.splitlines()[-1]


async def test_each_role_is_refused_by_the_broker_what_it_may_not_do(
    secure: SecureBroker, deployed: Stack, namespace: str
) -> None:
    topics = Topics(namespace)
    receivers, reader, worker = (
        secure.settings(role, namespace) for role in ("receivers", "reader", "worker")
    )

    # Receivers: no event can be read (not even seen), no output written.
    assert tail(receivers, topics.events, secure.env("receivers")) == (
        f"hookstream: Kafka refused DESCRIBE on topic {topics.events} to user 'receivers' "
        "(HOOKSTREAM_KAFKA_SASL_USERNAME): its ACLs do not allow it (see `hookstream acls`)"
    )
    denied = await refusal(write(receivers, topics.events))
    assert isinstance(denied, TopicAuthorizationFailedError)
    assert topics.events in str(denied)

    # The reader: no raw or internal topic read, no raw record forged (it may write nothing at all).
    for topic in (topics.raw("websitetoolbox"), topics.keyed):
        assert tail(reader, topic, secure.env("reader")).startswith(
            f"hookstream: Kafka refused READ on {topic}"
        )
    assert isinstance(await refusal(write(reader, topics.raw("x"))), ClusterAuthorizationFailedError)

    # The worker writes outputs, never a raw record.
    forged = await refusal(write(worker, topics.raw("x")))
    assert isinstance(forged, TopicAuthorizationFailedError)
    assert topics.raw("x") in str(forged)


def error_lines(service: Service) -> list[str]:
    return [line for line in service.log_text().splitlines() if " ERROR " in line]


def attempts(service: Service) -> list[datetime]:
    """When aiokafka tried to connect and was turned away (it logs every attempt)."""
    return [
        datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        for line in error_lines(service)
        if "Unable connect to" in line
    ]


async def test_a_wrong_password_is_told_once_retried_slowly_and_fixed_by_the_secret_file(
    secure: SecureBroker, deployed: Stack, tmp_path: Path
) -> None:
    role = secure.env("receivers")
    password, token = tmp_path / "kafka-password", tmp_path / "forum-token"
    password.write_text("not-the-password\n")
    token.write_text(FORUM_TOKEN + "\n")
    del deployed.env["HOOKSTREAM_WEBSITETOOLBOX_TOKEN"]
    role.pop("HOOKSTREAM_KAFKA_SASL_PASSWORD")
    files = {
        "HOOKSTREAM_KAFKA_SASL_PASSWORD_FILE": str(password),
        "HOOKSTREAM_WEBSITETOOLBOX_TOKEN_FILE": str(token),
    }
    worker_env = {**secure.env("worker"), "HOOKSTREAM_KAFKA_SASL_PASSWORD": "not-the-password"}
    worker = deployed.start("worker", "HOOKSTREAM_WORKER_PORT", **worker_env)
    receivers = deployed.start("receivers", "HOOKSTREAM_HTTP_PORT", **role, **files)

    await receivers.wait_http("/readyz", status=503)
    assert await post_forum_event(receivers) == (503, "5")
    await eventually(lambda: _at_least(attempts(receivers), 3), what="three refused connection attempts")
    tried = attempts(receivers)
    assert all((later - earlier).total_seconds() >= 1.0 for earlier, later in itertools.pairwise(tried))
    told = [line for line in error_lines(receivers) if "Unable connect to" not in line]
    assert len(told) == 1, told
    assert "Kafka refused the login of user 'receivers'" in told[0]
    assert "HOOKSTREAM_KAFKA_SASL_PASSWORD" in told[0]
    assert "Traceback" not in receivers.log_text()
    assert "not-the-password" not in receivers.log_text()
    await worker.wait_http("/livez", status=503)
    assert any("Kafka refused the login of user 'worker'" in line for line in error_lines(worker))
    assert "Traceback" not in worker.log_text()

    password.write_text(secure.env("receivers")["HOOKSTREAM_KAFKA_SASL_PASSWORD"] + "\n")
    await receivers.stopped()
    fixed = await deployed.receivers(**role, **files)
    assert await post_forum_event(fixed) == (200, None)


async def _at_least(items: list[Any], count: int) -> bool:
    return len(items) >= count


async def test_mutual_tls_with_a_client_certificate(
    secure: SecureBroker, deployed: Stack, namespace: str
) -> None:
    receivers = await deployed.receivers(**secure.env("receivers", mtls=True))
    assert await post_forum_event(receivers) == (200, None)
    (raw,) = await read_topic(secure.settings("admin", namespace), Topics(namespace).raw("websitetoolbox"), 1)
    assert raw.value == USER_CREATED
    # The certificate's CN is the principal: the receivers' ACLs hold on this listener too.
    cert = Settings.from_env({**secure.env("receivers", mtls=True), "HOOKSTREAM_NAMESPACE": namespace})
    assert isinstance(await refusal(write(cert, Topics(namespace).events)), TopicAuthorizationFailedError)


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        ("HOOKSTREAM_KAFKA_SASL_MECHANISM", "HOOKSTREAM_KAFKA_SASL_MECHANISM"),
        ("HOOKSTREAM_KAFKA_SSL_CAFILE", "HOOKSTREAM_KAFKA_SSL_CAFILE"),
    ],
)
def test_contradictory_settings_stop_startup_with_one_line(
    secure: SecureBroker, unset: str, named: str
) -> None:
    env = secure.env("receivers")
    if unset == "HOOKSTREAM_KAFKA_SSL_CAFILE":  # a CA given to a protocol without TLS
        env["HOOKSTREAM_KAFKA_SECURITY_PROTOCOL"] = "SASL_PLAINTEXT"
    else:
        del env[unset]
    started = run_cli("receivers", env=env, timeout=30)
    assert started.returncode == 2
    assert re.fullmatch(f"hookstream: bad setting {named}: [^\n]+\n", started.stderr), started.stderr


async def test_a_secure_three_node_cluster_replicates_over_its_authenticated_listeners(
    namespace: str,
) -> None:
    """SPEC §8: `--secure` works for several addresses too. Every node takes the same users and
    certificates; brokers replicate and elect over SASL_SSL and SASL controller listeners; each role's
    env file names every node, and the ACLs hold on each."""
    cache_dir = Settings.from_env().cache_dir
    ports = [broker_port(3) for _ in range(3)]
    env = {
        "HOOKSTREAM_KAFKA_BOOTSTRAP": ",".join(f"localhost:{port}" for port in ports),
        "HOOKSTREAM_CACHE_DIR": str(cache_dir),
    }
    started = run_cli("kafka", "start", "--secure", env=env, timeout=300)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        home = next(cache_dir.glob(f"cluster-{ports[0]}-*")) / f"broker-{ports[0]}"
        cluster = SecureBroker(home)
        assert cluster.env("admin")["HOOKSTREAM_KAFKA_BOOTSTRAP"] == env["HOOKSTREAM_KAFKA_BOOTSTRAP"]
        assert not (home / "secure" / "admin-mtls.env").exists(), "mutual TLS is a single node's"
        admin_env = {**cluster.env("admin"), "HOOKSTREAM_NAMESPACE": namespace}
        for command in (("topics",), ("acls", "--apply")):
            done = run_cli(*command, env=admin_env)
            assert done.returncode == 0, done.stderr
        topics = Topics(namespace)
        admin = clients.admin(cluster.settings("admin", namespace))
        await admin.start()
        try:
            (described,) = await admin.describe_topics([topics.raw("x")])
        finally:
            await admin.close()
        assert {(len(p["replicas"]), len(p["isr"])) for p in described["partitions"]} == {(3, 3)}
        await write(cluster.settings("receivers", namespace), topics.raw("x"))  # acks=all: 3 in sync
        forged = await refusal(write(cluster.settings("worker", namespace), topics.raw("x")))
        assert isinstance(forged, TopicAuthorizationFailedError)
    finally:
        run_cli("kafka", "stop", env=env)
        for root in cache_dir.glob(f"cluster-{ports[0]}-*"):
            shutil.rmtree(root, ignore_errors=True)
