"""Hootsuite → CloudEvents, by the route the receiver took (`hs-route`).

`callback`: the App Directory assignment callback, form-urlencoded or JSON, read with the receiver's own
parser so both sides see the same fields. Its `sso_token` is a credential and never leaves this module.
`events`: either a REST platform webhook batch (a JSON array of `{"seq_no", "type", "data"}`; pings are
counted, not published) or an App Directory stream event (`{"type", "data"}`). A message state becomes the
same event type whichever way it arrives, so consumers need not care how Hootsuite told us.
"""

from __future__ import annotations

import re
from typing import Any

from hookstream import headers as H
from hookstream.forms import JSON, UnreadableBody, parse_fields
from processor.normalize.parsing import (
    INVALID_FORM,
    INVALID_JSON,
    MISSING_ID,
    SCHEMA,
    content_hash,
    event_time,
    field,
    identifier,
    json_value,
    optional_identifier,
)
from processor.normalize.schema import ABSENT, DataSchema, id_field, object_schema, passed_through, text
from processor.records import Event, Invalid, Normalized, RawRecord
from processor.timefmt import parse_iso, parse_pattern

NAME = "hootsuite"
SOURCE = "urn:hookstream:hootsuite"
SECRET_FIELDS = frozenset({"sso_token"})
_ASSIGNMENT_STATUSES = frozenset({"OPEN", "RESOLVED"})
_DASHED_TIME = "%Y-%m-%d-%H-%M-%S"  # the callback's other date format; "yyyy-mm-dd hh:mm:ss" is ISO
_MESSAGE_STATES = frozenset(
    {"sent", "failed", "rejected", "scheduled", "pending_approval", "approved", "deleted", "submitted"}
)
_FAILED_STATES = frozenset({"send_failed_permanently", "failed"})
_PING = "com.hootsuite.ping.event.v1"
_MESSAGES = "messages"
_PLATFORM_TYPE = re.compile(r"com\.hootsuite\.([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*)\.event\.v1")
_STREAM_MESSAGE = re.compile(r"message\.([A-Za-z_]+)")
Extensions = dict[str, str | int | bool]

_ASSIGNMENT_DATA = object_schema(
    "the callback's fields as Hootsuite posted them (form fields are strings), less the SSO token",
    {
        "assignmentId": id_field("the assignment's id: the subject `assignment/<id>`"),
        "status": text("OPEN or RESOLVED, in any case; upper-cased in `hsstatus`"),
        "modifiedDate": text("when the assignment changed: the event's `time` when readable", non_blank=True),
        "sso_token": ABSENT,
        **{
            name: passed_through(description)
            for name, description in (
                ("action", "`Assignment`"),
                ("messageId", "the assigned message's id"),
                ("toType", "`MEMBER` or `TEAM`"),
                ("createdDate", "when the assignment was created"),
            )
        },
    },
    "assignmentId",
    "status",
    "modifiedDate",
)
ASSIGNMENT_SCHEMAS = {
    status: DataSchema(
        f"com.hootsuite.assignment.{status.lower()}",
        1,
        f"An App Directory assignment callback with status {status}.",
        _ASSIGNMENT_DATA,
    )
    for status in sorted(_ASSIGNMENT_STATUSES)
}


_MESSAGE_ID = "the message's id: the subject `message/<id>`"
_MESSAGE_DATA = object_schema(
    "the message state change: a REST webhook element's or a polled message's `data`, or a stream event's",
    {
        "state": passed_through("the state as Hootsuite wrote it (webhooks: a string); always in `hsstatus`"),
        "message": passed_through("the message; webhooks and polls carry its id here"),
        "timestamp": passed_through("ISO 8601: the event's `time` when readable"),
        "sentAt": passed_through("ISO 8601: the event's `time` when there is no timestamp"),
    },
) | {
    "anyOf": [
        {
            "required": ["message"],
            "properties": {"message": object_schema("the message", {"id": id_field(_MESSAGE_ID)}, "id")},
        },
        {"required": ["id"], "properties": {"id": id_field(_MESSAGE_ID)}},
        {"required": ["messageId"], "properties": {"messageId": id_field(_MESSAGE_ID)}},
    ]
}
MESSAGE_SCHEMAS = {
    state: DataSchema(
        f"com.hootsuite.message.{state}",
        1,
        f"A message reached state {state}, by webhook, stream event or poll alike.",
        _MESSAGE_DATA,
    )
    for state in sorted(_MESSAGE_STATES)
}
STREAM_MESSAGE = DataSchema(
    "com.hootsuite.stream.message",
    1,
    "An App Directory `stream.message` event's `data`.",
    object_schema("the stream message", {"id": passed_through("its id: the event id, else a content hash")}),
)
PLATFORM_EVENT = DataSchema(
    "com.hootsuite.platform-event",
    1,
    "The `data` of a REST platform webhook of another kind (comments, apps, …; Hootsuite adds kinds).",
    object_schema(
        "the element's `data`", {"timestamp": passed_through("ISO 8601: the event's `time` when readable")}
    ),
    type_template="com.hootsuite.{platformKind}",
    parameters={"platformKind": "the kind in `com.hootsuite.<kind>.event.v1` (`comments`, `apps`)"},
)
SCHEMAS = (*ASSIGNMENT_SCHEMAS.values(), *MESSAGE_SCHEMAS.values(), STREAM_MESSAGE, PLATFORM_EVENT)


