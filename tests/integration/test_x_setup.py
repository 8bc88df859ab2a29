"""`hookstream x …` against a local stand-in for X's API (`tests/fake_x.py`), with real receivers, a real
worker and the real broker: setup from nothing to rules + webhook + link, then a signed post that X
would send arrives on its tag topic. One receivers + worker stack serves the whole module; each test has
an X of its own."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from hookstream.topics import Topics
from tests.fake_x import BEARER, FakeX
from tests.integration.harness import Service, Stack, read_topic, serving
from tests.support import X_SECRET, run_cli

SAMPLE_RULES = Path(__file__).resolve().parents[2] / "deploy" / "x-rules.toml"


@pytest.fixture(scope="module")
def x_stack(
    bootstrap: str, new_namespace: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, Service]]:
    namespace = new_namespace()
    stack = Stack(
        bootstrap, namespace, tmp_path_factory.mktemp("x"), {"HOOKSTREAM_X_CONSUMER_SECRETS": X_SECRET}
    )
    try:
        receivers = stack.start("receivers", "HOOKSTREAM_HTTP_PORT")
        worker = stack.start("worker", "HOOKSTREAM_WORKER_PORT")
        asyncio.run(_ready(receivers, worker))
        yield stack, receivers
    finally:
        stack.stop_all()


async def _ready(receivers: Service, worker: Service) -> None:
    await receivers.wait_http("/readyz")
    await worker.wait_http("/healthz")


@pytest.fixture
async def x_api() -> AsyncIterator[tuple[FakeX, str]]:
    fake = FakeX(consumer_secret=X_SECRET)
    async with serving(fake.app()) as url:
        yield fake, url


@pytest.fixture
def hook_url(x_stack: tuple[Stack, Service]) -> str:
    return f"{x_stack[1].url}/webhooks/x"


async def x(
    api_url: str, stack: Stack, *args: str, token: str = BEARER, secret: str = X_SECRET
) -> subprocess.CompletedProcess[str]:
    """`hookstream x ARGS…` in a thread: the fake X answering it runs on this test's event loop."""
    env = {
        "HOOKSTREAM_X_API_URL": api_url,
        "HOOKSTREAM_X_BEARER_TOKEN": token,
        "HOOKSTREAM_X_CONSUMER_SECRETS": secret,
        "HOOKSTREAM_NAMESPACE": stack.namespace,
    }
    result = await asyncio.to_thread(run_cli, "x", *args, env=env, timeout=60)
    assert BEARER not in result.stdout + result.stderr
    return result


def rules_file(tmp_path: Path, *rules: tuple[str, str]) -> str:
    path = tmp_path / "rules.toml"
    path.write_text("".join(f'[[rule]]\nvalue = "{value}"\ntag = "{tag}"\n\n' for value, tag in rules))
    return str(path)


def post(post_id: str, text: str) -> dict[str, Any]:
    return {
        "data": {
            "id": post_id,
            "text": text,
            "author_id": "2244994945",
            "created_at": "2026-12-01T12:00:00.000Z",
        },
        "includes": {"users": [{"id": "2244994945", "name": "Developers", "username": "XDevelopers"}]},
    }


