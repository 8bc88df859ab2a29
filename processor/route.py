"""Which topics an event goes to (SPEC §2 Routing).

Every event goes to the firehose and to its type's topic; an X post also to one topic per rule tag.
An optional routes file (`HOOKSTREAM_ROUTES`, TOML) adds topics, or replaces the type and tag topics,
for events whose type matches a glob pattern or that carry a given tag. The firehose always stays:

    [[route]]
    type = "com.websitetoolbox.user.*"   # or: tag = "api-posts"
    topics = ["crm.signups"]
    mode = "add"                         # or "replace"
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from hookstream.errors import SettingsError
from hookstream.topics import Topics, Unroutable, kafka_refuses, topic_safe
from processor.records import Event

TAGS_EXTENSION = "hstags"
ROUTES_SETTING = "HOOKSTREAM_ROUTES"
# Routings remembered by (type, tags): a handful of types make up almost every event, and working one
# out (topic names, their checks, the rules) was ~6% of a worker's CPU. Bounded, in number and in size
# (senders choose types and tags): longer ones, which can be no topic anyway, are worked out each time.
REMEMBERED_ROUTINGS = 4096
REMEMBERED_KEY_CHARS = 512


@dataclass(frozen=True, slots=True)
class Rule:
    topics: tuple[str, ...]
    replace: bool = False
    type_pattern: str | None = None
    tag: str | None = None

    def matches(self, event: Event, tags: list[str]) -> bool:
        if self.type_pattern is not None:
            return fnmatch.fnmatchcase(event.type, self.type_pattern)
        return self.tag in tags


@dataclass(frozen=True, slots=True)
class Routing:
    """Where one event goes, and why it gets no topic of its own where it gets none."""

    topics: list[str]
    unroutable: list[Unroutable]


@dataclass(frozen=True, slots=True)
class Routes:
    topics: Topics
    rules: tuple[Rule, ...] = ()
    _remembered: dict[tuple[str, str], Routing] = field(default_factory=dict, compare=False, repr=False)

    def topics_for(self, event: Event) -> Routing:
        """Where `event` goes: a function of its type and tags alone (callers do not change it)."""
        tags = event.extensions.get(TAGS_EXTENSION)
        tags = tags if isinstance(tags, str) else ""  # as `event_tags` reads them: other values are none
        if len(event.type) + len(tags) > REMEMBERED_KEY_CHARS:
            return self._routing(event)
        key = (event.type, tags)
        if (routing := self._remembered.get(key)) is None:
            if len(self._remembered) >= REMEMBERED_ROUTINGS:
                self._remembered.clear()
            routing = self._remembered[key] = self._routing(event)
        return routing

    def _routing(self, event: Event) -> Routing:
        tags = event_tags(event)
        derived = [self.topics.for_type(event.type), *(self.topics.for_tag(tag) for tag in tags)]
        matched = [rule for rule in self.rules if rule.matches(event, tags)]
        if any(rule.replace for rule in matched):
            derived = []
        extra = [topic for rule in matched for topic in rule.topics]
        default = [name for name in derived if not isinstance(name, Unroutable)]
        return Routing(
            topics=list(dict.fromkeys([self.topics.events, *default, *extra])),
            unroutable=[name for name in derived if isinstance(name, Unroutable)],
        )

    @classmethod
    def load(cls, topics: Topics, path: Path | None) -> Routes:
        """The default routes, plus the rules of `path`; a bad file is a SettingsError naming the setting."""
        if path is None:
            return cls(topics)
        try:
            document = tomllib.loads(path.read_text())
            return cls(topics, tuple(_rule(entry, topics) for entry in document.get("route", [])))
        except (OSError, tomllib.TOMLDecodeError, ValueError, TypeError) as exc:
            raise SettingsError(ROUTES_SETTING, f"{path}: {exc}") from None


def event_tags(event: Event) -> list[str]:
    """The X rule tags of an event (`hstags`), each reduced to what a topic name may hold."""
    tags = event.extensions.get(TAGS_EXTENSION)
    if not isinstance(tags, str):
        return []
    return [topic_safe(tag) for tag in tags.split(",") if tag]


def _rule(entry: object, own: Topics) -> Rule:
    if not isinstance(entry, dict):
        raise ValueError("each [[route]] must be a table")
    topics = entry.get("topics")
    if not isinstance(topics, list) or not topics or not all(isinstance(t, str) for t in topics):
        raise ValueError("a route needs `topics`, a list of topic names")
    for topic in topics:
        if kafka_refuses(topic):
            raise ValueError(f"Kafka refuses the topic name {topic[:80]!r} (at most 249 of [a-zA-Z0-9._-])")
        if own.reserved(topic):
            raise ValueError(
                f"{topic!r} is one of hookstream's own topics, or inside its raw or internal ones"
            )
    mode = entry.get("mode", "add")
    if mode not in ("add", "replace"):
        raise ValueError(f"`mode` is add or replace, not {mode!r}")
    type_pattern, tag = entry.get("type"), entry.get("tag")
    if (type_pattern is None) == (tag is None) or not isinstance(type_pattern or tag, str):
        raise ValueError("a route matches on exactly one of `type` (a glob pattern) or `tag`")
    return Rule(
        tuple(topics),
        replace=mode == "replace",
        type_pattern=type_pattern,
        tag=topic_safe(tag) if tag else None,
    )
