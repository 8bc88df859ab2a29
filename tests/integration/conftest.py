from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hookstream.kafka import delete_topics_starting_with, kafka_answers
from hookstream.settings import Settings
from tests.integration.harness import Stack
from tests.support import broker_port, run_cli


@pytest.fixture(scope="session")
def bootstrap() -> str:
    settings = Settings.from_env(
        {"HOOKSTREAM_KAFKA_BOOTSTRAP": os.environ.get("HOOKSTREAM_KAFKA_BOOTSTRAP", "")}
    )
    if not asyncio.run(kafka_answers(settings, timeout_s=5)):
        pytest.fail(f"no Kafka answers at {settings.kafka_bootstrap}: `make test` starts one for the suite")
    return settings.kafka_bootstrap


@pytest.fixture(scope="session")
def new_namespace(bootstrap: str) -> Iterator[Callable[[], str]]:
    """Makes namespaces for this session's tests and, once the session ends, deletes their topics from
    the suite's broker: `make test` against a developer's running broker leaves it as it found it."""
    made: list[str] = []

    def new() -> str:
        made.append(f"hs-test-{uuid.uuid4().hex[:12]}")
        return made[-1]

    yield new
    settings = Settings.from_env({"HOOKSTREAM_KAFKA_BOOTSTRAP": bootstrap})
    # `<namespace>.` and `<namespace>-`: a test may route to a topic beside the namespace's own.
    prefixes = [f"{namespace}{separator}" for namespace in made for separator in ".-"]
    asyncio.run(delete_topics_starting_with(settings, prefixes))


@pytest.fixture
def namespace(new_namespace: Callable[[], str]) -> str:
    return new_namespace()


@pytest.fixture
def stack(bootstrap: str, namespace: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    stack = Stack(bootstrap=bootstrap, namespace=namespace, workdir=tmp_path)
    yield stack
    stack.finish(request)


@pytest.fixture
def own_broker() -> Iterator[dict[str, str]]:
    """A broker of this test's own, which it may stop and start (the suite's broker stays untouched)."""
    cache_dir = Settings.from_env().cache_dir
    port = broker_port()
    env = {"HOOKSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}", "HOOKSTREAM_CACHE_DIR": str(cache_dir)}
    started = run_cli("kafka", "start", env=env)
    assert started.returncode == 0, started.stderr
    yield env
    run_cli("kafka", "stop", env=env)
    shutil.rmtree(cache_dir / f"broker-{port}", ignore_errors=True)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` runs the suite on two workers (pytest-xdist, `--dist loadgroup`), a group of tests at a
    time: each module is a group (its module-scoped brokers start once) unless it names one with
    `xdist_group` (modules that must not overlap share one). The longest (`long` marks them with their
    seconds) go first, so that a long module started last does not keep one worker busy alone."""

    def seconds(item: pytest.Item) -> float:
        marker = item.get_closest_marker("long")
        return float(marker.args[0]) if marker is not None else 0.0

    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.partition("::")[0]))
    items.sort(key=seconds, reverse=True)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)
