"""A local stand-in for X API v2 (we cannot reach the real one from tests), behaving as `X_API.md`
records it: bearer token required (401 problem document otherwise), `x-rate-limit-*` headers and 429s,
filtered-stream rules keyed by value (201 on add, DuplicateRule / invalid rules as `errors` of a 2xx,
`data` left out of empty lists, 16-character pagination tokens), webhooks that X creates or re-validates
only after a real CRC GET against the URL, links of the filtered stream to webhooks, and signed
deliveries of matching posts to linked webhooks. It records every write call."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from aiohttp import web

BEARER = "AAAAAAAAAAAAAAAAAAAAAHookstreamTest%2Fbearer%3DT0ken0123456789"
PROBLEMS = "https://api.twitter.com/2/problems/"  # the host captured answers use (X_API.md)
PROBLEM_JSON = "application/problem+json"
WINDOW_LIMIT = 450
NOT_DETAILED = "One or more parameters to your request was invalid."


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def problem(status: int, title: str, detail: str, kind: str = "about:blank", **extra: Any) -> web.Response:
    body = {"title": title, "detail": detail, "type": kind, "status": status, **extra}
    return web.json_response(body, status=status, content_type=PROBLEM_JSON)


def invalid_request(message: str) -> web.Response:
    """X's 400 for webhooks and links: the reason (`CrcValidationFailed: …`) is in `errors[].message`."""
    return problem(
        400, "Invalid Request", NOT_DETAILED, PROBLEMS + "invalid-request", errors=[{"message": message}]
    )


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _matches(value: str, post: dict[str, Any]) -> bool:
    """Keyword rules only: every term in the text (or `from:<username>`, `is:retweet`), `-` negates."""
    data = post["data"]
    users = {user["id"]: user["username"].lower() for user in post.get("includes", {}).get("users", [])}
    facts = {f"from:{users.get(data.get('author_id'), '')}"} | (
        {"is:retweet"}
        if any(ref.get("type") == "retweeted" for ref in data.get("referenced_tweets", []))
        else set()
    )
    for term in value.lower().split():
        negated, term = term.startswith("-"), term.lstrip("-")
        present = term in facts if ":" in term else term in data.get("text", "").lower()
        if present == negated:
            return False
    return True


def _refusal(value: str, by_value: dict[str, str]) -> dict[str, Any] | None:
    """Why X would not create a rule: its value is taken (DuplicateRule, by value whatever the tag), or it
    has only negated terms (one of X's invalid-rule reasons); None when X would create it."""
    if value in by_value:
        return {
            "value": value,
            "id": by_value[value],
            "title": "DuplicateRule",
            "type": PROBLEMS + "duplicate-rules",
        }
    if all(term.startswith("-") for term in value.split()):
        details = ["Rules must contain a non-negation term (at position 1)"]
        return {
            "value": value,
            "details": details,
            "title": "UnprocessableEntity",
            "type": PROBLEMS + "invalid-rules",
        }
    return None


