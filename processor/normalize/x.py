"""X (Twitter) webhooks → CloudEvents.

One URL may serve three payloads, told apart by their keys: a filtered-stream post
(`{"data", "includes", "matching_rules"}`, one post however many rules it matched), an Account Activity
batch (`{"for_user_id", "<kind>_events": [...], "user_event": {...}}`, one event per element, since each
element is its own fact and is retried and deduplicated on its own) and `{"replay_job_status"}`. Account
Activity elements such as follows carry no id of their own: their content hash stands in, which stays the
same when X delivers the element again.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from processor.normalize.parsing import (
    SCHEMA,
    content_hash,
    event_time,
    identifier,
    json_object,
    optional_identifier,
)
from processor.normalize.schema import JSON, DataSchema, id_field, object_schema, passed_through
from processor.records import Event, Invalid, Normalized, RawRecord
from processor.timefmt import parse_epoch_ms, parse_iso, parse_pattern

NAME = "x"
SOURCE = "urn:hookstream:x"
_EVENTS_KEY = re.compile(r"([a-z][a-z0-9_]*)_events")
_USER_EVENT = "user_event"
_LEGACY_TIME = "%a %b %d %H:%M:%S %z %Y"  # "Wed Oct 10 20:19:24 +0000 2018"
_ID_KEYS = ("id_str", "id")
# kind → (subject prefix, key of the object holding the entity id or None for the element, id keys)
_SUBJECTS: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "tweet_create": ("post", None, _ID_KEYS),
    "favorite": ("post", "favorited_status", _ID_KEYS),
    "tweet_delete": ("post", "status", _ID_KEYS),
    "follow": ("user", "target", _ID_KEYS),
    "block": ("user", "target", _ID_KEYS),
    "mute": ("user", "target", _ID_KEYS),
    "direct_message": ("message", None, _ID_KEYS),
    "direct_message_indicate_typing": ("user", None, ("sender_id",)),
    "direct_message_mark_read": ("user", None, ("sender_id",)),
}

_TIME_FIELDS = {
    "created_at": passed_through("legacy time (`Wed Oct 10 20:19:24 +0000 2018`): the event's `time`"),
    "created_timestamp": passed_through("epoch milliseconds: the event's `time` when there is no created_at"),
    "timestamp_ms": passed_through("epoch milliseconds: the event's `time` when there is nothing earlier"),
}

POST_MATCHED = DataSchema(
    "com.x.post.matched",
    1,
    "The filtered-stream delivery of one post, whole: the post, its expansions and the rules it matched.",
    object_schema(
        "X's filtered-stream payload",
        {
            "data": object_schema(
                "the post",
                {
                    "id": id_field("the post's id: the event id `x:post:<id>` and subject `post/<id>`"),
                    "created_at": passed_through("ISO 8601: the event's `time` when readable"),
                    "text": passed_through("the post's text"),
                    "author_id": passed_through("the author's user id"),
                },
                "id",
            ),
            "matching_rules": {
                "type": "array",
                "description": "the rules the post matched; their tags are the `hstags` extension",
                "items": passed_through("a rule, `{id, tag}`"),
            },
            "includes": passed_through("expansions: users, media, … as X sent them"),
        },
        "data",
        "matching_rules",
    ),
)
REPLAY_JOB_STATUS = DataSchema(
    "com.x.replay_job_status",
    1,
    "A finished Account Activity replay job, as X reported it.",
    object_schema(
        "`replay_job_status`", {"job_id": passed_through("the job's id: the event id, else a content hash")}
    ),
)


def _activity_data(kind: str) -> JSON:
    """An Account Activity element, whole; the subject's entity id is read where the kind keeps it."""
    properties = dict(_TIME_FIELDS)
    if kind in _SUBJECTS:
        prefix, holder, keys = _SUBJECTS[kind]
        where = " or ".join(f"`{key}`" for key in keys)
        if holder is None:
            properties |= {key: passed_through(f"the subject `{prefix}/<id>`") for key in keys}
        else:
            properties[holder] = passed_through(f"its {where} makes the subject `{prefix}/<id>`")
    return object_schema(f"one `{kind}` element of an Account Activity delivery, as X sent it", properties)


ACTIVITY_SCHEMAS = {
    kind: DataSchema(f"com.x.{kind}", 1, f"One Account Activity `{kind}` element.", _activity_data(kind))
    for kind in (*_SUBJECTS, _USER_EVENT)
}
ACCOUNT_ACTIVITY = DataSchema(
    "com.x.account-activity",
    1,
    "One element of an Account Activity kind without a schema of its own (X adds kinds).",
    object_schema("one element, as X sent it", dict(_TIME_FIELDS)),
    type_template="com.x.{activityKind}",
    parameters={"activityKind": "the kind of a `<kind>_events` array (`poll_vote`)"},
)
SCHEMAS = (POST_MATCHED, REPLAY_JOB_STATUS, *ACTIVITY_SCHEMAS.values(), ACCOUNT_ACTIVITY)


