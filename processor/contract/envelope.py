"""The records hookstream publishes, described once: the CloudEvent envelope (`schemas/cloudevent.json`),
and the headers of raw records and dead letters (in `asyncapi.yaml`).

The envelope lists every attribute and extension an event may carry; readers should still accept
attributes they do not know (`additionalProperties`), as CloudEvents asks of them.
"""

from __future__ import annotations

from hookstream import headers as H
from hookstream.topics import SOURCES
from processor.cloudevents import CONTENT_TYPE
from processor.normalize.schema import DIALECT, JSON, URN_PREFIX, text

ENVELOPE_FILE = "cloudevent.json"
_RFC3339_UTC = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$"
_UTC_TIME = {"type": "string", "format": "date-time", "pattern": _RFC3339_UTC}
# hookstream's CloudEvents extensions: who sets each, and what it holds (SPEC §2 table).
EXTENSIONS: dict[str, JSON] = {
    "hsreceivedat": _UTC_TIME | {"description": "when the receiver took the request (RFC 3339, UTC, ms)"},
    "hsraw": {
        "type": "string",
        "pattern": r"^.+/[0-9]+/[0-9]+$",
        "description": "the raw record the event came from, `topic/partition/offset`, for tracing and replay",
    },
    "hsmode": text("Website Toolbox: the forum's `mode`, `live` or `test`"),
    "hstags": text("X filtered stream: the matched rules' tags, comma-separated, each once"),
    "hsforuser": text("X Account Activity: the user the activity was delivered for"),
    "hsstatus": text("Hootsuite: the assignment status or message state, as Hootsuite wrote it"),
    "hsseq": text("Hootsuite REST webhooks: the element's `seq_no`"),
    "hsreplay": {"const": True, "description": "published by `hookstream replay`, bypassing dedup"},
}
REQUIRED = ("specversion", "id", "source", "type", "time", "datacontenttype", "dataschema", "data")


def cloudevent_schema() -> JSON:
    """JSON Schema 2020-12 of every event hookstream publishes; `data` is described by `dataschema`."""
    return {
        "$schema": DIALECT,
        "$id": f"{URN_PREFIX}cloudevent",
        "title": "hookstream CloudEvent",
        "description": (
            "A CloudEvent 1.0 in structured JSON mode, as hookstream publishes it (record header "
            f"`content-type: {CONTENT_TYPE}`, key = subject, else id). `data` follows the schema that "
            "`dataschema` names: schemas/<name>.v<N>.json."
        ),
        "type": "object",
        "required": [*REQUIRED, "hsreceivedat", "hsraw"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": text("unique per event: hookstream deduplicates on it", non_blank=True),
            "source": {"type": "string", "pattern": "^urn:hookstream:[a-z]+$", "description": "the sender"},
            "type": text("the event type, reverse-DNS (`com.websitetoolbox.user.created`)", non_blank=True),
            "subject": text(
                "the entity the event is about (`user/181855`); also the record key", non_blank=True
            ),
            "time": _UTC_TIME | {"description": "the provider's time of the event, else the receive time"},
            "datacontenttype": {"const": "application/json"},
            "dataschema": {
                "type": "string",
                "pattern": "^urn:hookstream:schema:[A-Za-z0-9._-]+:v[1-9][0-9]*$",
                "description": "the schema of `data`: schemas/<name>.v<N>.json",
            },
            "data": {"description": "the provider's object, as `dataschema` describes it"},
            **EXTENSIONS,
        },
        "propertyNames": {"pattern": "^[a-z0-9]{1,20}$"},
        "additionalProperties": True,
    }


_RAW_HEADERS = {
    H.SOURCE: "the sender: `x`, `hootsuite`, `websitetoolbox` or `standard`",
    H.ROUTE: "the route taken: `post`, or Hootsuite's `callback` or `events`",
    H.RECEIVED_AT: "when the receiver took the request, epoch milliseconds",
    H.REQUEST_ID: "the receiver's id of the HTTP request",
    H.CONTENT_TYPE: "the request's content type",
    H.AUTH: "which check passed: `hmac-sha256`, `sso-sha512`, `path-token`, `standard-v1`, `oauth2-poll`, …",
    H.NAME: "Standard Webhooks: the sender's name",
}
_KEPT_HEADER = f"^{H.HTTP_PREFIX}"


def raw_headers_schema() -> JSON:
    """The headers the receivers (and the poller) put on a raw record; values are ASCII."""
    typed: dict[str, JSON] = {
        H.SOURCE: {"enum": list(SOURCES)},
        H.ROUTE: {"enum": ["post", "callback", "events"]},
        H.RECEIVED_AT: {"type": "string", "pattern": "^[0-9]+$"},
    }
    return {
        "type": "object",
        "required": [H.SOURCE, H.ROUTE, H.RECEIVED_AT, H.AUTH],
        "properties": {
            name: typed.get(name, {"type": "string"}) | {"description": description}
            for name, description in _RAW_HEADERS.items()
        },
        "patternProperties": {_KEPT_HEADER: text("a request header kept to verify the request again later")},
        "additionalProperties": True,
    }


def dead_letter_headers_schema() -> JSON:
    """A dead letter keeps the raw record's value, key and headers, whatever they were (a record that
    is not what a receiver writes is a dead letter too), and says why it is one."""
    kept = {name: {"description": f"as on the raw record: {text}"} for name, text in _RAW_HEADERS.items()}
    return {
        "type": "object",
        "required": [H.ERROR, H.ERROR_DETAIL, H.ORIGIN],
        "properties": kept
        | {
            H.ERROR: text(
                "the reason code: `invalid_json`, `invalid_form`, `schema`, `missing_id`, "
                "`unknown_source`, `normalizer_error`, `unwritable`, …"
            ),
            H.ERROR_DETAIL: text("what was wrong, at most 500 ASCII characters"),
            H.ORIGIN: {
                "type": "string",
                "pattern": r"^.+/[0-9]+/[0-9]+$",
                "description": "the record it came from, `topic/partition/offset`",
            },
        },
        "patternProperties": {_KEPT_HEADER: {"description": "as on the raw record"}},
        "additionalProperties": True,
    }
