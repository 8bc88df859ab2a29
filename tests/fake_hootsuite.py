"""A local stand-in for Hootsuite's REST API (we cannot reach the real one from tests): the OAuth2 token
endpoint with single-use refresh tokens, and the message list with its filters, four-week limit and
cursor pages. Tests set its messages and inject 429s and 5xx; it counts what it was asked."""

from __future__ import annotations

import base64
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

CLIENT_ID = "hookstream-test-client"
CLIENT_SECRET = "hookstream-test-secret"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class FakeHootsuite:
    messages: dict[str, str] = field(default_factory=dict)  # message id -> state
    valid_refresh_tokens: set[str] = field(default_factory=lambda: {"rt-0"})
    refresh_tokens_used: list[str] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)  # statuses to answer the next list requests with
    answered: Counter[int] = field(default_factory=Counter)
    list_requests: int = 0
    _access_tokens: set[str] = field(default_factory=set)
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/oauth2/token", self._token)
        app.router.add_get("/v1/messages", self._list)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": "invalid_client"}, status=401)
        form = await request.post()
        token = str(form.get("refresh_token", ""))
        if form.get("grant_type") != "refresh_token" or token not in self.valid_refresh_tokens:
            return web.json_response({"error": "invalid_grant"}, status=400)
        self.valid_refresh_tokens.discard(token)  # single use
        self.refresh_tokens_used.append(token)
        serial = next(self._serial)
        new_refresh, access = f"rt-{serial}", f"at-{serial}"
        self.valid_refresh_tokens.add(new_refresh)
        self._access_tokens.add(access)
        return web.json_response(
            {"access_token": access, "refresh_token": new_refresh, "expires_in": 3600, "token_type": "bearer"}
        )

    async def _list(self, request: web.Request) -> web.Response:
        self.list_requests += 1
        if self.failures:
            status = self.failures.pop(0)
            self.answered[status] += 1
            body = {"errors": [{"code": 1003, "message": "rate limited"}]} if status == 429 else {}
            return web.json_response(body, status=status)
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self._access_tokens:
            return self._answer(401, {"errors": [{"code": 1001}]})
        query = request.query
        try:
            start, end = _parse_time(query["startTime"]), _parse_time(query["endTime"])
            limit = int(query.get("limit", "50"))
        except (KeyError, ValueError):
            return self._answer(400, {"errors": [{"code": 1000, "message": "bad parameters"}]})
        if end - start > timedelta(weeks=4) or not 0 < limit <= 100:
            return self._answer(400, {"errors": [{"code": 1000, "message": "window or limit too large"}]})
        matching = sorted(mid for mid, state in self.messages.items() if state == query.get("state", state))
        offset = int(query.get("cursor", "0"))
        page: list[dict[str, Any]] = [
            {"id": mid, "state": self.messages[mid]} for mid in matching[offset : offset + limit]
        ]
        more = offset + limit < len(matching)
        return self._answer(
            200, {"data": page, "metadata": {"cursor": {"next": str(offset + limit) if more else None}}}
        )

    def _answer(self, status: int, body: dict[str, Any]) -> web.Response:
        self.answered[status] += 1
        return web.json_response(body, status=status)
