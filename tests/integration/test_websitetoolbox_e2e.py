"""The foundation's promise: a forum webhook in over HTTP, the exact CloudEvent out of a real broker."""

from __future__ import annotations

import aiohttp
import orjson

from hookstream.topics import Topics
from processor.timefmt import from_epoch_ms
from tests.integration.harness import Stack, end_offsets, eventually, metric, read_topic
from tests.support import USER_CREATED, user_created_cloudevent

TOKEN = "forum-token-0123456789abcdef"


async def post(url: str, body: bytes) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers={"Content-Type": "application/json"}) as response,
    ):
        return response.status


async def test_the_forums_user_created_example_arrives_as_this_exact_cloudevent_on_both_topics(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    stack.env["HOOKSTREAM_WEBSITETOOLBOX_TOKEN"] = TOKEN
    receivers = await stack.receivers()
    worker = await stack.worker()
    topics = Topics(namespace)

    assert await post(f"{receivers.url}/webhooks/websitetoolbox/{TOKEN}", USER_CREATED) == 200

    (raw,) = await read_topic(bootstrap, topics.raw("websitetoolbox"), 1)
    assert raw.value == USER_CREATED
    raw_headers = dict(raw.headers)
    assert raw_headers["hs-source"] == b"websitetoolbox"
    assert raw_headers["hs-route"] == b"post"
    assert raw_headers["hs-auth"] == b"path-token"
    assert raw_headers["content-type"] == b"application/json"
    assert len(raw_headers["hs-request-id"]) == 32

    expected = user_created_cloudevent(
        received_at=from_epoch_ms(int(raw_headers["hs-received-at"])),
        raw=f"{topics.raw('websitetoolbox')}/{raw.partition}/{raw.offset}",
    )
    for topic in (topics.events, f"{namespace}.websitetoolbox.user.created"):
        (record,) = await read_topic(bootstrap, topic, 1)
        assert orjson.loads(record.value) == expected
        assert record.key == b"user/181855"
        assert dict(record.headers)["content-type"] == b"application/cloudevents+json"

    async def counted() -> bool:  # the worker counts an event once its batch is committed
        published = await metric(
            worker, "hookstream_events_published_total", type="com.websitetoolbox.user.created"
        )
        return published == 1

    await eventually(counted, what="the event to be counted as published")
    assert await metric(worker, "hookstream_raw_records_total", source="websitetoolbox") == 1


async def test_a_wrong_token_writes_nothing_and_bad_bytes_become_a_dead_letter(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    stack.env["HOOKSTREAM_WEBSITETOOLBOX_TOKEN"] = TOKEN
    receivers = await stack.receivers()
    await stack.worker()
    topics = Topics(namespace)
    raw_topic = topics.raw("websitetoolbox")

    assert (
        await post(f"{receivers.url}/webhooks/websitetoolbox/not-the-token-0123456789", USER_CREATED) == 401
    )
    assert sum((await end_offsets(bootstrap, raw_topic)).values()) == 0

    assert (
        await post(f"{receivers.url}/webhooks/websitetoolbox/{TOKEN}", b'{"id": 1, "type": "user.cre') == 200
    )
    assert sum((await end_offsets(bootstrap, raw_topic)).values()) == 1
    (dead,) = await read_topic(bootstrap, topics.dlq, 1)
    headers = dict(dead.headers)
    assert dead.value == b'{"id": 1, "type": "user.cre'
    assert headers["hs-error"] == b"invalid_json"
    assert headers["hs-error-detail"]
    assert headers["hs-origin"].startswith(f"{raw_topic}/".encode())
    assert headers["hs-source"] == b"websitetoolbox"
