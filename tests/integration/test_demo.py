"""`hookstream demo` against real receivers and a worker: every delivery is accepted, and the firehose
then holds an event of every family the senders produce."""

from __future__ import annotations

import subprocess
from fnmatch import fnmatchcase

import orjson

from hookstream.topics import Topics
from tests.integration.harness import Stack, read_topic
from tests.support import HOOKSTREAM, SENDERS

# x post 1, account activity 2, assignment 1, REST batch 3 (and a ping), stream event 1, forum 1, acme 1
EVENTS = 10
FAMILIES = (
    "com.x.post.matched",
    "com.x.tweet_create",
    "com.hootsuite.assignment.open",
    "com.hootsuite.message.*",
    "com.websitetoolbox.user.created",
    "acme.*",
)


def demo(stack: Stack, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HOOKSTREAM), "demo", "--url", url],
        env=stack.environment({}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_demo_is_accepted_and_publishes_every_event_family(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    stack.env.update(SENDERS)
    receivers = await stack.receivers()
    await stack.worker()
    result = demo(stack, receivers.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 of 8 deliveries accepted" in result.stdout
    for secret in SENDERS.values():
        assert secret.split("=", 1)[-1] not in result.stdout + result.stderr

    events = [orjson.loads(r.value) for r in await read_topic(bootstrap, Topics(namespace).events, EVENTS)]
    types = {event["type"] for event in events}
    missing = [family for family in FAMILIES if not any(fnmatchcase(t, family) for t in types)]
    assert not missing, f"no event of {missing} among {sorted(types)}"


async def test_a_second_demo_is_new_to_deduplication(stack: Stack, bootstrap: str, namespace: str) -> None:
    stack.env.update(SENDERS)
    receivers = await stack.receivers()
    await stack.worker()
    for _ in range(2):
        result = demo(stack, receivers.url)
        assert result.returncode == 0, result.stdout + result.stderr
    events = await read_topic(bootstrap, Topics(namespace).events, 2 * EVENTS)
    assert len({orjson.loads(record.value)["id"] for record in events}) == 2 * EVENTS
