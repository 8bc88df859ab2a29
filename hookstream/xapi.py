"""A small client of X API v2 for `hookstream x …` (SPEC §9): filtered-stream rules, webhooks and the
filtered stream's webhook links, with the HTTP details in one place.

What X really answers is written down, with sources and open questions, in `X_API.md`; where it is
unverified this client accepts every alternative listed there: `data` left out of an empty list, a rule
add answered 200 or 201, links as `data.links[]` or `data[]`, a failed re-validation as a 400 or as
`200 {"data": {"valid": false}}`, problem documents with or without `detail`, v1.1-style error lists.

The shapes are read by pure functions (`problem`, `rule_add`, `links`, …) so they can be tested against
recorded answers without a server; `XApi` adds the bearer token, the rate-limit wait and pagination.
Only a 429 is retried: X says when to come back (`x-rate-limit-reset`). Other failures are reported
at once: every `hookstream x` command is safe to run again, and a blind retry of a POST could add what
the first attempt already added.

The bearer token goes into one header of one place (`XApi._headers`) and nowhere else: no message,
exception or log line of this module contains it. This module imports aiohttp, so the CLI loads it only
when an `x` command runs.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from hookstream.settings import Secret

RULES = "/2/tweets/search/stream/rules"
WEBHOOKS = "/2/webhooks"
LINKS = "/2/tweets/search/webhooks"
LINK_PARAMS = ("expansions", "tweet.fields", "user.fields", "media.fields", "poll.fields", "place.fields")
RULES_PAGE = 1000  # X's maximum `max_results`: one request for most rule sets
RESET_MARGIN_S = 1.0  # x-rate-limit-reset has whole seconds; come back just after it, not at it
NO_RESET_WAIT_S = 60.0  # a 429 without x-rate-limit-reset (not seen from X, but a proxy may answer so)
USAGE_CAPPED = "/2/problems/usage-capped"  # a monthly cap: waiting minutes does not lift it
TEXT_LIMIT = 300  # how much of a body that is not JSON (a proxy's HTML page) goes into a message

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Problem:
    """An answer X did not do what was asked with: the RFC 7807 fields and every reason given."""

    status: int  # 0: no HTTP answer at all; 2xx: X answered, but did not do all it was asked
    title: str
    detail: str = ""
    type: str = ""
    reasons: tuple[str, ...] = ()  # errors[].message, errors[].details[], nested errors, rule errors

    def lines(self) -> list[str]:
        head = f"X answered {self.status} {self.title}" if self.status >= 400 else self.title
        if self.detail and self.detail != self.title:
            head += f": {self.detail}"
        return [head, *(f"  {reason}" for reason in self.reasons)]


class XApiError(Exception):
    """X refused or could not be reached. Not a HookstreamError: the CLI exits 1 for these (X said no),
    2 for its own usage and settings errors."""

    def __init__(self, problem: Problem, body: object = None) -> None:
        super().__init__("\n".join(problem.lines()))
        self.problem = problem
        self.body = body  # X's answer as parsed JSON, for --json (None when there was none)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Json


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule as it is asked for: X keys rules by `value`; the `tag` names our topic."""

    value: str
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    value: str
    tag: str | None = None

    @property
    def spec(self) -> RuleSpec:
        return RuleSpec(self.value, self.tag)


@dataclass(frozen=True, slots=True)
class RuleAdd:
    """What a rule add did: the rules created (or, in a dry run, that would be) and why others were not."""

    created: tuple[Rule, ...]
    errors: tuple[str, ...]
    body: Json

    def check(self) -> None:
        """Raise XApiError naming every rule X did not take."""
        if self.errors:
            raise XApiError(Problem(200, "X did not create these rules", reasons=self.errors), self.body)


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    url: str
    valid: bool
    created_at: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    webhook_id: str
    fields: tuple[str, ...] = ()


# -- reading X's answers (pure) --


def rate_limit_reset(headers: Mapping[str, str]) -> int | None:
    """`x-rate-limit-reset`: when the window ends, in Unix epoch seconds."""
    value = headers.get("x-rate-limit-reset", "").strip()
    return int(value) if value.isdigit() else None


def reasons(errors: object) -> tuple[str, ...]:
    """Every reason in an `errors` list, however X nests it: `message` (`CrcValidationFailed: …`),
    `details[]` (why a rule is invalid), a nested `errors` list; a rule's errors are prefixed with their
    `title`, the rule's `value` and the `id` of the rule that already has it (DuplicateRule)."""
    found: list[str] = []
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, dict):
            found += _error_lines(error)
    return tuple(found)


