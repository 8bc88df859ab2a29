"""Property-based fuzzing of the receivers (SPEC §1): whatever the method, path, headers or body, no route
answers 5xx or crashes, nothing unauthenticated ever reaches the sink, the X CRC answer is always right, and
an authentic delivery is stored byte for byte.

Every example runs in an event loop of its own (`asyncio.run`) against a fresh app with a `MemorySink`, so
hypothesis drives plain synchronous tests and nothing leaks from one example to the next. Anything logged
at ERROR while an example runs (an exception in a handler, in aiohttp, in a task) fails it too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import hmac
import json
import logging
import string
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import TCPConnector
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook
from yarl import URL

from hookstream.settings import Settings
from receivers.app import RUNNER_OPTIONS, make_app
from receivers.delivery import Delivery
from receivers.metrics import ReceiverMetrics
from receivers.sink import MemorySink
from receivers.sources import enabled_sources

# Made-up credentials; the strategies below never produce them.
X_SECRETS = ("x-consumer-secret-number-one", "x-consumer-secret-number-two")
HOOTSUITE_SECRETS = ("hootsuite-shared-secret-1", "hootsuite-shared-secret-2")
EVENTS_TOKEN = "hootsuite-events-token-0123456789"
FORUM_TOKEN = "forum-token-0123456789abcdef"
STANDARD_SECRETS = (
    "whsec_" + base64.b64encode(bytes(range(32))).decode(),
    "whsec_" + base64.b64encode(b"a rotated standard key!!").decode(),
)
# Small enough that the fuzzer reaches 413 often, big enough for a 4301-digit timestamp in a form.
MAX_BODY = 6144
ENV = {
    "HOOKSTREAM_X_CONSUMER_SECRETS": ",".join(X_SECRETS),
    "HOOKSTREAM_HOOTSUITE_SECRETS": ",".join(HOOTSUITE_SECRETS),
    "HOOKSTREAM_HOOTSUITE_EVENTS_TOKEN": EVENTS_TOKEN,
    "HOOKSTREAM_WEBSITETOOLBOX_TOKEN": FORUM_TOKEN,
    "HOOKSTREAM_STANDARD_SECRETS": ",".join(f"acme={secret}" for secret in STANDARD_SECRETS),
    "HOOKSTREAM_MAX_BODY_BYTES": str(MAX_BODY),
    # Bounds what a body read that never ends costs an example (and shows up as a 408).
    "HOOKSTREAM_READ_TIMEOUT_MS": "2000",
}

# Every webhook route; `{token}` is where a path token goes.
WEBHOOK_ROUTES = {
    "x": "/webhooks/x",
    "hootsuite-callback": "/webhooks/hootsuite/callback",
    "hootsuite-events": "/webhooks/hootsuite/events/{token}",
    "websitetoolbox": "/webhooks/websitetoolbox/{token}",
    "standard": "/webhooks/standard/acme",
}
TOKEN_OF_ROUTE = {"hootsuite-events": EVENTS_TOKEN, "websitetoolbox": FORUM_TOKEN}
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
# Headers that change how the request is framed or its body decoded; they get properties of their own.
FRAMING_HEADERS = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "content-encoding",
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "expect",
        "upgrade",
        "te",
        "trailer",
    }
)
TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
MAX_EXAMPLES = 60


# --- running one exchange against a fresh receiver -------------------------------------------------------


class _ErrorLog(logging.Handler):
    """Collects what is logged at ERROR, except aiohttp's own note on a request its parser refused with a
    400 (a malformed request line or header block), which is aiohttp working as designed."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info is not None else None
        if (
            record.name == "aiohttp.server"
            and record.msg == "Error handling request from %s"
            and isinstance(exc, HttpProcessingError)
            and exc.code == 400
        ):
            return
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info is not None:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str
    deliveries: list[Delivery]
    errors: list[str] = field(default_factory=list)

    def why(self) -> str:
        """What to print when a property fails: the answer and anything logged at ERROR."""
        return f"status {self.status}, body {self.body[:300]!r}, errors logged: {self.errors}"


@dataclass
class Receiver:
    client: TestClient[Any, Any]
    server: TestServer
    sink: MemorySink
    errors: _ErrorLog


