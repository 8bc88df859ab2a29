"""An example consumer service: welcomes every new forum user, once, from hookstream's
`<namespace>.websitetoolbox.user.created` topic.

    HOOKSTREAM_NAMESPACE=hookstream WELCOME_DB=welcome.sqlite3 python examples/consumer.py

What it shows, for a service of your own:
- Its own consumer group, `<namespace>-reader-welcome` (the `reader` role's ACLs allow groups named
  `<namespace>-reader…`), starting at the oldest retained event the first time it runs.
- `isolation_level="read_committed"`: records of a worker's aborted transaction are never seen.
- Offsets are committed only after the batch is handled, so a crash means a redelivery, never a loss.
- Handling is idempotent by CloudEvent id: the id and the effect go into one SQLite transaction, so an
  event delivered again (after a crash or a rebalance, or by `hookstream replay`) changes nothing.
- Events are read with the official CloudEvents SDK (`cloudevents`, its Kafka binding), and only the
  `dataschema` version it was written for is handled: a new version stops the service before it commits.

Settings: HOOKSTREAM_KAFKA_BOOTSTRAP (default localhost:9092), HOOKSTREAM_NAMESPACE (hookstream),
WELCOME_DB (welcome.sqlite3). Stops cleanly on SIGTERM or Ctrl-C. Requires: aiokafka, cloudevents.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import sys
from typing import Any

from aiokafka import AIOKafkaConsumer
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.kafka import KafkaMessage, from_structured_event

TYPE = "com.websitetoolbox.user.created"
SCHEMA = "urn:hookstream:schema:com.websitetoolbox.user.created:v1"
log = logging.getLogger("welcome")


class UnsupportedSchema(Exception):
    """An event of a `dataschema` this service was not written for: stop, and commit nothing past it."""


class Welcomes:
    """The service's own state: which events it handled, and the welcomes it sent (here: recorded)."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path)
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS handled (event_id TEXT PRIMARY KEY)")
            self._db.execute("CREATE TABLE IF NOT EXISTS welcome (user_id TEXT, email TEXT, event_id TEXT)")

    def handle(self, event: BaseCloudEvent) -> bool:
        """Welcome the new user unless this event was handled before; True when it was new."""
        if event.get_type() != TYPE or event.get_dataschema() != SCHEMA:
            raise UnsupportedSchema(f"{event.get_type()} {event.get_dataschema()} (event {event.get_id()})")
        data: Any = event.get_data()
        user = data["object"]  # guaranteed by the schema; the rest of the object may vary
        with self._db:  # one transaction: the id and the effect, or neither
            inserted = self._db.execute("INSERT OR IGNORE INTO handled VALUES (?)", (event.get_id(),))
            if inserted.rowcount == 0:
                return False
            self._db.execute(
                "INSERT INTO welcome VALUES (?, ?, ?)",
                (str(user.get("userId")), user.get("email"), event.get_id()),
            )
        return True

    def close(self) -> None:
        self._db.close()


async def consume(bootstrap: str, namespace: str, welcomes: Welcomes, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        f"{namespace}.websitetoolbox.user.created",
        bootstrap_servers=bootstrap,
        group_id=f"{namespace}-reader-welcome",
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    message = KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
                    event = from_structured_event(message)
                    new = welcomes.handle(event)
                    log.info(
                        "%s %s (%s)",
                        "welcomed" if new else "already handled",
                        event.get_id(),
                        event.get_subject(),
                    )
            if batches:
                await consumer.commit()  # the positions after what was just handled
    finally:
        await consumer.stop()


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    welcomes = Welcomes(os.environ.get("WELCOME_DB", "welcome.sqlite3"))
    try:
        await consume(
            os.environ.get("HOOKSTREAM_KAFKA_BOOTSTRAP", "localhost:9092"),
            os.environ.get("HOOKSTREAM_NAMESPACE", "hookstream"),
            welcomes,
            stop,
        )
    finally:
        welcomes.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(main())
    except UnsupportedSchema as exc:
        log.error("stopping: an event of a schema this service does not know: %s", exc)
        sys.exit(1)
