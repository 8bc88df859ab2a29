"""Standard Webhooks senders → CloudEvents.

Any compliant sender may post any JSON, so nothing about the payload is required: the recommended
`{"type", "timestamp", "data"}` shape only refines the event (its type, subject and time) where present.
The id is the `webhook-id` the sender keeps across retries, which is exactly what Standard Webhooks says to
deduplicate on; the sender's name (from the route) keeps ids and types of different senders apart.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from hookstream import headers as H
from processor.normalize.parsing import (
    MISSING_ID,
    SCHEMA,
    event_time,
    json_value,
    optional_identifier,
)
from processor.normalize.schema import DataSchema, passed_through
from processor.records import Event, Invalid, Normalized, RawRecord
from processor.timefmt import parse_epoch_s, parse_iso

NAME = "standard"
SOURCE = "urn:hookstream:standard"
WEBHOOK_ID_HEADER = H.HTTP_PREFIX + "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = H.HTTP_PREFIX + "webhook-timestamp"
_SEGMENT = r"[A-Za-z0-9_-]+"
_NAME = re.compile(_SEGMENT)
_TYPE = re.compile(rf"{_SEGMENT}(\.{_SEGMENT})*")
STANDARD_WEBHOOKS = DataSchema(
    "standard-webhooks",
    1,
    "The payload of a Standard Webhooks sender, unchanged: any JSON value. The recommended object form "
    "refines the event where its fields are usable; nothing in it is required.",
    {
        "properties": {
            "type": passed_through("dotted words: the event type `<name>.<type>`, else `<name>.event`"),
            "timestamp": passed_through("ISO 8601: the event's `time`, else the `webhook-timestamp` header"),
            "subject": passed_through("a non-blank string: the event's subject"),
            "data": passed_through(
                "the event's object; its `id` gives the subject `<type's first word>/<id>`"
            ),
        },
    },
    type_template="{senderName}.{payloadType}",
    parameters={
        "senderName": "the sender's name in `HOOKSTREAM_STANDARD_SECRETS` and the route",
        "payloadType": "the payload's `type`, or `event`",
    },
)
SCHEMAS = (STANDARD_WEBHOOKS,)


def normalize(raw: RawRecord) -> Normalized:
    name = raw.header(H.NAME)
    if name is None or not _NAME.fullmatch(name):
        raise Invalid(SCHEMA, f"hs-name {name!r} is not a sender name")
    webhook_id = _webhook_id(raw)
    payload = json_value(raw)
    fields = payload if isinstance(payload, dict) else {}
    payload_type = fields.get("type")
    payload_type = payload_type if isinstance(payload_type, str) and _TYPE.fullmatch(payload_type) else None
    return Normalized(
        [
            Event(
                id=f"{NAME}:{name}:{webhook_id}",
                type=f"{name}.{payload_type or 'event'}",
                source=SOURCE,
                subject=_subject(fields, payload_type),
                time=event_time(_time(fields, raw), raw),
                data=payload,
                dataschema=STANDARD_WEBHOOKS.urn,
            )
        ]
    )


def _webhook_id(raw: RawRecord) -> str:
    """`webhook-id` as the receiver kept it: its header, else the record key it was written under."""
    webhook_id = raw.header(WEBHOOK_ID_HEADER)
    if webhook_id is None and raw.key is not None:
        webhook_id = raw.key.decode("utf-8", "replace")
    if webhook_id is None or not webhook_id.strip():
        raise Invalid(MISSING_ID, "no webhook-id header and no record key")
    return webhook_id.strip()


def _subject(fields: dict[str, Any], payload_type: str | None) -> str | None:
    subject = fields.get("subject")
    if isinstance(subject, str) and subject.strip():
        return subject
    entity_id = optional_identifier(fields.get("data"), "id")
    if entity_id is None:
        return None
    return f"{(payload_type or 'event').split('.')[0]}/{entity_id}"


def _time(fields: dict[str, Any], raw: RawRecord) -> datetime | None:
    return parse_iso(fields.get("timestamp")) or parse_epoch_s(raw.header(WEBHOOK_TIMESTAMP_HEADER))