@contextlib.asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    """A receiver with every sender enabled, a MemorySink, and a client that never reuses a connection
    (so a connection the server closed after an error cannot fail the next request)."""
    app_settings = Settings.from_env(ENV)
    sink = MemorySink()
    app = make_app(app_settings, enabled_sources(app_settings), sink, ReceiverMetrics())
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    client: TestClient[Any, Any] = TestClient(server, connector=TCPConnector(force_close=True))
    await client.start_server()
    errors = _ErrorLog()
    root = logging.getLogger()
    root.addHandler(errors)
    try:
        yield Receiver(client, server, sink, errors)
    finally:
        root.removeHandler(errors)
        await client.close()


async def _exchange(
    method: str,
    url: str | URL,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    params: Sequence[tuple[str, str]] | None = None,
) -> Answer:
    async with running_receiver() as receiver:
        response = await receiver.client.request(method, url, data=body, headers=headers, params=params)
        payload = await response.read()
        await asyncio.sleep(0)  # let anything the handler left behind run (and log) before we look
        return Answer(
            response.status,
            payload,
            response.headers.get("Content-Type", ""),
            list(receiver.sink.deliveries),
            receiver.errors.lines,
        )


async def _raw_exchange(request: bytes) -> Answer:
    """Send bytes exactly as given (`Connection: close` is expected in them) and read the whole answer."""
    async with running_receiver() as receiver:
        reader, writer = await asyncio.open_connection(receiver.server.host, receiver.server.port)
        try:
            writer.write(request)
            await writer.drain()
            response = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        assert response.startswith(b"HTTP/1."), f"no HTTP answer, got {response[:200]!r}"
        head, _, payload = response.partition(b"\r\n\r\n")
        status_line, *header_lines = head.split(b"\r\n")
        content_type = b""
        for line in header_lines:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-type":
                content_type = value.strip()
        return Answer(
            int(status_line.split(b" ")[1]),
            payload,
            content_type.decode("latin-1"),
            list(receiver.sink.deliveries),
            receiver.errors.lines,
        )


def exchange(
    method: str,
    url: str | URL,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    params: Sequence[tuple[str, str]] | None = None,
) -> Answer:
    return asyncio.run(_exchange(method, url, body=body, headers=headers, params=params))


def raw_exchange(request: bytes) -> Answer:
    return asyncio.run(_raw_exchange(request))


# --- strategies --------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _x_signature(body: bytes, secret: str = X_SECRETS[0]) -> str:
    return "sha256=" + _b64(hmac.new(secret.encode(), body, hashlib.sha256).digest())


def _path_with(route: str, token: str = "") -> URL:
    """The route's URL, with `token` (percent-encoded as needed) in its `{token}` segment."""
    return URL.build(path=WEBHOOK_ROUTES[route].format(token=token))


