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

# On the internal keyed topic only: what the dedup stage needs without parsing the event, and a dead
# letter's raw key. Never on a record we publish.
EVENT_ID = "hs-event-id"
OUT_TOPICS = "hs-out-topics"
EVENT_TYPE = "hs-type"
RAW_KEY = "hs-raw-key"
UNROUTABLE = "hs-unroutable"  # why the event got no topic of its own (comma-separated reasons)
KEYED_ONLY = frozenset((EVENT_ID, OUT_TOPICS, EVENT_TYPE, RAW_KEY, UNROUTABLE))

ERROR = "hs-error"
ERROR_DETAIL = "hs-error-detail"
ORIGIN = "hs-origin"

CLOUDEVENTS_CONTENT_TYPE = b"application/cloudevents+json"
