"""The `hookstream x …` command line (SPEC §9): its arguments here, its work in `hookstream.xcommands`.

This module only builds the argument parser, so `hookstream.cli` can register it without loading
aiohttp: the commands and the X API client are imported when an `x` command runs.
"""

from __future__ import annotations

import argparse
import re
from typing import TypeAlias
from urllib.parse import urlsplit

from hookstream.settings import Settings

DEFAULT_MAX_WAIT = "15m"
_WAIT = re.compile(r"^\s*(\d+)\s*(s|m|h)?\s*$")
_WAIT_SECONDS = {"s": 1, "m": 60, "h": 3600, None: 1}
Groups: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
LINK_FLAGS = {  # `x stream link` flag → X's query parameter
    "expansions": "expansions",
    "tweet_fields": "tweet.fields",
    "user_fields": "user.fields",
    "media_fields": "media.fields",
}


def max_wait(text: str) -> float:
    """`--max-wait`: seconds, or a number with s, m or h; 0 means do not wait for a rate limit at all."""
    match = _WAIT.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration such as 90s, 15m or 0, got {text!r}")
    return int(match.group(1)) * _WAIT_SECONDS[match.group(2)]


def url(text: str) -> str:
    """A webhook URL: absolute http(s). Whether X will take it is a warning, not a usage error."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected a URL such as https://<host>/webhooks/x, got {text!r}")
    return text


def register(commands: Groups) -> None:
    """Add `x` and its subcommands to the `hookstream` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print X's answer as JSON on stdout")
    common.add_argument(
        "--max-wait",
        type=max_wait,
        default=max_wait(DEFAULT_MAX_WAIT),
        help=f"longest wait for X's rate limit to reset (default {DEFAULT_MAX_WAIT})",
    )
    x = commands.add_parser(
        "x", help="set X up: filtered-stream rules, webhook, stream link (HOOKSTREAM_X_BEARER_TOKEN)"
    )
    groups = x.add_subparsers(dest="x_group", required=True, metavar="GROUP")
    _rules(groups, common)
    _webhooks(groups, common)
    _stream(groups, common)
    crc = groups.add_parser(
        "crc-check", parents=[common], help="answer a CRC challenge at URL and check it the way X will"
    )
    crc.add_argument("url", metavar="URL", type=url)
    setup = groups.add_parser(
        "setup", parents=[common], help="make X match a rules file: rules, webhook for URL, stream link"
    )
    setup.add_argument(
        "--url", required=True, type=url, help="the public webhook URL, https://<host>/webhooks/x"
    )
    setup.add_argument("--rules", required=True, help="TOML file of [[rule]] tables (value, tag)")
    setup.add_argument("--prune", action="store_true", help="delete X's rules the file does not list")
    setup.add_argument(
        "--link-fields",
        default="",
        metavar="QUERY",
        help="fields of linked posts, e.g. 'expansions=author_id&user.fields=username,name'",
    )


def _rules(groups: Groups, common: argparse.ArgumentParser) -> None:
    rules = groups.add_parser("rules", help="filtered-stream rules (their tags name the x.tag topics)")
    actions = rules.add_subparsers(dest="x_action", required=True, metavar="ACTION")
    actions.add_parser("list", parents=[common], help="every rule")
    add = actions.add_parser("add", parents=[common], help="add one rule")
    add.add_argument("value", metavar="VALUE")
    add.add_argument("--tag", help="the rule's tag: its posts go to <namespace>.x.tag.<tag>")
    add.add_argument("--dry-run", action="store_true", help="let X check the rule without storing it")
    delete = actions.add_parser("delete", parents=[common], help="delete rules by id, or --all")
    delete.add_argument("ids", nargs="*", metavar="ID")
    delete.add_argument("--all", action="store_true", help="delete every rule")


def _webhooks(groups: Groups, common: argparse.ArgumentParser) -> None:
    webhooks = groups.add_parser("webhooks", help="the app's webhooks")
    actions = webhooks.add_subparsers(dest="x_action", required=True, metavar="ACTION")
    actions.add_parser("list", parents=[common], help="every webhook, valid or not")
    create = actions.add_parser("create", parents=[common], help="register URL (X runs its CRC at once)")
    create.add_argument("url", metavar="URL", type=url)
    for action, text in (("validate", "ask X to run the CRC again"), ("delete", "delete a webhook")):
        actions.add_parser(action, parents=[common], help=text).add_argument("webhook_id", metavar="ID")


def _stream(groups: Groups, common: argparse.ArgumentParser) -> None:
    stream = groups.add_parser("stream", help="links of the filtered stream to webhooks")
    actions = stream.add_subparsers(dest="x_action", required=True, metavar="ACTION")
    actions.add_parser("links", parents=[common], help="the webhooks the filtered stream is linked to")
    link = actions.add_parser("link", parents=[common], help="send posts that match the rules to a webhook")
    link.add_argument("webhook_id", metavar="WEBHOOK_ID")
    for flag, param in LINK_FLAGS.items():
        link.add_argument(f"--{flag.replace('_', '-')}", metavar="LIST", help=f"X's {param} parameter")
    unlink = actions.add_parser("unlink", parents=[common], help="stop sending posts to a webhook")
    unlink.add_argument("webhook_id", metavar="WEBHOOK_ID")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run an `x` command: 0 done, 1 X refused (or a check failed); usage errors raise (exit 2)."""
    from hookstream import xcommands

    return xcommands.run(args, settings)
