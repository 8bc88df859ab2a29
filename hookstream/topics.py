"""Kafka topic names (SPEC §2), derived from one namespace so that every name lives in one place.

With the default namespace `hookstream` the names are exactly the contract's. A different namespace
(`HOOKSTREAM_NAMESPACE`) gives a second, fully separate deployment on the same cluster; the tests use
that to run side by side on one broker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SOURCES = ("x", "hootsuite", "websitetoolbox", "standard")
_UNSAFE = re.compile(r"[^a-zA-Z0-9._-]")


def topic_safe(text: str) -> str:
    """`text` reduced to the characters Kafka allows in a topic name."""
    return _UNSAFE.sub("", text)


@dataclass(frozen=True, slots=True)
class Topics:
    namespace: str = "hookstream"

    def raw(self, source: str) -> str:
        return f"{self.namespace}.raw.{source}"

    @property
    def all_raw(self) -> tuple[str, ...]:
        return tuple(self.raw(source) for source in SOURCES)

    @property
    def events(self) -> str:
        return f"{self.namespace}.events"

    @property
    def dlq(self) -> str:
        return f"{self.namespace}.dlq"

    @property
    def keyed(self) -> str:
        """Internal: normalized events keyed like their downstream records (subject, else event id), so
        all events about one entity, and so every copy of one event, meet in order on one partition."""
        return f"{self.namespace}.internal.keyed"

    @property
    def seen(self) -> str:
        """Internal: the dedup state, partition for partition beside `keyed` (compacted and expiring)."""
        return f"{self.namespace}.internal.seen"

    @property
    def poller_state(self) -> str:
        """Internal, compacted: the Hootsuite poller's refresh token and last-seen message states."""
        return f"{self.namespace}.internal.hootsuite-poller"

    def for_type(self, event_type: str) -> str:
        """`com.websitetoolbox.user.created` → `hookstream.websitetoolbox.user.created`."""
        parts = event_type.split(".")
        if len(parts) > 2 and parts[0] in ("com", "org", "net", "io"):
            parts = parts[1:]
        return f"{self.namespace}.{topic_safe('.'.join(parts))}"

    def for_tag(self, tag: str) -> str:
        return f"{self.namespace}.x.tag.{topic_safe(tag)}"

    @property
    def raw_prefix(self) -> str:
        """Every raw topic starts with this (ACLs grant and deny by it)."""
        return self.raw("")

    @property
    def internal_prefix(self) -> str:
        """Every internal topic (the processor's and the poller's own) starts with this."""
        return f"{self.namespace}.internal."
