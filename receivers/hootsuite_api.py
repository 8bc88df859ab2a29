"""A small client for the two Hootsuite REST endpoints the poller needs: OAuth2 token refresh and the
message list, within the API's rules (20 requests/s; 429 with no Retry-After; single-use refresh
tokens; at most four weeks between startTime and endTime; cursor pages of at most 100)."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from hookstream.errors import HookstreamError

log = logging.getLogger(__name__)

REQUESTS_PER_SECOND = 10.0  # half the documented 20/s: the poller shares the app's quota
PAGE_LIMIT = 100
MAX_ATTEMPTS = 8
REFRESH_MARGIN_S = 60.0


class TokenRejected(HookstreamError):
    """Hootsuite refused the refresh token: it was used already, revoked or expired. A person must
    issue a new one (HOOKSTREAM_HOOTSUITE_REFRESH_TOKEN); polling cannot go on until then."""


class ApiUnavailable(Exception):
    """The API kept failing (429, 5xx, network) through every retry of one request."""


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: float  # time.monotonic() seconds


class RateLimiter:
    """At most `rate` request starts per second, spaced evenly."""

    def __init__(self, rate: float) -> None:
        self._interval = 1 / rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                await asyncio.sleep(self._next - now)
            self._next = max(now, self._next) + self._interval


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter, so a crowd of clients does not retry in step."""

    base_s: float = 0.5
    cap_s: float = 30.0

    @classmethod
    def for_interval(cls, poll_interval_s: float) -> Backoff:
        """Never wait longer between attempts than between polls: a later poll would ask anyway."""
        return cls(base_s=min(0.5, poll_interval_s / 10), cap_s=min(30.0, poll_interval_s))

    def delay_s(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_s, self.base_s * 2**attempt))  # noqa: S311


class HootsuiteApi:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        session: aiohttp.ClientSession,
        on_error: Callable[[str], None],
        backoff: Backoff,
    ) -> None:
        self._base_url = base_url
        self._auth = aiohttp.BasicAuth(client_id, client_secret)
        self._session = session
        self._limiter = RateLimiter(REQUESTS_PER_SECOND)
        self._on_error = on_error
        self._backoff = backoff

    async def refresh(self, refresh_token: str) -> Tokens:
        """Trade a refresh token for an access token and the next refresh token (single use)."""

        call = functools.partial(
            self._session.post,
            f"{self._base_url}/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=self._auth,
        )
        status, body = await self._request(call, refusals=(400, 401, 403))
        if status != 200:
            raise TokenRejected(
                f"Hootsuite refused the refresh token (HTTP {status}, {body.get('error', '?')})"
            )
        return Tokens(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
            expires_at=time.monotonic() + float(body.get("expires_in", 3600)),
        )

    async def messages(
        self, access_token: str, state: str, start: datetime, end: datetime
    ) -> AsyncIterator[dict[str, Any]]:
        """Every message in `state` between `start` and `end` (at most four weeks apart), page by page."""
        assert end - start <= timedelta(weeks=4)
        params = {
            "startTime": _iso(start),
            "endTime": _iso(end),
            "state": state,
            "limit": str(PAGE_LIMIT),
        }
        headers = {"Authorization": f"Bearer {access_token}"}
        while True:
            call = functools.partial(
                self._session.get, f"{self._base_url}/v1/messages", params=dict(params), headers=headers
            )
            status, body = await self._request(call)
            if status != 200:
                raise ApiUnavailable(f"listing messages answered {status}")
            for message in body.get("data") or []:
                if isinstance(message, dict):
                    yield message
            cursor = ((body.get("metadata") or {}).get("cursor") or {}).get("next")
            if not cursor:
                return
            params["cursor"] = str(cursor)

    async def _request(
        self, call: Callable[[], Awaitable[aiohttp.ClientResponse]], refusals: tuple[int, ...] = ()
    ) -> tuple[int, dict[str, Any]]:
        """One API call, rate-limited, retried with backoff on 429, 5xx and network errors."""
        for attempt in range(MAX_ATTEMPTS):
            await self._limiter.wait()
            try:
                async with await call() as response:
                    status = response.status
                    body = await response.json(content_type=None) if status < 500 else {}
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self._on_error("network")
                log.warning("Hootsuite API unreachable; backing off", extra={"error": type(exc).__name__})
            else:
                if status == 200 or status in refusals:
                    return status, body if isinstance(body, dict) else {}
                self._on_error(str(status))
                if status != 429 and status < 500:
                    return status, body if isinstance(body, dict) else {}
                log.warning("Hootsuite API answered %s; backing off", status, extra={"status": status})
            await asyncio.sleep(self._backoff.delay_s(attempt))
        raise ApiUnavailable(f"no answer after {MAX_ATTEMPTS} attempts")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
