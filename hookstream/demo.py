"""`hookstream demo`: one correctly signed delivery of every kind, sent to a running receiver.

It signs each delivery the way its sender does, with the secrets of the settings, so a run is also a quick
end-to-end check of a deployment: every line should say 200, and `hookstream tail` shows the events.
The payloads are the senders' documented examples (`hookstream/samples`) with their ids replaced by ones
derived from the current time, so that a second run is new to deduplication and is published again.

The signing functions are small and pure (body + secret → headers) so the unit tests can hold them against
our verifiers and against the official Standard Webhooks package. HTTP goes through the standard library:
the CLI must not load aiohttp, and a sender is just an HTTP client. Secrets and URL tokens are never
printed; each line shows the route pattern with `{token}` in place of the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode

import orjson

from hookstream.errors import HookstreamError
from hookstream.settings import Secret, Settings, standard_secret_key

X_SIGNATURE_HEADER = "x-twitter-webhooks-signature"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
USER_AGENT = "hookstream-demo"
TIMEOUT_S = 10.0
_HOOTSUITE_DATE = "%Y-%m-%d-%H-%M-%S"  # the assignment callback's date format
# Straight to the receiver: a demo aimed at localhost must not wander through an HTTP(S)_PROXY.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# -- signing: what each sender computes, body + secret → headers (or the signed form) --


def _b64_hmac_sha256(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def x_crc_answer(secret: str, crc_token: str) -> str:
    """The answer X expects to its CRC challenge: `sha256=<base64 HMAC-SHA256(secret, token)>`."""
    return "sha256=" + _b64_hmac_sha256(secret.encode(), crc_token.encode())


def x_headers(body: bytes, secret: str) -> dict[str, str]:
    """An X delivery's headers: the body's HMAC-SHA256 under the consumer secret, base64, `sha256=`."""
    return {"content-type": JSON, X_SIGNATURE_HEADER: "sha256=" + _b64_hmac_sha256(secret.encode(), body)}


def sso_token(sso_i: str, sso_ts: str, secret: str) -> str:
    """Hootsuite's SSO token: sha512hex(sso_i + sso_ts + shared secret)."""
    return hashlib.sha512(f"{sso_i}{sso_ts}{secret}".encode()).hexdigest()


def hootsuite_callback_body(fields: Mapping[str, str], secret: str, sso_ts: int) -> bytes:
    """The assignment callback as Hootsuite posts it: a form whose own fields carry the signature, so the
    body is what gets signed here (`fields` with a fresh `sso_ts` and its `sso_token`)."""
    signed = dict(fields)
    signed["sso_ts"] = str(sso_ts)
    signed["sso_token"] = sso_token(signed.get("sso_i", ""), str(sso_ts), secret)
    return urlencode(signed).encode()