def normalize(raw: RawRecord) -> Normalized:
    route = raw.header(H.ROUTE)
    if route == "callback":
        return Normalized([_assignment(raw)])
    if route == "events":
        value = json_value(raw)
        if isinstance(value, list):
            return _platform_batch(value, raw)
        if isinstance(value, dict) and "type" in value and "data" in value:
            return Normalized([_stream_event(value, raw)])
        raise Invalid(SCHEMA, "expected a JSON array of platform events or a {type, data} stream event")
    raise Invalid(SCHEMA, f"unknown hs-route {route!r}")


def _assignment(raw: RawRecord) -> Event:
    try:
        fields = parse_fields(raw.value, raw.header(H.CONTENT_TYPE))
    except UnreadableBody as exc:
        raise Invalid(INVALID_JSON if exc.kind == JSON else INVALID_FORM, str(exc)) from None
    assignment_id = identifier(fields, "assignmentId")
    status = field(fields, "status", str).strip().upper()
    if status not in _ASSIGNMENT_STATUSES:
        raise Invalid(SCHEMA, f"assignment status {status[:40]!r} is neither OPEN nor RESOLVED")
    modified = field(fields, "modifiedDate", str)
    if not modified.strip():
        raise Invalid(SCHEMA, "'modifiedDate' is empty")
    return Event(
        id=f"{NAME}:assignment:{assignment_id}:{status}:{modified}",
        type=f"com.hootsuite.assignment.{status.lower()}",
        source=SOURCE,
        subject=f"assignment/{assignment_id}",
        time=event_time(parse_pattern(modified, _DASHED_TIME) or parse_iso(modified), raw),
        data={name: value for name, value in fields.items() if name not in SECRET_FIELDS},
        dataschema=ASSIGNMENT_SCHEMAS[status].urn,
        extensions={"hsstatus": status},
    )


def _platform_batch(elements: list[Any], raw: RawRecord) -> Normalized:
    """A REST webhook batch, in order; an empty one is invalid rather than silently nothing."""
    if not elements:
        raise Invalid(SCHEMA, "empty batch")
    events: list[Event] = []
    pings = 0
    for element in elements:
        if not isinstance(element, dict):
            raise Invalid(SCHEMA, f"a batch element is a {type(element).__name__}, not an object")
        event_type = field(element, "type", str)
        if event_type == _PING:
            pings += 1
        else:
            events.append(_platform_event(event_type, element, raw))
    return Normalized(events, pings=pings)


def _platform_event(event_type: str, element: dict[str, Any], raw: RawRecord) -> Event:
    match = _PLATFORM_TYPE.fullmatch(event_type)
    if match is None:
        raise Invalid(SCHEMA, f"{event_type[:80]!r} is not a com.hootsuite.<kind>.event.v1 type")
    data = field(element, "data", dict)
    seq = optional_identifier(element, "seq_no")
    extensions: Extensions = {} if seq is None else {"hsseq": seq}
    if match[1] == _MESSAGES:
        state = field(data, "state", str)
        message_id = optional_identifier(data.get("message"), "id")
        return _message_state(state, message_id, data, raw, extensions)
    return Event(
        id=f"{NAME}:{match[1]}:{seq or content_hash(element)}",
        type=f"com.hootsuite.{match[1]}",
        source=SOURCE,
        time=_data_time(data, raw),
        data=data,
        dataschema=PLATFORM_EVENT.urn,
        extensions=extensions,
    )


def _stream_event(value: dict[str, Any], raw: RawRecord) -> Event:
    """A stream event names a message state only as a word of its type (`message.sent`): upper-cased the
    way Hootsuite writes states, a sent message gets the same id whether a webhook or the stream told us."""
    event_type = field(value, "type", str)
    data = field(value, "data", dict)
    if event_type == "stream.message":
        return Event(
            id=f"{NAME}:stream:{optional_identifier(data, 'id') or content_hash(data)}",
            type="com.hootsuite.stream.message",
            source=SOURCE,
            time=_data_time(data, raw),
            data=data,
            dataschema=STREAM_MESSAGE.urn,
        )
    match = _STREAM_MESSAGE.fullmatch(event_type)
    if match is None:
        raise Invalid(SCHEMA, f"unknown stream event type {event_type[:80]!r}")
    nested_id = optional_identifier(data.get("message"), "id")
    message_id = optional_identifier(data, "id", "messageId") or nested_id
    return _message_state(match[1].upper(), message_id, data, raw, {})


def _message_state(
    state: str, message_id: str | None, data: dict[str, Any], raw: RawRecord, extensions: Extensions
) -> Event:
    """`com.hootsuite.message.<state>`, however the state reached us (SPEC §2 table)."""
    word = state.strip().lower()
    word = "failed" if word in _FAILED_STATES else word
    if word not in _MESSAGE_STATES:
        raise Invalid(SCHEMA, f"unknown message state {state[:40]!r}")
    if message_id is None:
        raise Invalid(MISSING_ID, "the message has no id")
    return Event(
        id=f"{NAME}:message:{message_id}:{state.strip().upper()}",
        type=f"com.hootsuite.message.{word}",
        source=SOURCE,
        subject=f"message/{message_id}",
        time=_data_time(data, raw),
        data=data,
        dataschema=MESSAGE_SCHEMAS[word].urn,
        extensions={"hsstatus": state, **extensions},
    )


def _data_time(data: dict[str, Any], raw: RawRecord) -> str:
    """When it happened: the webhook's `timestamp`, else a sent message's `sentAt` (REST message field)."""
    return event_time(parse_iso(data.get("timestamp")) or parse_iso(data.get("sentAt")), raw)
