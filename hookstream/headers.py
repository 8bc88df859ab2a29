"""Kafka record header names (SPEC §2). All values are ASCII bytes."""

from __future__ import annotations

SOURCE = "hs-source"
ROUTE = "hs-route"
RECEIVED_AT = "hs-received-at"
REQUEST_ID = "hs-request-id"
CONTENT_TYPE = "content-type"
AUTH = "hs-auth"
NAME = "hs-name"
HTTP_PREFIX = "hs-http-"

# On the internal keyed topic: what the dedup stage needs without parsing the event.
EVENT_ID = "hs-event-id"
OUT_TOPICS = "hs-out-topics"
EVENT_TYPE = "hs-type"

ERROR = "hs-error"
ERROR_DETAIL = "hs-error-detail"
ORIGIN = "hs-origin"

CLOUDEVENTS_CONTENT_TYPE = b"application/cloudevents+json"