# Printable Latin-1: everything from U+0020 to U+00FF but the control characters (no CR, LF, NUL, DEL).
latin1_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_categories=["Cc"]))
# Numbers of any length up to aiohttp's 8190-byte header field limit, often at a length where parsers
# change behaviour (int64, float, CPython's 4300-digit int() limit).
digit_runs = st.one_of(
    st.integers(min_value=1, max_value=8000),
    st.sampled_from([19, 20, 309, 310, 4300, 4301, 5000, 8000]),
).map(lambda n: "9" * n)
unix_times = st.integers(min_value=-400, max_value=400).map(lambda delta: str(int(time.time()) + delta))
short_numbers = st.one_of(
    st.integers(min_value=-(10**15), max_value=10**15).map(str),
    unix_times,
    unix_times.map(lambda seconds: seconds + "000"),
    st.text("0123456789", min_size=1, max_size=40),
)
numbers = st.one_of(short_numbers, digit_runs)
header_values = st.one_of(latin1_text, numbers, st.binary(max_size=64).map(_b64))
x_signatures = st.one_of(
    header_values,
    st.binary(max_size=64).map(lambda raw: "sha256=" + _b64(raw)),
    st.binary(min_size=32, max_size=32).map(lambda raw: "sha256=" + _b64(raw)),
    latin1_text.map("sha256=".__add__),
)
standard_signatures = st.one_of(
    header_values,
    st.lists(
        st.tuples(
            st.sampled_from(["v1", "v1a", "v2", "V1", ""]),
            st.one_of(st.binary(min_size=32, max_size=32).map(_b64), st.binary(max_size=40).map(_b64)),
        ).map(",".join),
        max_size=20,
    ).map(" ".join),
)
content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/x-www-form-urlencoded",
            "APPLICATION/X-WWW-FORM-URLENCODED; charset=latin-1",
            "application/cloudevents+json",
            "multipart/form-data; boundary=xyz",
            "text/plain",
            "application/octet-stream",
            ";",
            "",
        ]
    ),
    latin1_text,
)
# Names are lower-cased so a dict never holds one header twice under two spellings.
header_names = st.one_of(
    st.sampled_from(
        [
            "x-twitter-webhooks-signature",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "content-type",
        ]
    ),
    st.text(TCHAR, min_size=1, max_size=30).map(str.lower).filter(lambda name: name not in FRAMING_HEADERS),
)
message_ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)
request_headers = st.builds(
    lambda signed, extra: {**extra, **signed},
    st.fixed_dictionaries(
        {},
        optional={
            "content-type": content_types,
            "x-twitter-webhooks-signature": x_signatures,
            "webhook-id": header_values,
            "webhook-timestamp": st.one_of(numbers, header_values),
            "webhook-signature": standard_signatures,
        },
    ),
    st.dictionaries(header_names, header_values, max_size=5),
)
# Each route's own credential headers, forged: present on every example, so its verifier gets past
# "missing" to the parsing and comparing.
CREDENTIAL_HEADERS: dict[str, st.SearchStrategy[dict[str, str]]] = {
    "x": st.fixed_dictionaries({"x-twitter-webhooks-signature": x_signatures}),
    "standard": st.fixed_dictionaries(
        {
            "webhook-id": st.one_of(message_ids, header_values),
            "webhook-timestamp": st.one_of(unix_times, digit_runs, header_values),
            "webhook-signature": standard_signatures,
        }
    ),
}


def headers_for(route: str) -> st.SearchStrategy[dict[str, str]]:
    credentials = CREDENTIAL_HEADERS.get(route, st.just({}))
    return st.builds(lambda extra, forged: {**extra, **forged}, request_headers, credentials)


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=40),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(st.sampled_from(["sso_i", "sso_ts", "sso_token", "action"]), st.text(max_size=10)),
            children,
            max_size=5,
        ),
    ),
    max_leaves=25,
)
form_fields = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(["sso_i", "sso_ts", "sso_token", "action", "status"]), st.text(max_size=12)
        ),
        st.one_of(st.text(max_size=40), short_numbers),
    ),
    max_size=8,
)
# A Hootsuite callback's SSO fields, all present, with a forged token.
forged_sso_fields = st.fixed_dictionaries(
    {
        "sso_i": st.one_of(st.text(max_size=40), short_numbers),
        "sso_ts": st.one_of(unix_times, digit_runs, latin1_text),
        "sso_token": st.one_of(
            st.binary(min_size=64, max_size=64).map(bytes.hex), st.text(max_size=140), latin1_text
        ),
    },
    optional={"action": st.just("Assignment"), "assignmentId": short_numbers},
)
bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=512),
    st.text(max_size=300).map(str.encode),
    json_values.map(lambda value: json.dumps(value, ensure_ascii=False).encode()),
    form_fields.map(lambda pairs: urlencode(pairs).encode()),
    forged_sso_fields.map(lambda fields: urlencode(fields).encode()),
    forged_sso_fields.map(lambda fields: json.dumps(fields, ensure_ascii=False).encode()),
    st.text(st.sampled_from("ab=&%+;_ \x00\xe9"), max_size=200).map(str.encode),
    st.binary(min_size=MAX_BODY - 16, max_size=MAX_BODY + 2000),  # around and past the limit
)


def wrong_tokens(real: str) -> st.SearchStrategy[str]:
    """Path tokens that are not `real`: near misses and random text. One segment, never a dot segment,
    and no `{`/`}`, which aiohttp's `{token}` pattern does not match (such a path is an unknown route)."""
    near = [real[:-1], real + "0", real.upper(), real[::-1], real[:16], " " + real, real + " ", real * 2]
    segment_chars = st.characters(exclude_characters="/%{}", exclude_categories=["Cs"])
    return st.one_of(
        st.sampled_from(near),
        st.text(segment_chars, min_size=1, max_size=60).filter(lambda text: text not in {".", ".."}),
    ).filter(lambda token: token != real)