def standard_headers(body: bytes, secret: Secret, msg_id: str, timestamp: int) -> dict[str, str]:
    """Standard Webhooks v1: HMAC-SHA256 of `{id}.{timestamp}.{body}` under the decoded `whsec_` key."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signature = _b64_hmac_sha256(standard_secret_key(secret), signed)
    return {
        "content-type": JSON,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


# -- payloads: the samples, with ids of this run --


def sample(name: str) -> bytes:
    """A payload of `hookstream/samples`, byte for byte."""
    return resources.files("hookstream.samples").joinpath(name).read_bytes()


def _json_sample(name: str) -> Any:
    return orjson.loads(sample(name))


def x_post(stamp: int) -> bytes:
    """The filtered-stream example, as a post of its own."""
    payload = _json_sample("x_filtered_stream_post.json")
    payload["data"]["id"] = str(stamp)
    return orjson.dumps(payload)


def x_activity(stamp: int) -> bytes:
    """The Account Activity `tweet_create_events` example: new post ids, the reply still pointing at the
    post it answers."""
    payload = _json_sample("x_account_activity_tweet_create.json")
    posts = payload["tweet_create_events"]
    renamed = {post["id_str"]: str(stamp * 10 + n) for n, post in enumerate(posts, start=1)}
    for post in posts:
        post["id_str"] = renamed[post["id_str"]]
        post["id"] = int(post["id_str"])
        if post.get("in_reply_to_status_id_str") in renamed:
            post["in_reply_to_status_id_str"] = renamed[post["in_reply_to_status_id_str"]]
    return orjson.dumps(payload)


def hootsuite_callback_fields(stamp: int, now: datetime) -> dict[str, str]:
    """The assignment callback example as a newly opened assignment of this run (unsigned)."""
    text = sample("hootsuite_callback_form.txt").decode().strip()
    fields = dict(parse_qsl(text, keep_blank_values=True))
    moment = now.strftime(_HOOTSUITE_DATE)
    fields.update(assignmentId=str(stamp), status="OPEN", createdDate=moment, modifiedDate=moment)
    return fields


def hootsuite_batch(stamp: int) -> bytes:
    """The REST webhook batch example (states of two messages and a ping), with new message ids."""
    batch = _json_sample("hootsuite_rest_batch.json")
    messages: dict[str, str] = {}
    for n, element in enumerate(batch, start=1):
        element["seq_no"] = f"{stamp}{n}"
        message = element["data"].get("message")
        if isinstance(message, dict):
            message["id"] = messages.setdefault(message["id"], f"{stamp}{len(messages) + 1}")
    return orjson.dumps(batch)


def hootsuite_stream_event(stamp: int) -> bytes:
    """The `message.sent` stream event example, about a third message (the batch's are 1 and 2)."""
    event = _json_sample("hootsuite_stream_message_sent.json")
    event["data"]["id"] = f"{stamp}3"
    return orjson.dumps(event)


def forum_event(stamp: int) -> bytes:
    """The forum's `user.created` example with an event id of this run."""
    envelope = _json_sample("websitetoolbox_user_created.json")
    envelope["id"] = stamp
    return orjson.dumps(envelope)


def standard_event(stamp: int) -> bytes:
    """The `invoice.paid` example with an invoice of this run."""
    payload = _json_sample("standard_invoice_paid.json")
    payload["data"]["id"] = f"inv_{stamp}"
    return orjson.dumps(payload)


# -- the deliveries --


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request to send. `path` may hold a URL token; `pattern` is what gets printed."""

    kind: str
    pattern: str
    path: str
    body: bytes | None = None  # None: a GET
    headers: Mapping[str, str] = field(default_factory=dict)
    crc_answer: str | None = None  # a CRC check: the response_token the receiver must answer

    @property
    def method(self) -> str:
        return "GET" if self.body is None else "POST"


@dataclass(frozen=True, slots=True)
class Disabled:
    """A sender the settings do not enable, and the setting that would."""

    kind: str
    setting: str


def deliveries(settings: Settings, now_ns: int | None = None) -> list[Delivery | Disabled]:
    """Every demo delivery the settings allow, signed; a `Disabled` for each sender they leave off."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    stamp = now_ns // 1000  # microseconds: unique per run, and a plausible numeric id for every sender
    now = datetime.fromtimestamp(now_ns / 1e9, tz=UTC)
    return [
        *_x(settings, stamp),
        *_hootsuite_callback(settings, stamp, now),
        *_hootsuite_events(settings, stamp),
        *_forum(settings, stamp),
        *_standard(settings, stamp, now),
    ]


def _x(settings: Settings, stamp: int) -> list[Delivery | Disabled]:
    if not settings.x_consumer_secrets:
        return [Disabled("x", "HOOKSTREAM_X_CONSUMER_SECRETS")]
    secret = settings.x_consumer_secrets[0].reveal()
    crc_token = f"demo{stamp}"
    post, activity = x_post(stamp), x_activity(stamp)
    return [
        Delivery(
            "x crc check",
            "/webhooks/x?crc_token=T",
            f"/webhooks/x?crc_token={crc_token}",
            crc_answer=x_crc_answer(secret, crc_token),
        ),
        Delivery("x filtered-stream post", "/webhooks/x", "/webhooks/x", post, x_headers(post, secret)),
        Delivery("x account activity", "/webhooks/x", "/webhooks/x", activity, x_headers(activity, secret)),
    ]


def _hootsuite_callback(settings: Settings, stamp: int, now: datetime) -> list[Delivery | Disabled]:
    if not settings.hootsuite_secrets:
        return [Disabled("hootsuite assignment callback", "HOOKSTREAM_HOOTSUITE_SECRETS")]
    secret = settings.hootsuite_secrets[0].reveal()
    body = hootsuite_callback_body(hootsuite_callback_fields(stamp, now), secret, int(now.timestamp()))
    path = "/webhooks/hootsuite/callback"
    return [Delivery("hootsuite assignment callback", path, path, body, {"content-type": FORM})]


def _hootsuite_events(settings: Settings, stamp: int) -> list[Delivery | Disabled]:
    if settings.hootsuite_events_token is None:
        return [Disabled("hootsuite events", "HOOKSTREAM_HOOTSUITE_EVENTS_TOKEN")]
    path = f"/webhooks/hootsuite/events/{settings.hootsuite_events_token.reveal()}"
    pattern = "/webhooks/hootsuite/events/{token}"
    json = {"content-type": JSON}
    return [
        Delivery("hootsuite rest webhook batch", pattern, path, hootsuite_batch(stamp), json),
        Delivery("hootsuite stream message.sent", pattern, path, hootsuite_stream_event(stamp), json),
    ]


def _forum(settings: Settings, stamp: int) -> list[Delivery | Disabled]:
    if settings.websitetoolbox_token is None:
        return [Disabled("websitetoolbox", "HOOKSTREAM_WEBSITETOOLBOX_TOKEN")]
    path = f"/webhooks/websitetoolbox/{settings.websitetoolbox_token.reveal()}"
    pattern = "/webhooks/websitetoolbox/{token}"
    return [
        Delivery("websitetoolbox user.created", pattern, path, forum_event(stamp), {"content-type": JSON})
    ]


def _standard(settings: Settings, stamp: int, now: datetime) -> list[Delivery | Disabled]:
    if not settings.standard_secrets:
        return [Disabled("standard", "HOOKSTREAM_STANDARD_SECRETS (name=whsec_…)")]
    body = standard_event(stamp)
    timestamp = int(now.timestamp())
    return [
        Delivery(
            f"standard {name} invoice.paid",
            f"/webhooks/standard/{name}",
            f"/webhooks/standard/{name}",
            body,
            standard_headers(body, secrets[0], f"msg_demo_{stamp}_{name}", timestamp),
        )
        for name, secrets in settings.standard_secrets.items()
    ]


# -- sending --


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None  # None: no HTTP answer at all (`error` says why)
    body: bytes = b""
    error: str = ""


def send(base_url: str, delivery: Delivery, timeout_s: float = TIMEOUT_S) -> Answer:
    """Send one delivery; any HTTP status is an answer, only a failed exchange is an error."""
    request = urllib.request.Request(  # noqa: S310 - run() admits only http(s) base URLs
        base_url + delivery.path,
        data=delivery.body,
        headers={"user-agent": USER_AGENT, **delivery.headers},
        method=delivery.method,
    )
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return Answer(response.status, response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return Answer(exc.code, exc.read())
    except (OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return Answer(None, error=str(reason) or type(reason).__name__)


def verdict(delivery: Delivery, answer: Answer) -> tuple[bool, str]:
    """Whether the receiver took the delivery, and the status text to print."""
    if answer.status is None:
        return False, f"no answer: {answer.error}"
    if not 200 <= answer.status < 300:
        return False, str(answer.status)
    if delivery.crc_answer is not None and _response_token(answer.body) != delivery.crc_answer:
        return False, f"{answer.status}, but the CRC answer is wrong"
    return True, str(answer.status)


def _response_token(body: bytes) -> object:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return answer.get("response_token") if isinstance(answer, dict) else None


RUN_ENV = Path(".run") / "demo.env"  # what `make run` writes: the senders' credentials it made up


def senders_configured(settings: Settings) -> bool:
    return bool(
        settings.x_consumer_secrets
        or settings.hootsuite_secrets
        or settings.hootsuite_events_token
        or settings.websitetoolbox_token
        or settings.standard_secrets
    )


def with_run_env(
    settings: Settings, environ: Mapping[str, str], run_env: Path = RUN_ENV, out: TextIO = sys.stdout
) -> Settings:
    """The settings to sign with: the environment's when it configures a sender, else those `make run`
    wrote to `.run/demo.env` in this checkout (so `hookstream demo` works beside `make run` as it is)."""
    if senders_configured(settings) or not run_env.is_file():
        return settings
    lines = (line.partition("=") for line in run_env.read_text().splitlines())
    written = {
        name.strip(): value.strip() for name, sep, value in lines if sep and name.startswith("HOOKSTREAM_")
    }
    print(f"no sender is configured here: using the ones `make run` wrote to {run_env}", file=out)
    return Settings.from_env({**written, **environ})


def default_url(settings: Settings) -> str:
    return f"http://localhost:{settings.http_port}"


def run(settings: Settings, url: str, out: TextIO = sys.stdout) -> int:
    """Send every delivery, one line each; 0 only if some were sent and every one was accepted."""
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise HookstreamError(f"--url must be an http:// or https:// URL, got {url!r}")
    sent = failed = 0
    for item in deliveries(settings):
        if isinstance(item, Disabled):
            print(f"{item.kind:<32} skipped: disabled; set {item.setting} to enable it", file=out)
            continue
        accepted, status = verdict(item, send(base, item))
        sent, failed = sent + 1, failed + (not accepted)
        print(f"{item.kind:<32} {item.method:<4} {item.pattern:<38} {status}", file=out, flush=True)
    if not sent:
        print("nothing sent: no sender is configured (see the settings above)", file=out)
        return 1
    print(f"{sent - failed} of {sent} deliveries accepted; `hookstream tail` shows the events", file=out)
    return 1 if failed else 0
