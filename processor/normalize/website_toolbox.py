"""Website Toolbox forum events → CloudEvents.

The envelope is `{"api_version", "data": {"object": {...}}, "object": "event", "id", "type", "mode"}`.
Any well-formed type is accepted (the forum adds new ones); the subject is the object's kind and its id
(`user/181855` from `"object": "User", "userId": 181855`).
"""

from __future__ import annotations

import re
from typing import Any

from processor.normalize.parsing import SCHEMA, event_time, field, identifier, json_object
from processor.records import Event, Invalid, Normalized, RawRecord
from processor.timefmt import parse_epoch_s

NAME = "websitetoolbox"
SOURCE = "urn:hookstream:websitetoolbox"
_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
# The provider's own time of the event, where the object carries one (epoch seconds).
_EVENT_TIME_FIELD = {"user.created": "joinDateTimestamp"}


def normalize(raw: RawRecord) -> Normalized:
    envelope = json_object(raw)
    event_id = identifier(envelope, "id")
    event_type = field(envelope, "type", str)
    if not _TYPE.fullmatch(event_type):
        raise Invalid(SCHEMA, f"'type' {event_type[:80]!r} is not a dotted lowercase name")
    data = field(envelope, "data", dict)
    obj = field(data, "object", dict)
    extensions: dict[str, str | int | bool] = {}
    if isinstance(mode := envelope.get("mode"), str):
        extensions["hsmode"] = mode
    return Normalized(
        [
            Event(
                id=f"{NAME}:{event_id}",
                type=f"com.websitetoolbox.{event_type}",
                source=SOURCE,
                subject=_subject(event_type, obj),
                time=_time(event_type, obj, raw),
                data=data,
                extensions=extensions,
            )
        ]
    )


def _subject(event_type: str, obj: dict[str, Any]) -> str | None:
    kind = obj.get("object")
    kind = kind.lower() if isinstance(kind, str) and kind else event_type.split(".")[0]
    object_id = obj.get(f"{kind}Id")
    if isinstance(object_id, bool) or not isinstance(object_id, int | str) or str(object_id) == "":
        return None
    return f"{kind}/{object_id}"


def _time(event_type: str, obj: dict[str, Any], raw: RawRecord) -> str:
    """The object's own time where it has one within the years a timestamp can hold, else the receive
    time (SPEC §2): a sender's number never fails the event."""
    seconds = obj.get(_EVENT_TIME_FIELD.get(event_type, ""))
    return event_time(parse_epoch_s(seconds) if isinstance(seconds, int) else None, raw)
