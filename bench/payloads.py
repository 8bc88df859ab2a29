"""Realistic benchmark input: the senders' example payloads (about 1 KB each), a share of them repeated
as duplicates, with the headers a receiver writes."""

from __future__ import annotations

import random

import orjson

from hookstream.topics import Topics
from tests.fixtures import fixture_bytes
from tests.integration.harness import raw_headers

RawRecord = tuple[str, bytes, dict[str, bytes]]


def _forum(n: int) -> tuple[str, bytes, str]:
    envelope = orjson.loads(fixture_bytes("websitetoolbox/user_created.json"))
    envelope["id"] = n
    envelope["data"]["object"]["userId"] = n
    return "websitetoolbox", orjson.dumps(envelope), "post"


def _x_post(n: int) -> tuple[str, bytes, str]:
    post = orjson.loads(fixture_bytes("x/filtered_stream_post.json"))
    post["data"]["id"] = str(10**18 + n)
    return "x", orjson.dumps(post), "post"


def _hootsuite(n: int) -> tuple[str, bytes, str]:
    batch = orjson.loads(fixture_bytes("hootsuite/rest_batch.json"))[:1]
    batch[0]["data"]["message"]["id"] = str(n)
    return "hootsuite", orjson.dumps(batch), "events"


MAKERS = (_forum, _forum, _x_post, _hootsuite)


def payload(n: int) -> tuple[str, bytes, str]:
    """The n-th distinct delivery of the mix: (source, body, hs-route)."""
    return MAKERS[n % len(MAKERS)](n)


def raw_records(topics: Topics, count: int, duplicates_share: float, seed: int = 7) -> list[RawRecord]:
    """`count` raw records of which about `duplicates_share` repeat an earlier one."""
    rng = random.Random(seed)
    records: list[RawRecord] = []
    distinct = 0
    for _ in range(count):
        n = rng.randrange(distinct) if distinct and rng.random() < duplicates_share else distinct
        distinct += n == distinct
        source, body, route = payload(n)
        records.append((topics.raw(source), body, raw_headers(source, route=route)))
    return records