def normalize(raw: RawRecord) -> Normalized:
    payload = json_object(raw)
    if isinstance(payload.get("data"), dict) and isinstance(payload.get("matching_rules"), list):
        return Normalized([_matched_post(payload, raw)])
    if "for_user_id" in payload:
        return Normalized(_account_activity(payload, raw))
    if isinstance(status := payload.get("replay_job_status"), dict):
        job_id = optional_identifier(status, "job_id") or content_hash(status)
        return Normalized(
            [
                Event(
                    id=f"{NAME}:replay_job_status:{job_id}",
                    type="com.x.replay_job_status",
                    source=SOURCE,
                    time=event_time(None, raw),
                    data=status,
                    dataschema=REPLAY_JOB_STATUS.urn,
                )
            ]
        )
    raise Invalid(SCHEMA, "neither a filtered-stream post, an Account Activity batch nor a replay job status")


def _matched_post(payload: dict[str, Any], raw: RawRecord) -> Event:
    post = payload["data"]
    post_id = identifier(post, "id")
    tags = _tags(payload["matching_rules"])
    return Event(
        id=f"{NAME}:post:{post_id}",
        type="com.x.post.matched",
        source=SOURCE,
        subject=f"post/{post_id}",
        time=event_time(parse_iso(post.get("created_at")), raw),
        data=payload,
        dataschema=POST_MATCHED.urn,
        extensions={"hstags": tags} if tags else {},
    )


def _tags(rules: list[Any]) -> str:
    """The rules' tags in order, once each; a comma inside a tag becomes '_' so the list stays a list."""
    tags: dict[str, None] = {}
    for rule in rules:
        tag = rule.get("tag") if isinstance(rule, dict) else None
        if isinstance(tag, str) and tag.strip():
            tags[tag.replace(",", "_")] = None
    return ",".join(tags)


def _account_activity(payload: dict[str, Any], raw: RawRecord) -> list[Event]:
    for_user = optional_identifier(payload, "for_user_id")
    if for_user is None:
        raise Invalid(SCHEMA, "'for_user_id' is not a user id")
    events = [
        _activity(kind, element, for_user, raw)
        for kind, elements in _batches(payload)
        for element in elements
    ]
    if not events:
        raise Invalid(SCHEMA, "an Account Activity payload without any events")
    return events


def _batches(payload: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """(kind, elements) for every `<kind>_events` array and the `user_event` object, in payload order."""
    batches: list[tuple[str, list[Any]]] = []
    for key, value in payload.items():
        if key == _USER_EVENT:
            if not isinstance(value, dict):
                raise Invalid(SCHEMA, f"{_USER_EVENT!r} is not an object")
            batches.append((_USER_EVENT, [value]))
        elif match := _EVENTS_KEY.fullmatch(key):
            if not isinstance(value, list):
                raise Invalid(SCHEMA, f"{key!r} is not an array")
            batches.append((match[1], value))
    return batches


def _activity(kind: str, element: Any, for_user: str, raw: RawRecord) -> Event:
    if not isinstance(element, dict):
        raise Invalid(SCHEMA, f"an element of {kind}_events is a {type(element).__name__}, not an object")
    holder = element.get("status") if kind == "tweet_delete" else element
    element_id = optional_identifier(holder, *_ID_KEYS) or content_hash(element)
    return Event(
        id=f"{NAME}:{kind}:{element_id}",
        type=f"com.x.{kind}",
        source=SOURCE,
        subject=_subject(kind, element),
        time=event_time(_element_time(element), raw),
        data=element,
        dataschema=ACTIVITY_SCHEMAS.get(kind, ACCOUNT_ACTIVITY).urn,
        extensions={"hsforuser": for_user},
    )


def _subject(kind: str, element: dict[str, Any]) -> str | None:
    if kind not in _SUBJECTS:
        return None
    prefix, holder, keys = _SUBJECTS[kind]
    entity_id = optional_identifier(element if holder is None else element.get(holder), *keys)
    return None if entity_id is None else f"{prefix}/{entity_id}"


def _element_time(element: dict[str, Any]) -> datetime | None:
    return (
        parse_pattern(element.get("created_at"), _LEGACY_TIME)
        or parse_epoch_ms(element.get("created_timestamp"))
        or parse_epoch_ms(element.get("timestamp_ms"))
    )
