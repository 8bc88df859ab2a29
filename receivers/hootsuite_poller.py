"""`hookstream poller`: Hootsuite message states for integrations that get no webhooks.

Every HOOKSTREAM_HOOTSUITE_POLL_INTERVAL seconds it lists the messages in each state that matters over a
sliding window (a week back, three weeks ahead: the API's four-week limit), and for each message whose
state differs from the last one seen writes a raw record to `hookstream.raw.hootsuite` shaped exactly
like a REST-platform webhook batch. The processor cannot tell the two apart, so a state seen both ways
gets the same event id and is published once.

Everything it must not lose lives in the compacted topic `<ns>.internal.hootsuite-poller`: the
single-use refresh token (stored, acks=all, before the access token is used) and the last state of
each message (stored after its raw record is acknowledged: a crash repeats a change, never drops one).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge

from hookstream import clients
from hookstream import headers as H
from hookstream.errors import SettingsError
from hookstream.kafka import DurableProducer, TopicSpec, ensure_topics
from hookstream.settings import Settings
from hookstream.topics import Topics
from hookstream.web import serve_metrics
from receivers.hootsuite_api import (
    REFRESH_MARGIN_S,
    ApiUnavailable,
    Backoff,
    HootsuiteApi,
    TokenRejected,
    Tokens,
)

log = logging.getLogger(__name__)

STATES = ("PENDING_APPROVAL", "SCHEDULED", "SENT", "SEND_FAILED_PERMANENTLY", "REJECTED")
LOOKBACK = timedelta(days=7)
LOOKAHEAD = timedelta(days=21)
BATCH = 100  # elements per raw record, as Hootsuite batches its own webhooks
TOKEN_KEY = b"refresh-token"
MESSAGE_PREFIX = b"message/"
MESSAGE_EVENT = "com.hootsuite.messages.event.v1"
POLL_AUTH = b"oauth2-poll"


class PollerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.polls = Counter(
            "hookstream_poller_polls", "Poll cycles, by outcome", ["outcome"], registry=self.registry
        )
        self.api_errors = Counter(
            "hookstream_poller_api_errors",
            "Hootsuite API failures, by HTTP status or 'network'",
            ["code"],
            registry=self.registry,
        )
        self.state_changes = Counter(
            "hookstream_poller_state_changes",
            "Message state changes written as raw records",
            ["state"],
            registry=self.registry,
        )
        self.token_refreshes = Counter(
            "hookstream_poller_token_refreshes",
            "Access tokens obtained with a refresh token",
            registry=self.registry,
        )
        self.token_failures = Counter(
            "hookstream_poller_token_failures", "Refresh tokens Hootsuite refused", registry=self.registry
        )
        self.token_valid = Gauge(
            "hookstream_poller_token_valid",
            "1 while the poller holds a refresh token Hootsuite accepts",
            registry=self.registry,
        )


@dataclass
class PollerState:
    """What the poller keeps in its compacted topic."""

    refresh_token: str | None = None
    token_origin: str | None = None  # fingerprint of the configured token the stored one descends from
    states: dict[str, str] = field(default_factory=dict)


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def changes(state: PollerState, messages: list[dict[str, Any]]) -> dict[str, str]:
    """Message id → current state, for the messages whose state differs from the last one seen."""
    current: dict[str, str] = {}
    for message in messages:
        message_id, message_state = message.get("id"), message.get("state")
        if isinstance(message_id, str | int) and isinstance(message_state, str) and message_state:
            current[str(message_id)] = message_state
    return {mid: st for mid, st in current.items() if state.states.get(mid) != st}


def webhook_batches(changed: dict[str, str], now: datetime) -> list[bytes]:
    """The changes as REST-platform webhook bodies: JSON arrays of message events, 100 at most each."""
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    elements = [
        {
            "seq_no": str(time.time_ns() + n),
            "type": MESSAGE_EVENT,
            "data": {"state": message_state, "message": {"id": message_id}, "timestamp": stamp},
        }
        for n, (message_id, message_state) in enumerate(sorted(changed.items()))
    ]
    return [orjson.dumps(elements[i : i + BATCH]) for i in range(0, len(elements), BATCH)]


class HootsuitePoller:
    def __init__(self, settings: Settings, metrics: PollerMetrics) -> None:
        assert settings.poller_configured
        self._settings = settings
        self._metrics = metrics
        self._topics = Topics(settings.namespace)
        self._configured_token = settings.hootsuite_refresh_token.reveal()  # type: ignore[union-attr]
        self._state = PollerState()
        self._tokens: Tokens | None = None
        self._producer: DurableProducer | None = None

    async def run(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        secret = self._settings.hootsuite_client_secret
        api = HootsuiteApi(
            self._settings.hootsuite_api_url,
            str(self._settings.hootsuite_client_id),
            secret.reveal() if secret else "",
            session,
            on_error=lambda code: self._metrics.api_errors.labels(code).inc(),
            backoff=Backoff.for_interval(self._settings.hootsuite_poll_interval_s),
        )
        await ensure_topics(self._settings, [self.state_topic_spec()])
        self._state = await self.load_state()
        self._producer = DurableProducer(self._settings, role="hootsuite-poller", linger_ms=0)
        await self._producer.start()
        try:
            while not stop.is_set():
                await self.poll_once(api)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._settings.hootsuite_poll_interval_s)
        finally:
            await self._producer.stop()

    async def poll_once(self, api: HootsuiteApi) -> None:
        try:
            access_token = await self._access_token(api)
            now = datetime.now(tz=UTC)
            messages = [
                message
                for state in STATES
                async for message in api.messages(access_token, state, now - LOOKBACK, now + LOOKAHEAD)
            ]
        except TokenRejected as exc:
            self._metrics.polls.labels("token_rejected").inc()
            log.error("%s; set HOOKSTREAM_HOOTSUITE_REFRESH_TOKEN to a new token and restart the poller", exc)
            return
        except ApiUnavailable as exc:
            self._metrics.polls.labels("api_unavailable").inc()
            log.warning("poll abandoned, next one in %ss: %s", self._settings.hootsuite_poll_interval_s, exc)
            return
        changed = changes(self._state, messages)
        if changed:
            await self._emit(changed, now)
        self._metrics.polls.labels("ok").inc()

    async def _access_token(self, api: HootsuiteApi) -> str:
        if self._tokens is not None and self._tokens.expires_at - time.monotonic() > REFRESH_MARGIN_S:
            return self._tokens.access_token
        origin = fingerprint(self._configured_token)
        stored = self._state.refresh_token if self._state.token_origin == origin else None
        try:
            tokens = await api.refresh(stored or self._configured_token)
        except TokenRejected:
            self._metrics.token_failures.inc()
            self._metrics.token_valid.set(0)
            raise
        await self._store_token(tokens.refresh_token, origin)
        self._tokens = tokens
        self._metrics.token_refreshes.inc()
        self._metrics.token_valid.set(1)
        return tokens.access_token

    async def _store_token(self, refresh_token: str, origin: str) -> None:
        """Durably, before anything else: the old token is spent, and losing this one locks us out."""
        value = orjson.dumps({"token": refresh_token, "origin": origin})
        await self._send_state([(TOKEN_KEY, value)])
        self._state.refresh_token, self._state.token_origin = refresh_token, origin

    async def _emit(self, changed: dict[str, str], now: datetime) -> None:
        assert self._producer is not None
        received_at = str(time.time_ns() // 1_000_000).encode()
        acks = [
            await self._producer.send(
                self._topics.raw("hootsuite"),
                body,
                headers=[
                    (H.SOURCE, b"hootsuite"),
                    (H.ROUTE, b"events"),
                    (H.RECEIVED_AT, received_at),
                    (H.REQUEST_ID, uuid.uuid4().hex.encode()),
                    (H.CONTENT_TYPE, b"application/json"),
                    (H.AUTH, POLL_AUTH),
                ],
            )
            for body in webhook_batches(changed, now)
        ]
        await asyncio.gather(*acks)
        await self._send_state([(MESSAGE_PREFIX + mid.encode(), st.encode()) for mid, st in changed.items()])
        for message_id, message_state in changed.items():
            self._state.states[message_id] = message_state
            self._metrics.state_changes.labels(message_state).inc()
        log.info("state changes written", extra={"count": len(changed)})

    async def _send_state(self, records: list[tuple[bytes, bytes]]) -> None:
        assert self._producer is not None
        topic = self._topics.poller_state
        await asyncio.gather(
            *[await self._producer.send(topic, value, key=key, partition=0) for key, value in records]
        )

    def state_topic_spec(self) -> TopicSpec:
        return TopicSpec(
            self._topics.poller_state,
            partitions=1,
            replication_factor=self._settings.replication_factor,
            config={"cleanup.policy": "compact"},
        )

    async def load_state(self) -> PollerState:
        """Replay the compacted state topic: the last refresh token and the last state of each message."""
        state = PollerState()
        reader = clients.consumer(self._settings, enable_auto_commit=False)
        await reader.start()
        try:
            tp = TopicPartition(self._topics.poller_state, 0)
            reader.assign([tp])
            await reader.seek_to_beginning(tp)
            end = (await reader.end_offsets([tp]))[tp]
            while await reader.position(tp) < end:
                for record in (await reader.getmany(tp, timeout_ms=500)).get(tp, []):
                    _apply(state, record.key or b"", record.value or b"")
        finally:
            await reader.stop()
        log.info("poller state loaded", extra={"count": len(state.states)})
        return state


def _apply(state: PollerState, key: bytes, value: bytes) -> None:
    if key == TOKEN_KEY:
        stored = orjson.loads(value)
        state.refresh_token, state.token_origin = stored["token"], stored["origin"]
    elif key.startswith(MESSAGE_PREFIX):
        state.states[key[len(MESSAGE_PREFIX) :].decode()] = value.decode()


def run(settings: Settings) -> None:
    for name, value in (
        ("HOOKSTREAM_HOOTSUITE_CLIENT_ID", settings.hootsuite_client_id),
        ("HOOKSTREAM_HOOTSUITE_CLIENT_SECRET", settings.hootsuite_client_secret),
        ("HOOKSTREAM_HOOTSUITE_REFRESH_TOKEN", settings.hootsuite_refresh_token),
    ):
        if value is None:
            raise SettingsError(name, "the Hootsuite poller needs it")
    clients.run(settings, _serve(settings))


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    metrics = PollerMetrics()
    runner = await serve_metrics(settings.http_host, settings.poller_port, metrics.registry)
    log.info("Hootsuite poller started", extra={"url": settings.hootsuite_api_url})
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await HootsuitePoller(settings, metrics).run(session, stop)
    finally:
        await runner.cleanup()
