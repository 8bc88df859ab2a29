"""Website Toolbox forum events → CloudEvents.

The envelope is `{"api_version", "data": {"object": {...}}, "object": "event", "id", "type", "mode"}`.
Any well-formed type is accepted (the forum adds new ones); the subject is the object's kind and its id
(`user/181855` from `"object": "User", "userId": 181855`).
"""

from __future__ import annotations

import re
from typing import Any

from processor.normalize.parsing import SCHEMA, event_time, field, identifier, json_object
from processor.normalize.schema import JSON, DataSchema, object_schema, passed_through
from processor.records import Event, Invalid, Normalized, RawRecord
from processor.timefmt import parse_epoch_s

NAME = "websitetoolbox"
SOURCE = "urn:hookstream:websitetoolbox"
_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
# The provider's own time of the event, where the object carries one (epoch seconds).
_EVENT_TIME_FIELD = {"user.created": "joinDateTimestamp"}
# The forum's documented types (PROVIDERS.md): each has a schema of its own; any other is a forum event.
DOCUMENTED_TYPES = (
    "user.created",
    "user.approved",
    "user.updated",
    "user.deleted",
    "user.email.verified",
    "user.payment.received",
    "user.paid_subscription.started",
    "user.paid_subscription.ended",
    "topic.created",
    "topic.updated",
    "topic.deleted",
    "post.created",
    "post.approved",
    "post.updated",
    "post.deleted",
    "conversation.created",
    "message.created",
)


def _data(kind: str | None, time_field: str | None = None) -> JSON:
    """The envelope's `data`: its `object` is what the normalizer requires; the kind and its id (the
    subject) and the event's time are read where present, never required."""
    fields = {"object": passed_through("the object's kind, e.g. `User`; lower-cased, the subject's prefix")}
    if kind:
        fields[f"{kind}Id"] = passed_through(f"the {kind}'s id; with the kind, the subject `{kind}/<id>`")
    if time_field:
        fields[time_field] = passed_through("epoch seconds: the event's `time` when an integer in range")
    return object_schema(
        "the forum event's `data`, as the forum sent it",
        {"object": object_schema("the forum's object (a user, topic, post, …) as the forum sent it", fields)},
        "object",
    )


TYPE_SCHEMAS = {
    forum_type: DataSchema(
        f"com.websitetoolbox.{forum_type}",
        1,
        f"`data` of the forum's `{forum_type}` event.",
        _data(forum_type.split(".")[0], _EVENT_TIME_FIELD.get(forum_type)),
    )
    for forum_type in DOCUMENTED_TYPES
}
FORUM_EVENT = DataSchema(
    "com.websitetoolbox.forum-event",
    1,
    "`data` of a forum event type without a schema of its own (the forum adds types).",
    _data(None),
    type_template="com.websitetoolbox.{forumType}",
    parameters={"forumType": "the forum's own event type, dotted lowercase words (`poll.vote.cast`)"},
)
SCHEMAS = (*TYPE_SCHEMAS.values(), FORUM_EVENT)


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
                dataschema=TYPE_SCHEMAS.get(event_type, FORUM_EVENT).urn,
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