def _assert_nothing_delivered(answer: Answer) -> None:
    assert answer.deliveries == [], f"an unauthenticated request was delivered: {answer.why()}"
    assert answer.errors == [], f"errors were logged: {answer.why()}"


def _expected_refusal(body: bytes) -> int:
    return 413 if len(body) > MAX_BODY else 401


# --- 1. no random request on a webhook route is accepted, and none is answered 5xx -----------------------


@pytest.mark.parametrize("route", list(WEBHOOK_ROUTES))
@settings(max_examples=100, deadline=None)
@given(data=st.data(), body=bodies)
def test_a_random_request_to_a_webhook_route_is_refused_401_or_413(
    route: str, data: st.DataObject, body: bytes
) -> None:
    headers = data.draw(headers_for(route), label="headers")
    token = data.draw(wrong_tokens(TOKEN_OF_ROUTE[route]), label="token") if route in TOKEN_OF_ROUTE else ""
    answer = exchange("POST", _path_with(route, token), body=body, headers=headers)
    assert answer.status == _expected_refusal(body), answer.why()
    assert answer.content_type.startswith("application/json"), answer.why()
    _assert_nothing_delivered(answer)


# Header values as raw bytes on the wire: Latin-1 and any other obs-text, not UTF-8 (aiohttp's client
# always encodes UTF-8, so this one writes the request itself).
wire_values = st.binary(max_size=120).map(
    lambda raw: bytes(b for b in raw if 0x20 <= b <= 0x7E or b >= 0x80 or b == 0x09)
)
wire_headers = st.lists(
    st.tuples(header_names.map(str.encode), st.one_of(wire_values, header_values.map(str.encode))),
    max_size=6,
    unique_by=lambda header: header[0],  # a duplicate Content-Type is rightly a 400
)


