"""Which topics an event goes to (SPEC §2 Routing): the firehose, its type's topic, X rule tags."""

from __future__ import annotations

from hookstream.topics import Topics
from processor.records import Event

TAGS_EXTENSION = "hstags"


def topics_for(event: Event, topics: Topics) -> list[str]:
    routed = [topics.events, topics.for_type(event.type)]
    tags = event.extensions.get(TAGS_EXTENSION)
    if isinstance(tags, str) and tags:
        routed.extend(topics.for_tag(tag) for tag in tags.split(","))
    return list(dict.fromkeys(routed))
