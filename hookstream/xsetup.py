"""`hookstream x crc-check` and `hookstream x setup`: make X match a rules file, in the three steps of
X's filtered-stream webhook guide (rules, webhook, link), and show each change.

Setup is declarative and idempotent: it reads what X has, plans the difference with pure functions
(`plan_rules`), and writes only that difference, so a second run sends no write call at all. Before any
write it answers a CRC challenge the way X will (`crc_check`): X marks a webhook invalid at once on a wrong
answer, a redirect or a TLS error, and the error it then gives is much harder to act on than ours. A rule
value X already has under another tag is a conflict: X keys rules by value, so the only fix is delete and
add, which loses posts in between; setup does that only when `--prune` says the file is the whole truth.
"""

from __future__ import annotations

import secrets
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

from hookstream.demo import x_crc_answer
from hookstream.errors import HookstreamError
from hookstream.settings import Secret
from hookstream.topics import Topics, Unroutable
from hookstream.xapi import LINK_PARAMS, Json, Rule, RuleSpec, Webhook, XApi, env_proxy

CRC_TIMEOUT_S = 10.0  # X's own limit is not published (3 s in its legacy docs); past 10 s is broken anyway
CRC_SLOW_S = 3.0
URL_LIMIT = 200  # X refuses longer webhook URLs


class SetupStopped(Exception):
    """Setup found something it must not paper over (a failed CRC check, a rule conflict): exit 1."""


# -- the rules file --


def load_rules(path: Path) -> list[RuleSpec]:
    """`[[rule]]` tables with `value` and an optional `tag`; a bad file is a usage error naming the rule."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise HookstreamError(f"cannot read the rules file {path}: {exc}") from None
    unknown = set(document) - {"rule"}
    entries = document.get("rule", [])
    if unknown or not isinstance(entries, list):
        raise HookstreamError(f"{path}: expected only [[rule]] tables, found {sorted(unknown) or 'rule'}")
    wanted = [_rule_entry(path, n, entry) for n, entry in enumerate(entries, start=1)]
    seen: set[str] = set()
    for spec in wanted:
        if spec.value in seen:
            raise HookstreamError(f"{path}: the value {spec.value!r} appears twice (X keys rules by value)")
        seen.add(spec.value)
    return wanted


def _rule_entry(path: Path, n: int, entry: object) -> RuleSpec:
    where = f"{path}: rule {n}"
    if not isinstance(entry, dict) or set(entry) - {"value", "tag"}:
        raise HookstreamError(f"{where}: a [[rule]] has `value` and optionally `tag`, nothing else")
    value, tag = entry.get("value"), entry.get("tag")
    if not isinstance(value, str) or not value.strip():
        raise HookstreamError(f"{where}: `value` must be a non-empty string")
    if tag is not None and not isinstance(tag, str):
        raise HookstreamError(f"{where}: `tag` must be a string")
    return RuleSpec(value, tag or None)


# -- the plan (pure) --


@dataclass(frozen=True, slots=True)
class RulePlan:
    add: tuple[RuleSpec, ...] = ()
    delete: tuple[Rule, ...] = ()  # not in the file (--prune), or replaced
    replaced: tuple[tuple[Rule, RuleSpec], ...] = ()  # X's rule, the file's (--prune)
    conflicts: tuple[tuple[Rule, RuleSpec], ...] = ()  # the same, without --prune: nothing may change
    kept: tuple[Rule, ...] = ()  # on X, not in the file, left alone (no --prune)
    same: tuple[Rule, ...] = ()

    @property
    def writes(self) -> bool:
        return bool(self.add or self.delete)


def plan_rules(wanted: Sequence[RuleSpec], current: Sequence[Rule], *, prune: bool) -> RulePlan:
    """What to change so that X has every wanted rule (and, with `prune`, no other)."""
    on_x = {rule.value: rule for rule in current}
    wanted_values = {spec.value for spec in wanted}
    add = [spec for spec in wanted if spec.value not in on_x]
    same = [on_x[s.value] for s in wanted if s.value in on_x and on_x[s.value].spec == s]
    differing = [(on_x[s.value], s) for s in wanted if s.value in on_x and on_x[s.value].spec != s]
    others = [rule for rule in current if rule.value not in wanted_values]
    if not prune:
        return RulePlan(tuple(add), (), (), tuple(differing), tuple(others), tuple(same))
    return RulePlan(
        add=tuple(add) + tuple(spec for _, spec in differing),
        delete=tuple(others) + tuple(rule for rule, _ in differing),
        replaced=tuple(differing),
        same=tuple(same),
    )


def url_warnings(url: str) -> list[str]:
    """Why the real X would refuse this webhook URL (it takes only https, without a port)."""
    parts = urlsplit(url)
    found = []
    if parts.scheme != "https":
        found.append(f"X accepts only https:// webhook URLs; {url} is {parts.scheme or 'not a URL'}")
    if parts.port is not None:
        found.append(f"X refuses webhook URLs with a port; {url} has :{parts.port}")
    if len(url) > URL_LIMIT:
        found.append(f"X refuses webhook URLs over {URL_LIMIT} characters; this one has {len(url)}")
    return found


def same_url(ours: str, theirs: str) -> bool:
    """Whether X's webhook is the one for our URL, however X writes it back (case of scheme and host,
    a trailing slash)."""

    def canonical(url: str) -> tuple[str, str, str]:
        parts = urlsplit(url)
        return (
            parts.scheme.lower(),
            parts.netloc.lower(),
            urlunsplit(("", "", parts.path.rstrip("/"), parts.query, "")),
        )

    return canonical(ours) == canonical(theirs)


def link_params(query: str) -> dict[str, str]:
    """`--link-fields 'expansions=author_id&user.fields=username,name'` as X's link query parameters."""
    params: dict[str, str] = {}
    for part in filter(None, query.split("&")):
        name, sep, value = part.partition("=")
        if not sep or name not in LINK_PARAMS or not value:
            raise HookstreamError(f"--link-fields: expected NAME=VALUE with NAME in {', '.join(LINK_PARAMS)}")
        params[name] = value
    return params