async def test_setup_from_nothing_delivers_a_matching_post_to_its_tag_topic_and_a_second_run_writes_nothing(
    x_api: tuple[FakeX, str], x_stack: tuple[Stack, Service], hook_url: str, bootstrap: str
) -> None:
    fake, api_url = x_api
    stack, _ = x_stack
    link = "--link-fields=expansions=author_id&user.fields=username,name"
    first = await x(api_url, stack, "setup", "--url", hook_url, "--rules", str(SAMPLE_RULES), link)
    assert first.returncode == 0, first.stderr
    assert fake.rule_set == {
        ("from:XDevelopers -is:retweet", "api-posts"),
        ("hookstream -is:retweet", "mentions"),
    }
    ((webhook_id, webhook),) = fake.webhooks.items()
    assert (webhook["url"], webhook["valid"]) == (hook_url, True)
    assert fake.links == {webhook_id: ["expansions=author_id", "user.fields=username", "name"]}
    assert fake.crc_checks == [True]
    assert "warning: X refuses webhook URLs with a port" in first.stderr  # said, then sent anyway
    assert "+ added 'from:XDevelopers -is:retweet' tag api-posts" in first.stdout
    assert f"→ {stack.namespace}.x.tag.api-posts" in first.stdout
    assert f"+ created {webhook_id}" in first.stdout
    assert f"+ linked webhook {webhook_id}" in first.stdout

    post_id = str(uuid.uuid4().int % 10**18)
    assert await fake.deliver(post(post_id, "Ship it with #hookstream")) == [200]
    (record,) = await read_topic(bootstrap, Topics(stack.namespace).for_tag("api-posts"), 1)
    event = orjson.loads(record.value)
    assert (event["type"], event["id"]) == ("com.x.post.matched", f"x:post:{post_id}")
    assert set(event["hstags"].split(",")) == {"api-posts", "mentions"}

    writes = list(fake.writes)
    second = await x(api_url, stack, "setup", "--url", hook_url, "--rules", str(SAMPLE_RULES), link)
    assert second.returncode == 0, second.stderr
    assert fake.writes == writes
    assert second.stdout.strip().endswith(f"no changes: X already matches {SAMPLE_RULES}")


