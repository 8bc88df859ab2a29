"""Structure-aware fuzzing of raw records: every sender's real payloads and headers, mutated the ways
senders (or anyone who can write a raw topic) get them wrong: long and odd strings, numbers no timestamp
holds, wrong types, deep nesting, missing keys, odd headers. Seeded, so a failure can be replayed.

`unit/test_fuzz_processor.py` runs many records through the pure stages; the integration fuzz test runs
fewer through a real worker, with canaries that must arrive. HOOKSTREAM_FUZZ_RECORDS sets how many.
"""

from __future__ import annotations

import os
import random
import string
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from tests.fixtures import fixture_bytes

JSON_FIXTURES = {
    "websitetoolbox": ["websitetoolbox/user_created.json"],
    "x": [
        "x/filtered_stream_post.json",
        "x/account_activity_favorite.json",
        "x/account_activity_follow.json",
        "x/account_activity_tweet_create.json",
    ],
    "hootsuite": [
        "hootsuite/rest_batch.json",
        "hootsuite/stream_message.json",
        "hootsuite/stream_message_sent.json",
        "hootsuite/callback.json",
    ],
    "standard": ["standard/invoice_paid.json"],
}
FORM = "hootsuite/callback_form.txt"
ODD_NUMBERS = (
    0,
    -1,
    2**31,
    2**53 + 1,
    2**63 - 1,
    2**64 - 1,
    253_402_300_800,
    999_999_999_999_999,
    1e308,
    -0.0,
)
ODD_TEXT = (
    "",
    " ",
    ".",
    "..",
    "a.b",
    "a_b",
    "api.posts",
    "api_posts",
    "é",
    "\u202e",
    "\x00",
    "💥" * 3,
    "raw.x",
)
HEADER_NOISE = (
    b"",
    b"\xff\xfe",
    b"999999999999999",
    b"-1",
    b"1" * 40,
    "é".encode(),
    b"internal",
    b"io",
    b"raw",
)


def fuzz_records(default: int) -> int:
    """How many records a fuzz test runs: HOOKSTREAM_FUZZ_RECORDS, else `default`."""
    return int(os.environ.get("HOOKSTREAM_FUZZ_RECORDS", default))


@dataclass(frozen=True)
class Delivery:
    source: str
    value: bytes
    headers: dict[str, bytes]
    key: bytes | None = None


class Mutator:
    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def deliveries(self, count: int, received_at_ms: int) -> Iterator[Delivery]:
        for _ in range(count):
            yield self.delivery(received_at_ms)

    def delivery(self, received_at_ms: int) -> Delivery:
        source = self.random.choice(sorted(JSON_FIXTURES))
        route = "post"
        if source == "hootsuite":
            route = self.random.choice(["events", "events", "callback"])
        if route == "callback" and self.random.random() < 0.5:
            value, content_type = self._form(fixture_bytes(FORM)), b"application/x-www-form-urlencoded"
        else:
            document = orjson.loads(fixture_bytes(self.random.choice(JSON_FIXTURES[source])))
            value, content_type = self._json(self._value(document, depth=0)), b"application/json"
        headers = {
            "hs-source": source.encode(),
            "hs-route": route.encode(),
            "hs-received-at": str(received_at_ms).encode(),
            "hs-request-id": self.text(32).encode(),
            "content-type": content_type,
        }
        if source == "standard":
            headers["hs-name"] = self.random.choice([b"acme", b"shop", b"io", b"internal", b"a" * 70])
            headers["hs-http-webhook-id"] = f"msg_{self.random.getrandbits(48)}".encode()
        return Delivery(source, value, self._headers(headers), self._key())

    def text(self, length: int) -> str:
        return "".join(self.random.choices(string.ascii_letters + string.digits + "._-", k=length))

    def _value(self, value: Any, depth: int) -> Any:
        """`value` with about one change in eight of its parts (more near the top)."""
        roll = self.random.random()
        if roll < 0.12 / (depth + 1):
            return self._replacement()
        if isinstance(value, dict):
            kept = {k: self._value(v, depth + 1) for k, v in value.items() if self.random.random() > 0.05}
            if self.random.random() < 0.05:
                kept[self.random.choice(ODD_TEXT) or "k"] = self._replacement()
            return kept
        if isinstance(value, list):
            items = [self._value(item, depth + 1) for item in value]
            return items * self.random.choice([1, 1, 1, 0, 3])
        if isinstance(value, str) and roll < 0.2:
            return self._string(value)
        if isinstance(value, int | float) and roll < 0.25:  # numbers are where times and ids hide
            return self.random.choice(ODD_NUMBERS)
        return value

    def _replacement(self) -> Any:
        kind = self.random.randrange(8)
        if kind == 0:
            return self.random.choice(ODD_NUMBERS)
        if kind == 1:
            return self.random.choice(ODD_TEXT)
        if kind == 2:
            return self.text(self.random.choice([249, 250, 300, 5_000]))
        if kind == 3:
            nested: Any = 1
            for _ in range(self.random.choice([10, 300])):
                nested = {"x": nested}
            return nested
        if kind == 4:
            return [None, True, 1.5, "x"]
        if kind == 5:
            return None
        if kind == 6:
            return "user." + self.text(self.random.choice([10, 240, 260])).lower().replace("-", "")
        return {"tag": self.random.choice((*ODD_TEXT, self.text(250)))}

    def _string(self, text: str) -> str:
        kind = self.random.randrange(4)
        if kind == 0:
            return text * self.random.choice([2, 50])
        if kind == 1:
            return text + self.random.choice(ODD_TEXT)
        if kind == 2:
            return text.replace(".", "_")
        return self.text(self.random.choice([1, 249, 260]))

    def _json(self, value: Any) -> bytes:
        try:
            encoded = orjson.dumps(value)
        except orjson.JSONEncodeError:  # deeper than orjson writes: a sender could still send it
            encoded = b'{"x": ' * 300 + b"1" + b"}" * 300
        if self.random.random() < 0.03:
            return encoded[: self.random.randrange(len(encoded) + 1)]
        return encoded

    def _form(self, body: bytes) -> bytes:
        fields = urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
        mutated = [
            (name, self._string(value) if self.random.random() < 0.2 else value)
            for name, value in fields
            if self.random.random() > 0.05
        ]
        return urllib.parse.urlencode(mutated).encode()

    def _headers(self, headers: dict[str, bytes]) -> dict[str, bytes]:
        if self.random.random() < 0.1:
            name = self.random.choice(sorted(headers))
            if self.random.random() < 0.3:
                del headers[name]
            else:
                headers[name] = self.random.choice(HEADER_NOISE)
        return headers

    def _key(self) -> bytes | None:
        return self.random.choice([None, None, None, b"", self.text(300).encode()])
