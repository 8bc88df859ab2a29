"""What each `hookstream x …` command does: thin handlers over `XApi` and `xsetup`, and their output.

Human lines go to stdout, or to stderr under `--json`, where stdout carries only X's answer (on an error
too: the problem document). Warnings and rate-limit waits always go to stderr. Everything written passes
through `Output`, which would mask the bearer token should any text ever carry it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import aiohttp
import orjson

from hookstream.errors import HookstreamError, SettingsError
from hookstream.settings import Secret, Settings
from hookstream.topics import Topics
from hookstream.xapi import Json, RuleSpec, XApi, XApiError, env_proxy
from hookstream.xcli import LINK_FLAGS
from hookstream.xsetup import (
    Desired,
    Report,
    SetupStopped,
    crc_check,
    link_params,
    load_rules,
    rule_text,
    url_warnings,
)
from hookstream.xsetup import setup as run_setup

API_TIMEOUT_S = 30.0
USER_AGENT = "hookstream"
MASK = "**********"


@dataclass
class Output:
    as_json: bool
    token: Secret | None = None
    stdout: TextIO = sys.stdout
    stderr: TextIO = sys.stderr

    def say(self, text: str) -> None:
        """A line for a person: stdout, or stderr when stdout is reserved for JSON."""
        self._write(self.stderr if self.as_json else self.stdout, text)

    def note(self, text: str) -> None:
        self._write(self.stderr, text)

    def answer(self, body: object) -> None:
        if self.as_json:
            self._write(self.stdout, orjson.dumps(body).decode())

    def _write(self, stream: TextIO, text: str) -> None:
        if self.token is not None:
            text = text.replace(self.token.reveal(), MASK)
        print(text, file=stream, flush=True)


@dataclass
class Context:
    api: XApi
    out: Output
    settings: Settings
    args: argparse.Namespace

    @property
    def topics(self) -> Topics:
        return Topics(self.settings.namespace)


Handler = Callable[[Context], Awaitable[int]]


def run(args: argparse.Namespace, settings: Settings) -> int:
    out = Output(args.json, settings.x_bearer_token)
    try:
        return asyncio.run(_run(args, settings, out))
    except (XApiError, SetupStopped) as exc:
        body = exc.body if isinstance(exc, XApiError) else None
        out.answer(body if body is not None else {"error": str(exc)})
        out.note(f"hookstream x: {exc}")
        return 1


async def _run(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=API_TIMEOUT_S),
        headers={"User-Agent": USER_AGENT},
    ) as session:
        if args.x_group == "crc-check":
            return await _crc_check(session, args.url, settings, out)
        token = _bearer(settings, args, out)
        proxy = env_proxy(settings.x_api_url)  # HTTPS_PROXY / NO_PROXY, as behind a company's proxy
        api = XApi(session, settings.x_api_url, token, out.note, max_wait_s=args.max_wait, proxy=proxy)
        handler = HANDLERS[args.x_group if args.x_group == "setup" else f"{args.x_group} {args.x_action}"]
        return await handler(Context(api, out, settings, args))


def _bearer(settings: Settings, args: argparse.Namespace, out: Output) -> Secret:
    if settings.x_bearer_token is None:
        problem = f"not set; `hookstream x {args.x_group}` needs X's app-only bearer token"
        raise SettingsError("HOOKSTREAM_X_BEARER_TOKEN", problem)
    parts = urlsplit(settings.x_api_url)
    if parts.scheme != "https" and not _loopback(parts.hostname or ""):
        out.note(f"warning: HOOKSTREAM_X_API_URL is {parts.scheme}://: the bearer token travels unencrypted")
    return settings.x_bearer_token


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ip_address(host).is_loopback
    except ValueError:
        return False


def _consumer_secret(settings: Settings) -> Secret:
    if not settings.x_consumer_secrets:
        problem = "not set; the CRC answer is checked against its first secret, as X checks it"
        raise SettingsError("HOOKSTREAM_X_CONSUMER_SECRETS", problem)
    return settings.x_consumer_secrets[0]


def _warn_url(out: Output, url: str) -> None:
    for warning in url_warnings(url):
        out.note(f"warning: {warning}")


async def _crc_check(session: aiohttp.ClientSession, url: str, settings: Settings, out: Output) -> int:
    secret = _consumer_secret(settings)
    _warn_url(out, url)
    result = await crc_check(session, url, secret)
    out.answer(result.as_json())
    elapsed = f" in {result.elapsed_ms:.0f} ms" if result.elapsed_ms is not None else ""
    out.say(f"{'ok' if result.ok else 'failed'}: {url} {result.reason}{elapsed}")
    return 0 if result.ok else 1


# -- rules --


async def _rules_list(ctx: Context) -> int:
    found = await ctx.api.rules()
    data = [_rule_json(rule.id, rule.value, rule.tag) for rule in found]
    ctx.out.answer({"data": data, "meta": {"result_count": len(found)}})
    for rule in found:
        ctx.out.say(rule_text(rule, ctx.topics))
    ctx.out.say(f"{len(found)} rule(s)")
    return 0


def _rule_json(rule_id: str, value: str, tag: str | None) -> Json:
    return {"id": rule_id, "value": value} | ({"tag": tag} if tag else {})


async def _rules_add(ctx: Context) -> int:
    args = ctx.args
    added = await ctx.api.add_rules([RuleSpec(args.value, args.tag or None)], dry_run=args.dry_run)
    ctx.out.answer(added.body)
    verb = "dry run, X accepts" if args.dry_run else "+ added"
    for rule in added.created:
        ctx.out.say(f"{verb} {rule_text(rule, ctx.topics)}")
    added.check()
    return 0


async def _rules_delete(ctx: Context) -> int:
    args = ctx.args
    if bool(args.ids) == bool(args.all):
        raise HookstreamError("x rules delete: give rule ids, or --all")
    ids = [rule.id for rule in await ctx.api.rules()] if args.all else args.ids
    if not ids:
        ctx.out.answer({"meta": {"summary": {"deleted": 0, "not_deleted": 0}}})
        ctx.out.say("no rules to delete")
        return 0
    body = await ctx.api.delete_rules(ids)
    ctx.out.answer(body)
    ctx.out.say(f"- deleted {len(ids)} rule(s): {', '.join(ids)}")
    return 0


# -- webhooks --


async def _webhooks_list(ctx: Context) -> int:
    hooks, body = await ctx.api.webhooks()
    ctx.out.answer(body)
    for hook in hooks:
        state = "valid" if hook.valid else "INVALID"
        ctx.out.say(f"{hook.id}  {state}  {hook.created_at or '-'}  {hook.url}")
    ctx.out.say(f"{len(hooks)} webhook(s)")
    return 0


async def _webhooks_create(ctx: Context) -> int:
    _warn_url(ctx.out, ctx.args.url)
    hook, body = await ctx.api.create_webhook(ctx.args.url)
    ctx.out.answer(body)
    ctx.out.say(f"+ created webhook {hook.id} for {hook.url} (X's CRC passed)")
    return 0


async def _webhooks_validate(ctx: Context) -> int:
    valid, body = await ctx.api.validate_webhook(ctx.args.webhook_id)
    ctx.out.answer(body)
    if not valid:
        ctx.out.say(f"webhook {ctx.args.webhook_id}: X's CRC failed again, it stays invalid")
        return 1
    ctx.out.say(f"webhook {ctx.args.webhook_id} is valid (X's CRC passed)")
    return 0


async def _webhooks_delete(ctx: Context) -> int:
    ctx.out.answer(await ctx.api.delete_webhook(ctx.args.webhook_id))
    ctx.out.say(f"- deleted webhook {ctx.args.webhook_id}")
    return 0


# -- the filtered stream's links --


async def _stream_links(ctx: Context) -> int:
    found, body = await ctx.api.links()
    ctx.out.answer(body)
    for link in found:
        ctx.out.say(f"{link.webhook_id}  {','.join(link.fields) or '-'}")
    ctx.out.say(f"{len(found)} webhook(s) linked to the filtered stream")
    return 0


async def _stream_link(ctx: Context) -> int:
    params = {param: value for flag, param in LINK_FLAGS.items() if (value := getattr(ctx.args, flag))}
    ctx.out.answer(await ctx.api.link(ctx.args.webhook_id, params))
    ctx.out.say(f"+ linked webhook {ctx.args.webhook_id} to the filtered stream")
    return 0


async def _stream_unlink(ctx: Context) -> int:
    ctx.out.answer(await ctx.api.unlink(ctx.args.webhook_id))
    ctx.out.say(f"- unlinked webhook {ctx.args.webhook_id} from the filtered stream")
    return 0


# -- setup --


async def _setup(ctx: Context) -> int:
    args = ctx.args
    desired = Desired(
        url=args.url,
        rules=tuple(load_rules(Path(args.rules))),
        rules_file=args.rules,
        prune=args.prune,
        link_params=link_params(args.link_fields),
        topics=ctx.topics,
    )
    secret = _consumer_secret(ctx.settings)
    _warn_url(ctx.out, args.url)
    report = Report(ctx.out.say)
    hook = await run_setup(ctx.api, secret, desired, report)
    ctx.out.answer({"changed": bool(report.changes), "changes": report.changes, "webhook": hook.id})
    if report.changes:
        ctx.out.say(f"{len(report.changes)} change(s); X now matches {args.rules}")
    else:
        ctx.out.say(f"no changes: X already matches {args.rules}")
    return 0


HANDLERS: dict[str, Handler] = {
    "rules list": _rules_list,
    "rules add": _rules_add,
    "rules delete": _rules_delete,
    "webhooks list": _webhooks_list,
    "webhooks create": _webhooks_create,
    "webhooks validate": _webhooks_validate,
    "webhooks delete": _webhooks_delete,
    "stream links": _stream_links,
    "stream link": _stream_link,
    "stream unlink": _stream_unlink,
    "setup": _setup,
}