@dataclass
class FakeX:
    consumer_secret: str
    bearer: str = BEARER
    links_shape: str = "links"  # "links": {"data": {"links": [...]}} (X's guide); "list": {"data": [...]}
    webhook_limit: int = 5
    rules: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> {"id", "value", "tag"?}
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: dict[str, list[str]] = field(default_factory=dict)  # webhook id -> fields, as X lists them
    writes: list[str] = field(default_factory=list)  # "METHOD path" of every write call answered 2xx
    answered: Counter[int] = field(default_factory=Counter)
    limited_until: int = 0  # epoch seconds; every request before it is answered 429
    _limit_next_s: int = 0
    crc_checks: list[bool] = field(default_factory=list)  # outcome of every CRC X ran
    clock: Callable[[], float] = time.time  # what "now" is for the rate limit (a test may move it)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1_000_000_000_000_000_001))
    _session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/2/tweets/search/stream/rules", self._list_rules)
        app.router.add_post("/2/tweets/search/stream/rules", self._change_rules)
        app.router.add_get("/2/webhooks", self._list_webhooks)
        app.router.add_post("/2/webhooks", self._create_webhook)
        app.router.add_put("/2/webhooks/{id}", self._validate_webhook)
        app.router.add_delete("/2/webhooks/{id}", self._delete_webhook)
        app.router.add_get("/2/tweets/search/webhooks", self._list_links)
        app.router.add_post("/2/tweets/search/webhooks/{id}", self._link)
        app.router.add_delete("/2/tweets/search/webhooks/{id}", self._unlink)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    def rate_limit_next(self, seconds: int) -> None:
        """The next request exhausts the window: it and every request in the `seconds` after it (whole
        epoch seconds, as x-rate-limit-reset has them) are answered 429. Counted from that request, not
        from now, so how long a command takes to start does not matter."""
        self._limit_next_s = seconds

    def add_rule(self, value: str, tag: str | None = None) -> str:
        rule_id = str(next(self._ids))
        self.rules[rule_id] = {"id": rule_id, "value": value} | ({"tag": tag} if tag else {})
        return rule_id

    @property
    def rule_set(self) -> set[tuple[str, str | None]]:
        return {(rule["value"], rule.get("tag")) for rule in self.rules.values()}

    async def deliver(self, post: dict[str, Any]) -> list[int]:
        """Send `post` with its matching rules to every linked webhook, signed as X signs; the statuses."""
        matching = [
            {"id": r["id"], "tag": r.get("tag", "")}
            for r in self.rules.values()
            if _matches(r["value"], post)
        ]
        if not matching:
            return []
        body = orjson.dumps({**post, "matching_rules": matching})
        headers = {
            "content-type": "application/json",
            "x-twitter-webhooks-signature": signature(self.consumer_secret, body),
        }
        statuses = []
        for webhook_id in self.links:
            async with self._http.post(
                self.webhooks[webhook_id]["url"], data=body, headers=headers
            ) as response:
                statuses.append(response.status)
        return statuses

    # -- plumbing --

    async def _start(self, _: web.Application) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def _stop(self, _: web.Application) -> None:
        await self._http.close()

    @property
    def _http(self) -> aiohttp.ClientSession:
        assert self._session is not None, "the fake's app is not running"
        return self._session

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Auth, then the rate limit, as X checks them; rate-limit headers on every answer."""
        if self._limit_next_s:
            self.limited_until, self._limit_next_s = int(self.clock()) + self._limit_next_s, 0
        if request.headers.get("Authorization") != f"Bearer {self.bearer}":
            response: web.StreamResponse = problem(401, "Unauthorized", "Unauthorized")
        elif self.clock() < self.limited_until:
            response = problem(429, "Too Many Requests", "Too Many Requests")
        else:
            response = await handler(request)
            if request.method != "GET" and response.status < 300:
                self.writes.append(f"{request.method} {request.path}")
        limited = response.status == 429
        reset = self.limited_until if limited else int(self.clock()) + 900
        response.headers["x-rate-limit-limit"] = str(WINDOW_LIMIT)
        response.headers["x-rate-limit-remaining"] = "0" if limited else str(WINDOW_LIMIT - 1)
        response.headers["x-rate-limit-reset"] = str(reset)
        self.answered[response.status] += 1
        return response

    async def _crc(self, url: str) -> bool:
        """X's CRC: a GET with a fresh token, no redirects followed, 200 + the right response_token."""
        token = secrets.token_urlsafe(16)
        expected = (
            "sha256="
            + base64.b64encode(
                hmac.new(self.consumer_secret.encode(), token.encode(), hashlib.sha256).digest()
            ).decode()
        )
        try:
            async with self._http.get(url, params={"crc_token": token}, allow_redirects=False) as response:
                answer = await response.json(content_type=None) if response.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            answer = None
        passed = isinstance(answer, dict) and answer.get("response_token") == expected
        self.crc_checks.append(passed)
        return passed

    # -- rules --

    async def _list_rules(self, request: web.Request) -> web.Response:
        size = int(request.query.get("max_results", "1000"))
        token = request.query.get("pagination_token", "0" * 16)
        if not 1 <= size <= 1000 or len(token) != 16 or not token.isdigit():
            return invalid_request("max_results or pagination_token is invalid")
        start = int(token)
        page = list(self.rules.values())[start : start + size]
        meta: dict[str, Any] = {"sent": _now(), "result_count": len(page)}
        if start + size < len(self.rules):
            meta["next_token"] = f"{start + size:016d}"
        return web.json_response(({"data": page} if page else {}) | {"meta": meta})

    async def _change_rules(self, request: web.Request) -> web.Response:
        body = await request.json()
        delete_all = request.query.get("delete_all") == "true"
        if not isinstance(body, dict) or set(body) - {"add", "delete"} or len(body) + delete_all != 1:
            return invalid_request("Exactly one of add, delete, or ?delete_all=true")
        if "add" in body:
            return self._add_rules(body["add"], dry_run=request.query.get("dry_run") == "true")
        ids = list(self.rules) if delete_all else body["delete"].get("ids", [])
        return self._delete_rules(ids)

    def _add_rules(self, wanted: list[dict[str, str]], *, dry_run: bool) -> web.Response:
        created: list[dict[str, str]] = []
        errors: list[dict[str, Any]] = []
        by_value = {rule["value"]: rule["id"] for rule in self.rules.values()}
        for rule in wanted:
            refused = _refusal(rule["value"], by_value)
            if refused:
                errors.append(refused)
                continue
            new = {"value": rule["value"]} | ({"tag": rule["tag"]} if rule.get("tag") else {})
            new["id"] = by_value[rule["value"]] = str(next(self._ids))
            created.append(new)
        if not dry_run:
            self.rules.update({rule["id"]: rule for rule in created})
        counts = {"created": len(created), "not_created": len(errors)}
        summary = counts | {"valid": len(created), "invalid": len(errors)}
        answer: dict[str, Any] = {"data": created} if created else {}
        answer |= {"meta": {"sent": _now(), "summary": summary}} | ({"errors": errors} if errors else {})
        return web.json_response(answer, status=201 if created and not dry_run else 200)

    def _delete_rules(self, ids: list[str]) -> web.Response:
        missing = [rule_id for rule_id in ids if rule_id not in self.rules]
        for rule_id in ids:
            self.rules.pop(rule_id, None)
        summary = {"deleted": len(ids) - len(missing), "not_deleted": len(missing)}
        answer: dict[str, Any] = {"meta": {"sent": _now(), "summary": summary}}
        if missing:
            nested = [{"parameters": {}, "message": "Rule does not exist"}]
            answer["errors"] = [{"errors": nested, "title": "Invalid Request", "value": i} for i in missing]
        return web.json_response(answer)

    # -- webhooks --

    async def _list_webhooks(self, _: web.Request) -> web.Response:
        found = list(self.webhooks.values())
        return web.json_response(({"data": found} if found else {}) | {"meta": {"result_count": len(found)}})

    async def _create_webhook(self, request: web.Request) -> web.Response:
        url = (await request.json()).get("url")
        if (
            not isinstance(url, str)
            or not 1 <= len(url) <= 200
            or not url.startswith(("http://", "https://"))
        ):
            return invalid_request("UrlValidationFailed: the URL is not valid")
        if any(hook["url"] == url for hook in self.webhooks.values()):
            return invalid_request("DuplicateUrlFailed: the URL is already registered by this app")
        if len(self.webhooks) >= self.webhook_limit:
            return invalid_request("WebhookLimitExceeded: too many webhooks")
        if not await self._crc(url):
            return invalid_request("CrcValidationFailed: Invalid response_token")
        webhook_id = str(next(self._ids))
        hook = {"id": webhook_id, "url": url, "valid": True, "created_at": _now()}
        self.webhooks[webhook_id] = hook
        return web.json_response({"data": hook})

    async def _validate_webhook(self, request: web.Request) -> web.Response:
        hook = self.webhooks.get(request.match_info["id"])
        if hook is None:
            return invalid_request("WebhookIdInvalid: no such webhook")
        hook["valid"] = await self._crc(hook["url"])
        if not hook["valid"]:
            return invalid_request("CrcValidationFailed: Invalid response_token")
        return web.json_response({"data": {"valid": True}})

    async def _delete_webhook(self, request: web.Request) -> web.Response:
        if self.webhooks.pop(request.match_info["id"], None) is None:
            return invalid_request("WebhookIdInvalid: no such webhook")
        self.links.pop(request.match_info["id"], None)
        return web.json_response({"data": {"deleted": True}})

    # -- links --

    async def _list_links(self, _: web.Request) -> web.Response:
        found = [
            {
                "application_id": "29893711",
                "business_user_id": "1877374016438091776",
                "fields": fields,
                "instance_id": "1877375130462289920",
                "webhook_id": webhook_id,
            }
            for webhook_id, fields in self.links.items()
        ]
        return web.json_response(
            {"data": {"links": found}} if self.links_shape == "links" else {"data": found}
        )

    async def _link(self, request: web.Request) -> web.Response:
        webhook_id = request.match_info["id"]
        if webhook_id not in self.webhooks:
            return invalid_request("WebhookIdInvalid: no such webhook")
        self.links[webhook_id] = [
            part for name, value in request.query.items() for part in f"{name}={value}".split(",")
        ]
        return web.json_response({"data": {"provisioned": True}})

    async def _unlink(self, request: web.Request) -> web.Response:
        if self.links.pop(request.match_info["id"], None) is None:
            return invalid_request("WebhookIdInvalid: the webhook is not linked")
        return web.json_response({"data": {"deleted": True}})