@settings(max_examples=MAX_EXAMPLES * 2, deadline=None)
@given(
    route=st.sampled_from(list(WEBHOOK_ROUTES)),
    data=st.data(),
    body=bodies.filter(lambda body: len(body) <= MAX_BODY),
    headers=wire_headers,
)
def test_raw_latin1_header_bytes_are_refused_401_too(
    route: str, data: st.DataObject, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    forged = data.draw(CREDENTIAL_HEADERS.get(route, st.just({})), label="credentials")
    token = data.draw(wrong_tokens(TOKEN_OF_ROUTE[route]), label="token") if route in TOKEN_OF_ROUTE else ""
    target = str(_path_with(route, token)).encode("ascii")
    headers = [*((name.encode(), value.encode("latin-1")) for name, value in forged.items())] + [
        (name, value) for name, value in headers if name.decode() not in forged
    ]
    lines = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    request = (
        b"POST " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n" + lines + b"\r\n" + body
    )
    answer = raw_exchange(request)
    assert answer.status == 401, answer.why()
    _assert_nothing_delivered(answer)


content_encodings = st.one_of(
    st.sampled_from(["gzip", "x-gzip", "deflate", "br", "zstd", "compress", "identity", "gzip, deflate"]),
    st.text(TCHAR, min_size=1, max_size=12),
)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(
    route=st.sampled_from(list(WEBHOOK_ROUTES)),
    data=st.data(),
    body=bodies,
    headers=st.fixed_dictionaries(
        {}, optional={"Content-Encoding": content_encodings, "Expect": st.sampled_from(["100-continue", "x"])}
    ),
)
def test_a_content_encoding_or_expect_header_never_gets_a_5xx(
    route: str, data: st.DataObject, body: bytes, headers: dict[str, str]
) -> None:
    """A body the sender says is compressed but is not is the sender's error (4xx), never a 503 that it
    would retry for days; and it is still never delivered."""
    forged = data.draw(CREDENTIAL_HEADERS.get(route, st.just({})), label="credentials")
    token = data.draw(wrong_tokens(TOKEN_OF_ROUTE[route]), label="token") if route in TOKEN_OF_ROUTE else ""
    answer = exchange("POST", _path_with(route, token), body=body, headers={**forged, **headers})
    assert answer.status in {400, 401, 413, 415, 417}, answer.why()
    _assert_nothing_delivered(answer)


# --- 2. any path under /webhooks/, any method: never a 5xx, never a delivery ------------------------------

PATH_PREFIXES = [
    "",
    "x",
    "x/",
    "hootsuite",
    "hootsuite/",
    "hootsuite/callback",
    "hootsuite/callback/",
    "hootsuite/events",
    "hootsuite/events/",
    "websitetoolbox",
    "websitetoolbox/",
    "standard",
    "standard/",
    "standard/acme",
    "standard/acme/",
    "standard/ACME",
    "standard/other",
    "../",
    "./",
    "%2e%2e/",
    "/",
]
encoded_pieces = st.one_of(
    st.text(string.ascii_letters + string.digits + "-._~/", max_size=8),
    st.integers(min_value=0, max_value=255).map(lambda byte: f"%{byte:02X}"),
    st.sampled_from(["..", ".", "//", "%2F", "%2e", "%", "%zz", ";", "@", ":", "!", "$", "&", "'", "(", ")"]),
    st.sampled_from(["*", "+", ",", "=", "?", "?crc_token=", "#", "%00", "%C0%AF", "%ED%A0%80"]),
)
random_paths = st.one_of(
    st.tuples(st.sampled_from(PATH_PREFIXES), st.text(max_size=30)).map(
        lambda parts: URL.build(path="/webhooks/" + "".join(parts))
    ),
    st.tuples(st.sampled_from(PATH_PREFIXES), st.lists(encoded_pieces, max_size=8)).map(
        lambda parts: URL("/webhooks/" + parts[0] + "".join(parts[1]), encoded=True)
    ),
)
query_params = st.lists(
    st.tuples(st.one_of(st.just("crc_token"), st.text(max_size=10)), st.text(max_size=20)), max_size=3
)


@settings(max_examples=MAX_EXAMPLES * 3, deadline=None)
@given(
    method=st.sampled_from(METHODS),
    url=random_paths,
    params=query_params,
    body=st.one_of(bodies, st.just(b"")),
    headers=request_headers,
)
def test_any_path_and_method_under_webhooks_never_gets_a_5xx_nor_delivers(
    method: str, url: URL, params: list[tuple[str, str]], body: bytes, headers: dict[str, str]
) -> None:
    assume(not any(token in str(url) for token in (EVENTS_TOKEN, FORUM_TOKEN)))
    answer = exchange(method, url, body=body, headers=headers, params=params or None)
    assert answer.status in {200, 400, 401, 404, 405, 413}, answer.why()
    assert answer.status != 200 or method == "GET", f"a {method} was accepted: {answer.why()}"
    _assert_nothing_delivered(answer)


# Request targets written byte for byte: any byte a client might put there, percent escapes or not.
target_bytes = st.lists(
    st.one_of(
        st.binary(min_size=1, max_size=4).map(lambda raw: bytes(b for b in raw if b > 0x20 and b != 0x7F)),
        st.integers(min_value=0, max_value=255).map(lambda byte: f"%{byte:02X}".encode()),
        st.sampled_from([b"/", b"..", b"?", b"#", b"%", b"x", b"acme", b"callback", b"events/"]),
    ),
    max_size=12,
).map(b"".join)


@settings(max_examples=MAX_EXAMPLES * 2, deadline=None)
@given(
    method=st.sampled_from(METHODS),
    prefix=st.sampled_from(PATH_PREFIXES),
    rest=target_bytes,
    body=st.binary(max_size=256),
)
def test_any_raw_request_target_under_webhooks_never_gets_a_5xx_nor_delivers(
    method: str, prefix: str, rest: bytes, body: bytes
) -> None:
    target = b"/webhooks/" + prefix.encode() + rest
    assume(not any(token.encode() in target for token in (EVENTS_TOKEN, FORUM_TOKEN)))
    request = (
        method.encode() + b" " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    answer = raw_exchange(request)
    assert answer.status in {200, 400, 401, 404, 405, 413}, answer.why()
    assert answer.status != 200 or method == "GET", f"a {method} was accepted: {answer.why()}"
    _assert_nothing_delivered(answer)


# --- 3. the X CRC challenge is answered right for any token ------------------------------------------------


def expected_response_token(crc_token: str) -> str:
    digest = hmac.new(X_SECRETS[0].encode(), crc_token.encode(), hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


other_params = st.lists(
    st.tuples(st.text(max_size=10).filter(lambda name: name != "crc_token"), st.text(max_size=20)), max_size=3
)


@settings(max_examples=MAX_EXAMPLES * 2, deadline=None)
@given(crc_token=st.text(min_size=1, max_size=400), others=other_params)
def test_the_crc_answer_is_the_hmac_of_any_token_under_the_first_secret(
    crc_token: str, others: list[tuple[str, str]]
) -> None:
    answer = exchange("GET", "/webhooks/x", params=[("crc_token", crc_token), *others])
    assert answer.status == 200, answer.why()
    assert answer.content_type.startswith("application/json"), answer.why()
    assert json.loads(answer.body) == {"response_token": expected_response_token(crc_token)}
    _assert_nothing_delivered(answer)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(empty=st.booleans(), others=other_params)
def test_a_crc_challenge_without_a_token_is_400(empty: bool, others: list[tuple[str, str]]) -> None:
    params = [("crc_token", ""), *others] if empty else others
    answer = exchange("GET", "/webhooks/x", params=params or None)
    assert answer.status == 400, answer.why()
    assert "error" in json.loads(answer.body)
    _assert_nothing_delivered(answer)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(
    query=st.lists(
        st.one_of(
            st.integers(min_value=0, max_value=255).map(lambda byte: f"%{byte:02X}"),
            st.text(string.ascii_letters + string.digits + "-._~+=&;%", max_size=6),
        ),
        max_size=20,
    ).map("".join)
)
def test_a_crc_challenge_with_any_raw_query_bytes_never_gets_a_5xx(query: str) -> None:
    """Invalid UTF-8 or broken escapes in the query: answered from what the server decoded, 200 or 400."""
    target = "/webhooks/x?crc_token=" + query
    answer = raw_exchange(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    token = URL(target, encoded=True).query.get("crc_token", "")
    if token:
        assert answer.status == 200, answer.why()
        assert json.loads(answer.body) == {"response_token": expected_response_token(token)}
    else:
        assert answer.status == 400, answer.why()
    _assert_nothing_delivered(answer)


# --- 4. an authentic delivery is accepted and stored byte for byte ----------------------------------------


def _assert_stored(answer: Answer, body: bytes, topic: str, auth: bytes) -> Delivery:
    assert answer.status == 200, answer.why()
    assert answer.errors == [], answer.why()
    (delivery,) = answer.deliveries
    assert delivery.value == body
    assert delivery.topic == topic
    headers = dict(delivery.headers)
    assert headers["hs-auth"] == auth
    assert all(value.isascii() for value in headers.values()), headers
    return delivery


small_bodies = st.one_of(bodies, st.binary(max_size=MAX_BODY)).filter(lambda body: len(body) <= MAX_BODY)
optional_content_type = st.fixed_dictionaries({}, optional={"Content-Type": content_types})


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(body=small_bodies, secret=st.sampled_from(X_SECRETS), headers=optional_content_type)
def test_an_authentic_x_delivery_of_any_body_is_stored_exactly(
    body: bytes, secret: str, headers: dict[str, str]
) -> None:
    answer = exchange(
        "POST",
        "/webhooks/x",
        body=body,
        headers={**headers, "x-twitter-webhooks-signature": _x_signature(body, secret)},
    )
    _assert_stored(answer, body, "hookstream.raw.x", b"hmac-sha256")


@pytest.mark.parametrize("route", list(TOKEN_OF_ROUTE))
@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(body=small_bodies, headers=optional_content_type)
def test_an_authentic_path_token_delivery_of_any_body_is_stored_exactly(
    route: str, body: bytes, headers: dict[str, str]
) -> None:
    answer = exchange("POST", _path_with(route, TOKEN_OF_ROUTE[route]), body=body, headers=headers)
    source = route.split("-")[0]
    _assert_stored(answer, body, f"hookstream.raw.{source}", b"path-token")


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(
    route=st.sampled_from(["x", "websitetoolbox"]),
    body=small_bodies,
    encoding=st.sampled_from(["identity", "gzip", "x-gzip", "deflate", "br"]),
)
def test_an_authentic_delivery_is_never_stored_decompressed(route: str, body: bytes, encoding: str) -> None:
    """The record is the bytes that came over the wire (the ones X signed), or nothing: a compressed body
    is either kept compressed or refused, never inflated into something the sender did not send."""
    compress: dict[str, Callable[[bytes], bytes]] = {
        "gzip": gzip.compress,
        "x-gzip": gzip.compress,
        "deflate": zlib.compress,
    }
    sent = compress[encoding](body) if encoding in compress else body
    assume(len(sent) <= MAX_BODY)
    headers = {"Content-Encoding": encoding}
    if route == "x":
        headers["x-twitter-webhooks-signature"] = _x_signature(sent)
    answer = exchange("POST", _path_with(route, FORUM_TOKEN), body=sent, headers=headers)
    if encoding == "identity" or answer.status == 200:
        auth = b"hmac-sha256" if route == "x" else b"path-token"
        _assert_stored(answer, sent, f"hookstream.raw.{route}", auth)
    else:
        assert answer.status in {400, 415}, answer.why()
        _assert_nothing_delivered(answer)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(
    body=st.text(max_size=MAX_BODY // 4),  # at most 4 bytes a character: always within MAX_BODY
    msg_id=message_ids,
    secret=st.sampled_from(STANDARD_SECRETS),
    skew_s=st.integers(min_value=-240, max_value=240),
    junk=st.lists(
        st.one_of(
            st.binary(max_size=40).map(lambda raw: "v1," + _b64(raw)),
            st.binary(max_size=40).map(lambda raw: "v2," + _b64(raw)),
            st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30),
        ),
        max_size=7,
    ),
    junk_first=st.booleans(),
    headers=optional_content_type,
)
def test_an_authentic_standard_webhook_of_any_text_body_is_stored_exactly(
    body: str,
    msg_id: str,
    secret: str,
    skew_s: int,
    junk: list[str],
    junk_first: bool,
    headers: dict[str, str],
) -> None:
    """Signed with the official `standardwebhooks` package; unknown or wrong entries beside the right one
    in `webhook-signature` do not matter."""
    sent_at = datetime.now(tz=UTC) + timedelta(seconds=skew_s)
    signature = Webhook(secret).sign(msg_id, sent_at, body)
    entries = [*junk, signature] if junk_first else [signature, *junk]
    raw_body = body.encode()
    answer = exchange(
        "POST",
        "/webhooks/standard/acme",
        body=raw_body,
        headers={
            **headers,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": " ".join(entries),
        },
    )
    delivery = _assert_stored(answer, raw_body, "hookstream.raw.standard", b"standard-v1")
    assert delivery.key == msg_id.encode()
    assert dict(delivery.headers)["hs-http-webhook-id"] == msg_id.encode()


def _sso_token(user_id: str, timestamp: str, secret: str) -> str:
    return hashlib.sha512(f"{user_id}{timestamp}{secret}".encode()).hexdigest()


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(
    user_id=st.text(max_size=40),
    skew_s=st.integers(min_value=-240, max_value=240),
    milliseconds=st.booleans(),
    secret=st.sampled_from(HOOTSUITE_SECRETS),
    extra=st.dictionaries(
        st.text(max_size=12).filter(lambda name: not name.startswith("sso_")),
        st.text(max_size=60),
        max_size=8,
    ),
    as_json=st.booleans(),
)
def test_an_authentic_hootsuite_callback_is_stored_exactly(
    user_id: str, skew_s: int, milliseconds: bool, secret: str, extra: dict[str, str], as_json: bool
) -> None:
    now = int(time.time()) + skew_s
    timestamp = str(now * 1000) if milliseconds else str(now)
    fields = {
        **extra,
        "sso_i": user_id,
        "sso_ts": timestamp,
        "sso_token": _sso_token(user_id, timestamp, secret),
    }
    if as_json:
        body = json.dumps(fields, ensure_ascii=False).encode()
        content_type = "application/json"
    else:
        body = urlencode(list(fields.items())).encode()
        content_type = "application/x-www-form-urlencoded"
    assume(len(body) <= MAX_BODY)
    answer = exchange(
        "POST", "/webhooks/hootsuite/callback", body=body, headers={"Content-Type": content_type}
    )
    _assert_stored(answer, body, "hookstream.raw.hootsuite", b"sso-sha512")
    assert json.loads(answer.body) == {"success": True}