def _tag_text(tag: str | None) -> str:
    return f"tag {tag}" if tag else "no tag"


def rule_text(rule: Rule | RuleSpec, topics: Topics | None = None) -> str:
    """A rule, and with `topics` where its posts go: its tag's topic, or none of their own (the firehose
    and `x.post.matched` only) for a rule without a tag or with one that can be no topic name."""
    ident = f" (rule {rule.id})" if isinstance(rule, Rule) and rule.id else ""
    text = f"{rule.value!r} {f'tag {rule.tag}' if rule.tag else 'without a tag'}{ident}"
    if topics is None:
        return text
    topic = topics.for_tag(rule.tag) if rule.tag else None
    if topic is None:
        return f"{text} → no tag topic"
    if isinstance(topic, Unroutable):
        return f"{text} → no tag topic ({topic.value})"
    return f"{text} → {topic}"


# -- the CRC check --


@dataclass(frozen=True, slots=True)
class CrcResult:
    url: str
    ok: bool
    reason: str
    status: int | None = None
    elapsed_ms: float | None = None

    def as_json(self) -> Json:
        return {"url": self.url, "ok": self.ok, "status": self.status, "reason": self.reason} | (
            {"elapsed_ms": round(self.elapsed_ms, 1)} if self.elapsed_ms is not None else {}
        )


def crc_verdict(status: int, location: str | None, body: bytes, expected: str) -> tuple[bool, str]:
    """Judge a CRC answer as X does (pure): 200 with the right `response_token`, nothing else."""
    if 300 <= status < 400:
        return False, f"answered {status} (redirect to {location}); X does not follow redirects"
    if status == 404:
        return False, "answered 404: is HOOKSTREAM_X_CONSUMER_SECRETS set where the receivers run?"
    if status != 200:
        return False, f"answered {status}, X expects 200"
    try:
        answer: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False, 'answered 200 without JSON; X expects {"response_token": "sha256=…"}'
    token = answer.get("response_token") if isinstance(answer, dict) else None
    if token != expected:
        return False, (
            "the response_token does not match the first HOOKSTREAM_X_CONSUMER_SECRETS secret: the "
            "receivers answer with another secret, and X would mark the webhook invalid"
        )
    return True, "answered 200 with the right response_token"


async def crc_check(session: aiohttp.ClientSession, url: str, secret: Secret) -> CrcResult:
    """Send a fresh random CRC challenge to `url` and check the answer against `secret`."""
    token = secrets.token_urlsafe(24)
    started = time.monotonic()
    try:
        async with session.get(
            url,
            params={"crc_token": token},
            allow_redirects=False,
            proxy=env_proxy(url),
            timeout=aiohttp.ClientTimeout(total=CRC_TIMEOUT_S),
        ) as response:
            status, location, body = response.status, response.headers.get("Location"), await response.read()
    except aiohttp.ClientSSLError as exc:
        return CrcResult(url, False, f"TLS error ({exc}); X marks the webhook invalid at once on one")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return CrcResult(url, False, f"no answer: {exc or type(exc).__name__}")
    elapsed = time.monotonic() - started
    ok, reason = crc_verdict(status, location, body, x_crc_answer(secret.reveal(), token))
    if ok and elapsed > CRC_SLOW_S:
        reason += f", but took {elapsed:.1f} s: X may give up waiting"
    return CrcResult(url, ok, reason, status, elapsed * 1000)


