"""CloudEvents 1.0 in structured JSON mode: the bytes our downstream topics carry."""

from __future__ import annotations

from typing import Any

import orjson

from processor.records import Event, RawRecord
from processor.timefmt import from_epoch_ms

CONTENT_TYPE = "application/cloudevents+json"


def to_document(event: Event, raw: RawRecord) -> dict[str, Any]:
    """The event as a CloudEvent; `hsreceivedat` and `hsraw` tie it back to its raw record."""
    document: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.id,
        "source": event.source,
        "type": event.type,
    }
    if event.subject is not None:
        document["subject"] = event.subject
    document["time"] = event.time
    document["datacontenttype"] = "application/json"
    document["dataschema"] = event.dataschema
    document["data"] = event.data
    document.update(event.extensions)
    document["hsreceivedat"] = from_epoch_ms(raw.received_at_ms)
    document["hsraw"] = raw.origin
    return document


def encode(event: Event, raw: RawRecord) -> bytes:
    return orjson.dumps(to_document(event, raw))
