"""`hookstream poller` against a local server speaking Hootsuite's REST API, with a real broker and a
real worker: polled state changes become the same events a webhook would, once."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from hookstream.topics import Topics
from tests.fake_hootsuite import CLIENT_ID, CLIENT_SECRET, FakeHootsuite
from tests.integration.harness import (
    Service,
    Stack,
    end_offsets,
    eventually,
    metric,
    read_all,
    read_topic,
    serving,
)
from tests.support import EVENTS_TOKEN

STATES_POLLED = 5  # list requests in one poll cycle without paging


@pytest.fixture
async def hootsuite() -> AsyncIterator[tuple[FakeHootsuite, str]]:
    fake = FakeHootsuite()
    async with serving(fake.app()) as url:
        yield fake, url


@pytest.fixture
def poller_stack(stack: Stack, hootsuite: tuple[FakeHootsuite, str]) -> Stack:
    stack.env.update(
        {
            "HOOKSTREAM_HOOTSUITE_API_URL": hootsuite[1],
            "HOOKSTREAM_HOOTSUITE_CLIENT_ID": CLIENT_ID,
            "HOOKSTREAM_HOOTSUITE_CLIENT_SECRET": CLIENT_SECRET,
            "HOOKSTREAM_HOOTSUITE_REFRESH_TOKEN": "rt-0",
            "HOOKSTREAM_HOOTSUITE_POLL_INTERVAL": "200ms",
        }
    )
    return stack


async def start_poller(stack: Stack) -> Service:
    service = stack.start("poller", "HOOKSTREAM_POLLER_PORT")
    await service.wait_http("/healthz")
    return service


async def polls_done(fake: FakeHootsuite, cycles: int) -> None:
    """Wait until `cycles` more full poll cycles have asked the fake for messages."""
    target = fake.list_requests + cycles * STATES_POLLED

    async def enough() -> bool:
        return fake.list_requests >= target

    await eventually(enough, what=f"{cycles} more poll cycles")


def event_types(records: list[object]) -> list[str]:
    return [orjson.loads(record.value)["type"] for record in records]  # type: ignore[attr-defined]


async def test_scheduled_then_sent_is_one_sent_event_and_a_restart_emits_nothing_new(
    poller_stack: Stack, hootsuite: tuple[FakeHootsuite, str], bootstrap: str, namespace: str
) -> None:
    fake, _ = hootsuite
    fake.messages["m-1"] = "SCHEDULED"
    await poller_stack.worker()
    poller = await start_poller(poller_stack)
    topics = Topics(namespace)
    (scheduled,) = await read_topic(bootstrap, topics.events, 1)
    assert orjson.loads(scheduled.value)["id"] == "hootsuite:message:m-1:SCHEDULED"

    fake.messages["m-1"] = "SENT"
    events = await read_topic(bootstrap, topics.events, 2)
    sent = orjson.loads(events[1].value)
    assert (sent["type"], sent["id"], sent["subject"]) == (
        "com.hootsuite.message.sent",
        "hootsuite:message:m-1:SENT",
        "message/m-1",
    )
    await polls_done(fake, 3)
    assert event_types(await read_all(bootstrap, topics.events)) == [
        "com.hootsuite.message.scheduled",
        "com.hootsuite.message.sent",
    ]
    assert await metric(poller, "hookstream_poller_state_changes_total") == 2

    raw_before = await end_offsets(bootstrap, topics.raw("hootsuite"))
    assert await poller.stopped(signal.SIGTERM) == 0
    await start_poller(poller_stack)
    await polls_done(fake, 3)
    assert await end_offsets(bootstrap, topics.raw("hootsuite")) == raw_before, "a restart re-emits nothing"


async def test_a_state_seen_by_webhook_and_by_poll_is_one_event(
    poller_stack: Stack, hootsuite: tuple[FakeHootsuite, str], bootstrap: str, namespace: str
) -> None:
    fake, _ = hootsuite
    poller_stack.env["HOOKSTREAM_HOOTSUITE_EVENTS_TOKEN"] = EVENTS_TOKEN
    receivers = await poller_stack.receivers()
    worker = await poller_stack.worker()
    webhook = [
        {
            "seq_no": "9",
            "type": "com.hootsuite.messages.event.v1",
            "data": {"state": "SENT", "message": {"id": "m-2"}, "timestamp": "2026-11-28T15:00:00Z"},
        }
    ]
    async with aiohttp.ClientSession() as session:
        url = f"{receivers.url}/webhooks/hootsuite/events/{EVENTS_TOKEN}"
        async with session.post(url, data=orjson.dumps(webhook)) as response:
            assert response.status == 200
    fake.messages["m-2"] = "SENT"
    await start_poller(poller_stack)

    async def merged() -> bool:
        return await metric(worker, "hookstream_duplicates_total") == 1

    await eventually(merged, what="the polled copy to be counted as a duplicate")
    published = await read_all(bootstrap, Topics(namespace).events)
    assert [orjson.loads(r.value)["id"] for r in published] == ["hootsuite:message:m-2:SENT"]


async def test_a_429_storm_slows_polling_without_losing_the_transition(
    poller_stack: Stack, hootsuite: tuple[FakeHootsuite, str], bootstrap: str, namespace: str
) -> None:
    fake, _ = hootsuite
    fake.messages["m-3"] = "SCHEDULED"
    await poller_stack.worker()
    poller = await start_poller(poller_stack)
    await read_topic(bootstrap, Topics(namespace).events, 1)
    fake.failures.extend([429] * 12 + [503] * 2)
    fake.messages["m-3"] = "SENT"
    events = await read_topic(bootstrap, Topics(namespace).events, 2)
    assert orjson.loads(events[1].value)["id"] == "hootsuite:message:m-3:SENT"
    assert fake.answered[429] == 12
    assert await metric(poller, "hookstream_poller_api_errors_total", code="429") == 12
    assert await metric(poller, "hookstream_poller_api_errors_total", code="503") == 2


async def test_the_rotated_refresh_token_is_persisted_across_restarts(
    poller_stack: Stack, hootsuite: tuple[FakeHootsuite, str]
) -> None:
    fake, _ = hootsuite
    poller = await start_poller(poller_stack)
    await polls_done(fake, 1)
    assert fake.refresh_tokens_used == ["rt-0"]
    await poller.stopped(signal.SIGTERM)

    restarted = await start_poller(poller_stack)
    await polls_done(fake, 1)
    assert fake.refresh_tokens_used == ["rt-0", "rt-1"], "the second run used the token the first one stored"
    assert await metric(restarted, "hookstream_poller_token_failures_total") == 0
    assert await metric(restarted, "hookstream_poller_token_valid") == 1


async def test_a_refused_refresh_token_is_loud_and_counted_not_a_crash_loop(
    poller_stack: Stack, hootsuite: tuple[FakeHootsuite, str]
) -> None:
    poller_stack.env["HOOKSTREAM_HOOTSUITE_REFRESH_TOKEN"] = "revoked-token"
    poller = await start_poller(poller_stack)

    async def refused_twice() -> bool:
        return await metric(poller, "hookstream_poller_token_failures_total") >= 2

    await eventually(refused_twice, what="two refused refresh attempts")
    assert poller.process.poll() is None, "the poller keeps running"
    assert await metric(poller, "hookstream_poller_token_valid") == 0
    assert "set HOOKSTREAM_HOOTSUITE_REFRESH_TOKEN to a new token" in poller.log_text()
    assert "revoked-token" not in poller.log_text()
