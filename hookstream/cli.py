"""The `hookstream` command. Each subcommand reads the settings once and hands them to its service.

The services are imported inside their subcommands, so `hookstream kafka …` never loads aiohttp or
Faust, and this package keeps its promise of not importing Faust.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka.errors import KafkaError

from hookstream import acls, localkafka, logs, xcli
from hookstream.access import refusal
from hookstream.errors import HookstreamError
from hookstream.kafka import TopicAdmin, core_topics
from hookstream.settings import Settings
from hookstream.tail import tail
from hookstream.topics import SOURCES, Topics

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What a command asks of Kafka, in ACL terms, to say what was refused.
_OPERATIONS = {"tail": "READ", "replay": "READ", "dlq": "READ", "topics": "CREATE", "acls": "ALTER"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookstream",
        description="Webhooks into Kafka, out as CloudEvents. Settings: HOOKSTREAM_* variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    kafka = commands.add_parser("kafka", help="the local Kafka: one KRaft node per bootstrap address")
    kafka.add_argument("action", choices=("start", "stop", "status"))
    kafka.add_argument(
        "--secure", action="store_true", help="start: SASL_SSL, ACLs and one user per role (SPEC §7)"
    )
    acl = commands.add_parser("acls", help="the Kafka ACLs of each role for this namespace")
    acl.add_argument("--role", choices=acls.ROLES, help="only this role's (default: every role's)")
    acl.add_argument("--apply", action="store_true", help="create them, with the admin credentials set")
    acl.add_argument(
        "--principal", help="with --role: grant them to this principal (e.g. User:CN=receivers for mTLS)"
    )
    commands.add_parser("topics", help="create or verify the raw, firehose and dead-letter topics")
    commands.add_parser("receivers", help="run the HTTP receivers")
    commands.add_parser("worker", help="run one processor worker (start several to scale out)")
    commands.add_parser("poller", help="poll Hootsuite's REST API for message states (one replica)")
    tail = commands.add_parser("tail", help="print normalized events as they arrive")
    tail.add_argument("topic", nargs="?", help="topic to follow (default: the firehose)")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest retained event")
    tail.add_argument("--json", action="store_true", help="print each CloudEvent as one JSON line")
    demo = commands.add_parser("demo", help="send one signed sample delivery of every kind to a receiver")
    demo.add_argument("--url", help="the receivers' base URL (default: http://localhost:<HTTP port>)")
    replay = commands.add_parser(
        "replay", help="re-normalize the raw records of a time range, bypassing dedup (hsreplay: true)"
    )
    replay.add_argument("--source", required=True, choices=SOURCES, help="whose raw topic to replay")
    replay.add_argument("--since", required=True, type=instant, help="ISO-8601 time or epoch milliseconds")
    replay.add_argument(
        "--until", type=instant, help="end of the range, exclusive (default: the end when it starts)"
    )
    schemas = commands.add_parser(
        "schemas", help="write the consumer contract (schemas/, asyncapi.yaml) from the code, or --check it"
    )
    schemas.add_argument("--check", action="store_true", help="write nothing; fail when stale or breaking")
    schemas.add_argument("--root", type=Path, default=Path(), help="the repository (default: here)")
    dlq = commands.add_parser("dlq", help="the dead-letter topic")
    dlq.add_argument(
        "action", choices=("redrive",), help="redrive: send dead letters the current code accepts back"
    )
    xcli.register(commands)
    return parser


def instant(text: str) -> int:
    """`--since`/`--until`: epoch milliseconds, or an ISO-8601 time (UTC unless it says otherwise)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 time (2026-11-28T15:00:00Z) or epoch milliseconds, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1)  # exact: float seconds can lose the last ms


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        logs.configure(settings.log_level)
        return _told(args, settings)
    except HookstreamError as exc:
        print(f"hookstream: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _told(args: argparse.Namespace, settings: Settings) -> int:
    """`_run`, with the broker's refusal of a login or an operation told in one line, not a traceback."""
    try:
        return _run(args, settings)
    except KafkaError as exc:
        refused = asyncio.run(refusal(exc, settings, _OPERATIONS.get(args.command, "a request")))
        if refused is None:
            raise
        raise refused from None


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command in ("demo", "replay", "dlq", "schemas"):
        return _tools(args, settings)
    if args.command == "x":
        return xcli.run(args, settings)
    if args.command == "kafka":
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # probing a stopped broker is expected
        if args.action == "start":
            localkafka.start(settings, secure=args.secure)
        elif args.action == "stop":
            localkafka.stop(settings)
        else:
            return 0 if localkafka.status(settings) else 1
    elif args.command == "acls":
        if args.principal and not args.role:
            raise HookstreamError("--principal needs --role: one principal gets one role's ACLs")
        chosen = (
            acls.role_acls(args.role, settings.namespace, args.principal)
            if args.role
            else acls.all_acls(settings.namespace)
        )
        if args.apply:
            asyncio.run(acls.apply(settings, chosen))
        print(acls.table(chosen))
    elif args.command == "topics":
        asyncio.run(_topics(settings))
    elif args.command == "receivers":
        from receivers.main import run as run_receivers

        run_receivers(settings)
    elif args.command == "worker":
        from processor.main import run as run_worker

        run_worker(settings)
    elif args.command == "poller":
        from receivers.hootsuite_poller import run as run_poller

        run_poller(settings)
    elif args.command == "tail":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                tail(
                    settings,
                    args.topic or Topics(settings.namespace).events,
                    from_beginning=args.from_beginning,
                    as_json=args.json,
                )
            )
    return 0


def _tools(args: argparse.Namespace, settings: Settings) -> int:
    """The operator's tools; each exits non-zero when it did not do what it was asked."""
    if args.command == "demo":
        from hookstream import demo

        settings = demo.with_run_env(settings, os.environ)
        return demo.run(settings, args.url or demo.default_url(settings))
    if args.command == "replay":
        if args.until is not None and args.until <= args.since:
            raise HookstreamError("--until must be later than --since")
        from processor import replay

        return replay.run(settings, args.source, args.since, args.until)
    if args.command == "schemas":
        from processor.contract import files

        return files.run(args.root, check=args.check)
    from processor import redrive

    return redrive.run(settings)


async def _topics(settings: Settings) -> None:
    specs = core_topics(settings)
    admin = TopicAdmin(settings)
    await admin.start()
    try:
        created = set(await admin.ensure(specs))
        # A topic created a moment ago may not be described yet; it has the partitions it was created with.
        partitions = await admin.partitions(spec.name for spec in specs if spec.name not in created)
    finally:
        await admin.close()
    for spec in specs:
        if spec.name in created:
            print(f"created  {spec.name} ({spec.partitions} partitions)")
            continue
        found = partitions.get(spec.name)
        if found is None:
            note = "  (its partitions could not be read)"
        elif found != spec.partitions:
            note = f"  (has {found} partitions, settings say {spec.partitions})"
        else:
            note = ""
        print(f"exists   {spec.name}{note}")


if __name__ == "__main__":
    sys.exit(main())
