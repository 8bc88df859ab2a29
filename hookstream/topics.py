"""Kafka topic names (SPEC §2), derived from one namespace so that every name lives in one place.

With the default namespace `hookstream` the names are exactly the contract's. A different namespace
(`HOOKSTREAM_NAMESPACE`) gives a second, fully separate deployment on the same cluster; the tests use
that to run side by side on one broker.

Names derived from what a sender sends (event types, X rule tags) are checked here against Kafka's own
rules before anything is sent: a name Kafka would refuse, or one inside our raw or internal topics, is
`Unroutable` (SPEC §2 Routing) and the event goes to the firehose only. A name that collides with an
existing topic needs the cluster's topic list, so `TopicAdmin` checks that (hookstream/kafka.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

SOURCES = ("x", "hootsuite", "websitetoolbox", "standard")
# Kafka's Topic.validate: at most 249 characters of [a-zA-Z0-9._-], and not "." or "..".
MAX_TOPIC_LENGTH = 249
_UNSAFE = re.compile(r"[^a-zA-Z0-9._-]")
_LEGAL = re.compile(r"[a-zA-Z0-9._-]+")
# The first label of a reverse-DNS event type, which `for_type` strips (`com.x.post.matched`).
REVERSE_DNS_LABELS = frozenset({"com", "org", "net", "io"})
# Labels after the namespace that hold our own topics: nothing derived from a sender may land there.
RESERVED_LABELS = frozenset({"raw", "internal"})


class Unroutable(StrEnum):
    """Why an event gets no topic of its own (the `reason` of `hookstream_unroutable_total`)."""

    TOO_LONG = "too_long"  # over Kafka's 249 characters
    EMPTY = "empty"  # nothing left once reduced to the characters a topic name may hold
    RESERVED = "reserved"  # inside <ns>.raw. or <ns>.internal., or one of our own topics
    COLLISION = "collision"  # differs from an existing topic only by '.' versus '_'
    REFUSED = "refused"  # the broker refused to create it for good (policy, authorization)


def topic_safe(text: str) -> str:
    """`text` reduced to the characters Kafka allows in a topic name."""
    return _UNSAFE.sub("", text)


def kafka_refuses(name: str) -> bool:
    """Whether Kafka refuses `name` as a topic name, by its own rules (Topic.validate)."""
    return len(name) > MAX_TOPIC_LENGTH or name in (".", "..") or not _LEGAL.fullmatch(name)


def collision_key(name: str) -> str:
    """Kafka refuses a topic whose name equals an existing one's once '.' and '_' are both read as '_'
    (their metric names would be the same)."""
    return name.replace(".", "_")


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

    def for_type(self, event_type: str) -> str | Unroutable:
        """`com.websitetoolbox.user.created` → `hookstream.websitetoolbox.user.created`."""
        parts = event_type.split(".")
        if len(parts) > 2 and parts[0] in REVERSE_DNS_LABELS:
            parts = parts[1:]
        return self.derived("", ".".join(parts))

    def for_tag(self, tag: str) -> str | Unroutable:
        return self.derived("x.tag.", tag)

    def derived(self, prefix: str, sender_part: str) -> str | Unroutable:
        """`<ns>.<prefix><sender_part>`, the sender's part reduced to legal characters, or why it can be
        no topic of ours. Every name built from what a sender sends is built here."""
        cleaned = topic_safe(sender_part)
        if not any(c.isalnum() for c in cleaned):
            return Unroutable.EMPTY
        name = f"{self.namespace}.{prefix}{cleaned}"
        if kafka_refuses(name):
            return Unroutable.TOO_LONG  # the characters are legal by now, so only the length is left
        if self.reserved(name):
            return Unroutable.RESERVED
        return name

    def reserved(self, name: str) -> bool:
        """Whether `name` is one of this deployment's own topics or lies inside its raw or internal ones."""
        if name in (self.events, self.dlq):
            return True
        kept = [f"{self.namespace}.{label}" for label in RESERVED_LABELS]
        return any(name == own or name.startswith(own + ".") for own in kept)

    @property
    def raw_prefix(self) -> str:
        """Every raw topic starts with this (ACLs grant and deny by it)."""
        return self.raw("")

    @property
    def internal_prefix(self) -> str:
        """Every internal topic (the processor's and the poller's own) starts with this."""
        return f"{self.namespace}.internal."
