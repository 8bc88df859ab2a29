"""examples/consumer.py against the real broker: forum sign-ups in over HTTP, through the receivers and a
worker, each welcomed once; a redelivered event changes nothing; a restart resumes after what it
committed."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import orjson

from tests.contract import ROOT, assert_publishable
from tests.integration.harness import Stack, caught_up, eventually, produce, read_topic
from tests.support import forum_event

TOKEN = "forum-token-0123456789abcdef"


def _welcomed(db: Path) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as connection:
        try:
            return connection.execute("SELECT user_id, event_id FROM welcome ORDER BY event_id").fetchall()
        except sqlite3.OperationalError:  # the service has not created its tables yet
            return []


async def _welcomes(process: subprocess.Popen[bytes], db: Path, count: int) -> bool:
    assert process.poll() is None, f"the consumer exited with {process.returncode}"
    return len(_welcomed(db)) == count


def _start(stack: Stack, db: Path, run: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "consumer.py")],
        env=stack.environment({"WELCOME_DB": str(db)}),
        stdout=(stack.workdir / f"consumer-{run}.log").open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(30)


async def _deliver(url: str, body: bytes) -> None:
    async with aiohttp.ClientSession() as session, session.post(url, data=body) as response:
        assert response.status == 200


async def test_the_example_consumer_welcomes_each_new_user_once(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    stack.env["HOOKSTREAM_WEBSITETOOLBOX_TOKEN"] = TOKEN
    receivers = await stack.receivers()
    await stack.worker()
    url = f"{receivers.url}/webhooks/websitetoolbox/{TOKEN}"
    topic = f"{namespace}.websitetoolbox.user.created"
    group = f"{namespace}-reader-welcome"
    db = stack.workdir / "welcome.sqlite3"
    for body in (forum_event(1001, 501), forum_event(1002, 502), forum_event(1001, 501)):
        await _deliver(url, body)
    published = await read_topic(bootstrap, topic, 2)
    for record in published:
        assert_publishable(orjson.loads(record.value))

    first = _start(stack, db, 1)
    try:
        await eventually(lambda: _welcomes(first, db, 2), what="two welcomes")
        copy = published[0]  # delivered again, as after a consumer crash or a replay
        await produce(bootstrap, [(topic, copy.value, dict(copy.headers), copy.partition)])
        await eventually(lambda: caught_up(bootstrap, group, topic), what="the copy to be committed")
    finally:
        assert _stop(first) == 0
    assert _welcomed(db) == [("501", "websitetoolbox:1001"), ("502", "websitetoolbox:1002")]
    assert "already handled websitetoolbox:1001" in (stack.workdir / "consumer-1.log").read_text()

    await _deliver(url, forum_event(1003, 503))
    second = _start(stack, db, 2)
    try:
        await eventually(lambda: _welcomes(second, db, 3), what="the third welcome")
        await eventually(lambda: caught_up(bootstrap, group, topic), what="the third to be committed")
    finally:
        assert _stop(second) == 0
    log = (stack.workdir / "consumer-2.log").read_text()
    assert "welcomed websitetoolbox:1003" in log
    assert "already handled" not in log, "a restart resumes after what the first run committed"