def _error_lines(error: Json) -> list[str]:
    own = [str(error["message"])] if error.get("message") else []
    own += [str(detail) for detail in error.get("details") or () if detail]
    own += reasons(error.get("errors"))
    value, rule_id = error.get("value"), error.get("id")
    title = error.get("title") if value or not own else None
    prefix = " ".join(
        part
        for part in (title and str(title), value and repr(value), rule_id and f"(rule {rule_id})")
        if part
    )
    if not own:
        return [prefix] if prefix else []
    return [f"{prefix}: {text}" if prefix else text for text in own]


def problem(status: int, body: object, text: str = "") -> Problem:
    """The problem document X answered with; a body that is not one still gives a readable problem."""
    if not isinstance(body, dict):
        snippet = " ".join(text.split())[:TEXT_LIMIT]
        return Problem(status, _status_phrase(status), snippet)
    title = str(body.get("title") or _status_phrase(status))
    return Problem(
        status,
        title,
        str(body.get("detail") or ""),
        str(body.get("type") or ""),
        reasons(body.get("errors")),
    )


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _object(body: Json, key: str) -> Json:
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def _items(body: Json, key: str = "data") -> list[Json]:
    """A list X may leave out when it is empty."""
    items = body.get(key)
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def rules(body: Json) -> list[Rule]:
    return [
        Rule(str(item["id"]), str(item["value"]), item.get("tag") or None)
        for item in _items(body)
        if "id" in item and "value" in item
    ]


def rule_add(body: Json) -> RuleAdd:
    """A rule add's answer. Rules X did not create come back in `errors` of a 2xx (DuplicateRule by
    value, invalid rules with `details`), not as an error status."""
    return RuleAdd(tuple(rules(body)), reasons(body.get("errors")), body)


def rule_delete_failures(body: Json) -> tuple[str, ...]:
    summary = _object(_object(body, "meta"), "summary")
    failed = reasons(body.get("errors"))
    if not failed and summary.get("not_deleted"):
        failed = (f"{summary['not_deleted']} rule(s) not deleted",)
    return failed


def webhook(item: Json) -> Webhook:
    return Webhook(str(item["id"]), str(item.get("url", "")), bool(item.get("valid")), item.get("created_at"))


def webhooks(body: Json) -> list[Webhook]:
    return [webhook(item) for item in _items(body) if "id" in item]


def links(body: Json) -> list[Link]:
    """Filtered-stream links as `{"data": {"links": [...]}}` (X's guide) or `{"data": [...]}` (OpenAPI
    2.167). Only `webhook_id` is relied on; `fields` is shown when present."""
    data = body.get("data")
    items = _items(data, "links") if isinstance(data, dict) else _items(body)
    return [
        Link(str(item["webhook_id"]), tuple(str(f) for f in item.get("fields") or ()))
        for item in items
        if "webhook_id" in item
    ]


def validated(body: Json) -> bool:
    """A re-validation's answer: `{"data": {"valid": …}}`; the older `{"data": {"attempted": true}}`
    says nothing about the outcome, so it counts as valid only when X does not say otherwise."""
    data = body.get("data")
    return isinstance(data, dict) and bool(data.get("valid", data.get("attempted", False)))


# -- talking to X --