async def test_a_tag_conflict_is_named_without_prune_and_prune_replaces_it_and_deletes_rules_not_in_the_file(
    x_api: tuple[FakeX, str], x_stack: tuple[Stack, Service], hook_url: str, tmp_path: Path
) -> None:
    fake, api_url = x_api
    stack, _ = x_stack
    fake.add_rule("cats", "pets")
    old = fake.add_rule("kafka", "old-tag")
    rules = rules_file(tmp_path, ("kafka", "streams"), ("webhooks", "hooks"))

    stopped = await x(api_url, stack, "setup", "--url", hook_url, "--rules", rules)
    assert stopped.returncode == 1
    assert f"'kafka': X has it with tag old-tag (rule {old}), {rules} says tag streams" in stopped.stderr
    assert "--prune" in stopped.stderr
    assert fake.writes == []

    pruned = await x(api_url, stack, "setup", "--url", hook_url, "--rules", rules, "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert fake.rule_set == {("kafka", "streams"), ("webhooks", "hooks")}
    assert "- deleted 'cats' tag pets" in pruned.stdout
    assert "(not in the file)" in pruned.stdout
    assert f"- deleted 'kafka' tag old-tag (rule {old})" in pruned.stdout
    assert "(replaced)" in pruned.stdout
    assert "+ added 'kafka' tag streams" in pruned.stdout

    ((webhook_id, webhook),) = fake.webhooks.items()
    webhook["valid"] = False  # e.g. the receivers were down for a day: X re-validates it
    revalidated = await x(api_url, stack, "setup", "--url", hook_url, "--rules", rules, "--prune")
    assert revalidated.returncode == 0, revalidated.stderr
    assert f"~ re-validated {webhook_id} (X listed it invalid)" in revalidated.stdout
    assert fake.webhooks[webhook_id]["valid"] is True


async def test_a_wrong_consumer_secret_fails_crc_check_and_stops_setup_before_x_changes_anything(
    x_api: tuple[FakeX, str], x_stack: tuple[Stack, Service], hook_url: str
) -> None:
    fake, api_url = x_api
    stack, _ = x_stack
    checked = await x(api_url, stack, "crc-check", hook_url, secret="not-the-consumer-secret")
    assert checked.returncode == 1
    assert "response_token does not match the first HOOKSTREAM_X_CONSUMER_SECRETS secret" in checked.stdout

    setup = await x(
        api_url,
        stack,
        "setup",
        "--url",
        hook_url,
        "--rules",
        str(SAMPLE_RULES),
        secret="not-the-consumer-secret",
    )
    assert setup.returncode == 1
    assert "crc-check" in setup.stderr
    assert "response_token does not match" in setup.stderr
    assert (fake.writes, fake.webhooks) == ([], {})

    fake.consumer_secret = "the-app-has-another-secret"  # X's own CRC fails: its reason comes through
    created = await x(api_url, stack, "webhooks", "create", hook_url)
    assert created.returncode == 1
    assert "X answered 400 Invalid Request" in created.stderr
    assert "CrcValidationFailed: Invalid response_token" in created.stderr


async def test_a_wrong_bearer_token_exits_1_with_xs_title_and_reason_and_never_shows_the_token(
    x_api: tuple[FakeX, str], x_stack: tuple[Stack, Service]
) -> None:
    _, api_url = x_api
    wrong = "AAAAAAAAAAAAAAAAAAAAAWrongToken%3D0123456789abcdef"
    for args in (["rules", "list"], ["rules", "list", "--json"]):
        result = await x(api_url, x_stack[0], *args, token=wrong)
        assert result.returncode == 1
        assert "X answered 401 Unauthorized" in result.stderr
        assert wrong not in result.stdout + result.stderr
    assert orjson.loads(result.stdout)["title"] == "Unauthorized"


async def test_429s_are_waited_out_until_the_rate_limit_resets_then_the_command_succeeds(
    x_api: tuple[FakeX, str], x_stack: tuple[Stack, Service]
) -> None:
    fake, api_url = x_api
    fake.add_rule("kafka", "streams")
    fake.rate_limit_next(2)
    impatient = await x(api_url, x_stack[0], "rules", "list", "--max-wait", "0")
    assert impatient.returncode == 1
    assert "longer than --max-wait allows" in impatient.stderr

    fake.rate_limit_next(2)
    patient = await x(api_url, x_stack[0], "rules", "list")
    assert patient.returncode == 0, patient.stderr
    assert "X rate limit on GET /2/tweets/search/stream/rules: waiting" in patient.stderr
    assert "(x-rate-limit-reset)" in patient.stderr
    assert "'kafka' tag streams" in patient.stdout
    assert fake.answered[429] >= 2
    assert fake.answered[200] == 1


async def test_every_x_command_prints_json_that_parses(
    x_api: tuple[FakeX, str], x_stack: tuple[Stack, Service], hook_url: str, tmp_path: Path
) -> None:
    fake, api_url = x_api
    stack, _ = x_stack
    fake.links_shape = "list"  # OpenAPI 2.167's shape of the links listing

    async def answer(*args: str) -> Any:
        result = await x(api_url, stack, *args, "--json")
        assert result.returncode == 0, (args, result.stderr)
        return orjson.loads(result.stdout)

    assert (await answer("rules", "add", "kafka", "--tag", "streams", "--dry-run"))["meta"]["summary"][
        "created"
    ] == 1
    rule_id = (await answer("rules", "add", "kafka", "--tag", "streams"))["data"][0]["id"]
    assert (await answer("rules", "list"))["data"] == [{"id": rule_id, "value": "kafka", "tag": "streams"}]
    webhook_id = (await answer("webhooks", "create", hook_url))["data"]["id"]
    assert (await answer("webhooks", "list"))["data"][0]["id"] == webhook_id
    assert (await answer("webhooks", "validate", webhook_id))["data"]["valid"] is True
    assert fake.crc_checks == [True, True]  # X's own CRC against the receivers, on create and validate
    assert (await answer("stream", "link", webhook_id, "--expansions", "author_id"))["data"][
        "provisioned"
    ] is True
    assert (await answer("stream", "links"))["data"][0]["webhook_id"] == webhook_id
    assert (await answer("crc-check", hook_url))["ok"] is True
    setup = await answer("setup", "--url", hook_url, "--rules", rules_file(tmp_path, ("kafka", "streams")))
    assert setup == {"changed": False, "changes": [], "webhook": webhook_id}
    assert (await answer("stream", "unlink", webhook_id))["data"]["deleted"] is True
    assert (await answer("webhooks", "delete", webhook_id))["data"]["deleted"] is True
    assert (await answer("rules", "delete", rule_id))["meta"]["summary"]["deleted"] == 1
    fake.add_rule("cats")
    assert (await answer("rules", "delete", "--all"))["meta"]["summary"]["deleted"] == 1
    assert fake.rules == {}