# -- setup --


@dataclass
class Report:
    """The changes setup made, each shown as it happens and kept for --json."""

    say: Callable[[str], None]
    changes: list[Json] = field(default_factory=list)

    def change(self, step: str, text: str, answer: object = None) -> None:
        self.changes.append({"step": step, "change": text, "answer": answer})
        self.say(f"{step:<8} {text}")

    def note(self, step: str, text: str) -> None:
        self.say(f"{step:<8} {text}")


@dataclass(frozen=True, slots=True)
class Desired:
    url: str
    rules: tuple[RuleSpec, ...]
    rules_file: str
    prune: bool
    link_params: Mapping[str, str]
    topics: Topics


async def setup(api: XApi, secret: Secret, desired: Desired, report: Report) -> Webhook:
    """Make X match `desired`; raises SetupStopped or XApiError when it cannot (exit 1)."""
    crc = await crc_check(api.session, desired.url, secret)
    if not crc.ok:
        raise SetupStopped(f"crc-check {desired.url}: {crc.reason}; nothing was changed at X")
    report.note("crc", f"{desired.url} {crc.reason}")
    await _rules(api, desired, report)
    hook = await _webhook(api, desired.url, report)
    await _link(api, hook, desired.link_params, report)
    return hook


async def _rules(api: XApi, desired: Desired, report: Report) -> None:
    plan = plan_rules(desired.rules, await api.rules(), prune=desired.prune)
    if plan.conflicts:
        lines = [
            f"{rule.value!r}: X has it with {_tag_text(rule.tag)} (rule {rule.id}), "
            f"{desired.rules_file} says {_tag_text(spec.tag)}"
            for rule, spec in plan.conflicts
        ]
        raise SetupStopped(
            "rule conflicts (X keys rules by value; --prune replaces them, losing posts in between):\n  "
            + "\n  ".join(lines)
        )
    for rule in plan.kept:
        report.note("rules", f"kept {rule_text(rule, desired.topics)}: not in the file (--prune deletes it)")
    if plan.delete:
        answer = await api.delete_rules([rule.id for rule in plan.delete])
        replaced = {rule.id for rule, _ in plan.replaced}
        for rule in plan.delete:
            why = "replaced" if rule.id in replaced else "not in the file"
            report.change("rules", f"- deleted {rule_text(rule)} ({why})", answer)
    if plan.add:
        added = await api.add_rules(plan.add)
        for rule in added.created:
            report.change("rules", f"+ added {rule_text(rule, desired.topics)}", added.body)
        added.check()
    if not plan.writes:
        report.note("rules", f"unchanged: {len(plan.same)} rule(s) as in {desired.rules_file}")


async def _webhook(api: XApi, url: str, report: Report) -> Webhook:
    hooks, _ = await api.webhooks()
    hook = next((hook for hook in hooks if same_url(url, hook.url)), None)
    if hook is None:
        hook, answer = await api.create_webhook(url)
        report.change("webhook", f"+ created {hook.id} for {url} (X's CRC passed)", answer)
    elif not hook.valid:
        valid, answer = await api.validate_webhook(hook.id)
        if not valid:
            raise SetupStopped(f"webhook {hook.id}: X ran the CRC again and still finds {url} invalid")
        report.change("webhook", f"~ re-validated {hook.id} (X listed it invalid)", answer)
    else:
        report.note("webhook", f"unchanged: {hook.id} for {url} is valid")
    return Webhook(hook.id, url, True, hook.created_at)


async def _link(api: XApi, hook: Webhook, params: Mapping[str, str], report: Report) -> None:
    links, _ = await api.links()
    if any(link.webhook_id == hook.id for link in links):
        report.note("link", f"unchanged: webhook {hook.id} is linked to the filtered stream")
        return
    answer = await api.link(hook.id, params)
    shown = "&".join(f"{name}={value}" for name, value in params.items()) or "X's default fields"
    report.change("link", f"+ linked webhook {hook.id} to the filtered stream ({shown})", answer)