def env_proxy(url: str) -> str | None:
    """The proxy `HTTPS_PROXY`/`HTTP_PROXY` name for `url`, unless `NO_PROXY` exempts its host. Taken
    from the standard library rather than aiohttp's `trust_env`, which would also read ~/.netrc and then
    refuse our Authorization header."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


Notify = Callable[[str], None]
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class XApi:
    """X API v2 over one aiohttp session. `notify` hears about rate-limit waits; `sleep` and `clock`
    are there so tests can watch a wait without taking it."""

    session: aiohttp.ClientSession
    base_url: str
    token: Secret
    notify: Notify
    max_wait_s: float = 900.0
    sleep: Sleep = asyncio.sleep
    clock: Callable[[], float] = time.time
    proxy: str | None = None

    async def call(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: Json | None = None
    ) -> Answer:
        """One API call; a 429 is waited out until `x-rate-limit-reset` (at most `max_wait_s` in all
        for this call), any other status of 400 and above raises XApiError."""
        waited = 0.0
        while True:
            status, parsed, text, reset = await self._send(method, path, params, body)
            if status == 429:
                waited += await self._wait_out(method, path, problem(status, parsed, text), reset, waited)
                continue
            if status >= 400:
                raise XApiError(problem(status, parsed, text), parsed)
            if not isinstance(parsed, dict):
                snippet = " ".join(text.split())[:TEXT_LIMIT]
                raise XApiError(Problem(status, f"X answered {status} with no JSON object", snippet))
            return Answer(status, parsed)

    async def _send(
        self, method: str, path: str, params: Mapping[str, str] | None, body: Json | None
    ) -> tuple[int, object, str, int | None]:
        data = orjson.dumps(body) if body is not None else None
        try:
            async with self.session.request(
                method,
                self.base_url + path,
                params=params,
                data=data,
                headers=self._headers(body),
                proxy=self.proxy,
            ) as response:
                text = await response.text(errors="replace")
                return response.status, _json_or_none(text), text, rate_limit_reset(response.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise XApiError(
                Problem(0, f"no answer from {self.base_url} to {method} {path}: {reason}")
            ) from None

    def _headers(self, body: Json | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token.reveal()}", "Accept": "application/json"}
        return headers | ({"Content-Type": "application/json"} if body is not None else {})

    async def _wait_out(
        self, method: str, path: str, limited: Problem, reset: int | None, waited: float
    ) -> float:
        if limited.type.endswith(USAGE_CAPPED):
            raise XApiError(limited)
        now = self.clock()
        wait = max(reset - now, 0.0) + RESET_MARGIN_S if reset is not None else NO_RESET_WAIT_S
        until = datetime.fromtimestamp(now + wait, UTC).strftime("%H:%M:%S UTC")
        if waited + wait > self.max_wait_s:
            note = f"rate limited on {method} {path} until {until}, longer than --max-wait allows"
            raise XApiError(Problem(429, limited.title, note, limited.type, limited.reasons))
        source = "x-rate-limit-reset" if reset is not None else "no x-rate-limit-reset given"
        self.notify(f"X rate limit on {method} {path}: waiting {wait:.0f} s until {until} ({source})")
        await self.sleep(wait)
        return wait

    # -- filtered-stream rules --

    async def rules(self, page_size: int = RULES_PAGE) -> list[Rule]:
        """Every rule, page after page (`meta.next_token`)."""
        found: list[Rule] = []
        token: str | None = None
        while True:
            params = {"max_results": str(page_size)} | ({"pagination_token": token} if token else {})
            body = (await self.call("GET", RULES, params=params)).body
            found += rules(body)
            token = _object(body, "meta").get("next_token")
            if not token:
                return found

    async def add_rules(self, wanted: Sequence[RuleSpec], *, dry_run: bool = False) -> RuleAdd:
        add = [{"value": rule.value} | ({"tag": rule.tag} if rule.tag else {}) for rule in wanted]
        params = {"dry_run": "true"} if dry_run else None
        return rule_add((await self.call("POST", RULES, params=params, body={"add": add})).body)

    async def delete_rules(self, ids: Sequence[str]) -> Json:
        """Delete rules by id; raises XApiError naming every rule X did not delete."""
        body = (await self.call("POST", RULES, body={"delete": {"ids": list(ids)}})).body
        failed = rule_delete_failures(body)
        if failed:
            raise XApiError(Problem(200, "X did not delete these rules", reasons=failed), body)
        return body

    # -- webhooks --

    async def webhooks(self) -> tuple[list[Webhook], Json]:
        params = {"webhook_config.fields": "created_at,id,url,valid"}
        body = (await self.call("GET", WEBHOOKS, params=params)).body
        return webhooks(body), body

    async def create_webhook(self, url: str) -> tuple[Webhook, Json]:
        """Register `url`; X runs its CRC against it before it answers."""
        answer = await self.call("POST", WEBHOOKS, body={"url": url})
        data = _object(answer.body, "data") or answer.body  # OpenAPI ≤ 2.166: the object without `data`
        if "id" not in data:
            raise XApiError(Problem(answer.status, "Unexpected answer", "no webhook id in it"), answer.body)
        return webhook(data), answer.body

    async def validate_webhook(self, webhook_id: str) -> tuple[bool, Json]:
        """Ask X to run the CRC again (and re-enable the webhook when it passes)."""
        body = (await self.call("PUT", f"{WEBHOOKS}/{webhook_id}")).body
        return validated(body), body

    async def delete_webhook(self, webhook_id: str) -> Json:
        return (await self.call("DELETE", f"{WEBHOOKS}/{webhook_id}")).body

    # -- the filtered stream's webhook links --

    async def links(self) -> tuple[list[Link], Json]:
        body = (await self.call("GET", LINKS)).body
        return links(body), body

    async def link(self, webhook_id: str, params: Mapping[str, str]) -> Json:
        return (await self.call("POST", f"{LINKS}/{webhook_id}", params=params)).body

    async def unlink(self, webhook_id: str) -> Json:
        return (await self.call("DELETE", f"{LINKS}/{webhook_id}")).body


def _json_or_none(text: str) -> object:
    try:
        return orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return None
