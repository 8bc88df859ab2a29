"""`asyncapi.yaml`: an AsyncAPI 3.0 document of every topic hookstream owns, built from the code that
names the topics (`hookstream.topics`), sizes them (`hookstream.kafka`) and fills them (the normalizers'
schemas), so that it cannot drift from what runs. What it says about names and sizes: `_DESCRIPTION`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from hookstream.kafka import TopicSpec, core_topics, topic_spec
from hookstream.refusals import UNWRITABLE
from hookstream.settings import Settings
from hookstream.topics import SOURCES, Topics, Unroutable
from processor.cloudevents import CONTENT_TYPE
from processor.contract.envelope import ENVELOPE_FILE, dead_letter_headers_schema, raw_headers_schema
from processor.normalize.schema import JSON, DataSchema

VERSION = "3.0.0"
BINDING = "0.5.0"
SCHEMAS_DIR = "schemas"
_PARAMETER = re.compile(r"\{([A-Za-z]+)\}")
_X_POST = "com.x.post.matched"
_DESCRIPTION = (
    "Webhooks from X, Hootsuite, Website Toolbox and Standard Webhooks senders, landed in Kafka exactly as "
    "received (`raw.*`), then published as CloudEvents 1.0 in structured JSON mode: every event on the "
    "firehose and on its type's topic, X posts also on a topic per rule tag, what cannot become an event "
    "on the dead-letter topic. Each event's `dataschema` names the JSON Schema of its `data` "
    "(schemas/<name>.v<N>.json); schemas/cloudevent.json describes the envelope. Topic names are those "
    "of the default namespace `hookstream`: another HOOKSTREAM_NAMESPACE replaces that prefix. "
    "Partitions are the default of HOOKSTREAM_TOPIC_PARTITIONS; replicas are HOOKSTREAM_REPLICATION_FACTOR "
    "where it is set, else 3 (min.insync.replicas 2) on a cluster of three or more brokers and 1 on a "
    "smaller one. The `<ns>.internal.*` topics are hookstream's own state, not part of "
    "the contract."
)
_EVENT_HEADERS = {
    "type": "object",
    "required": ["content-type"],
    "properties": {"content-type": {"const": CONTENT_TYPE}},
}
_RAW_CONTENT_TYPES = {"hootsuite": "application/x-www-form-urlencoded or application/json"}


def document(schemas: Sequence[DataSchema], version: str) -> JSON:
    """The AsyncAPI document for these data schemas; `version` is hookstream's own."""
    channels = _channels(schemas, Settings())
    return {
        "asyncapi": VERSION,
        "info": {
            "title": "hookstream",
            "version": version,
            "description": _DESCRIPTION,
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": _servers(),
        "channels": channels,
        "operations": {
            name: {"action": "send", "channel": {"$ref": f"#/channels/{name}"}, "summary": _summary(name)}
            for name in channels
        },
        "components": {
            "messages": {
                **{schema.name: _event_message(schema) for schema in schemas},
                **{f"raw.{source}": _raw_message(source) for source in SOURCES},
                "dead-letter": _dead_letter_message(),
            },
            "schemas": {
                "eventHeaders": _EVENT_HEADERS,
                "rawHeaders": raw_headers_schema(),
                "deadLetterHeaders": dead_letter_headers_schema(),
            },
            "securitySchemes": _security_schemes(),
        },
    }


def _channels(schemas: Sequence[DataSchema], settings: Settings) -> JSON:
    """Every topic, named and sized as `hookstream topics` and the worker create them."""
    topics = Topics(settings.namespace)
    sized = {spec.name: spec for spec in core_topics(settings)}
    channels: JSON = {
        f"raw.{source}": _channel(
            topics.raw(source), sized[topics.raw(source)], {"raw": _ref(f"raw.{source}")}
        )
        for source in SOURCES
    }
    events = {schema.name: _ref(schema.name) for schema in schemas}
    channels["events"] = _channel(topics.events, sized[topics.events], events)
    for schema in schemas:
        address = _templated(topics.for_type, schema.event_type)
        channels[schema.name] = _channel(
            address, topic_spec(settings, address), {"event": _ref(schema.name)}, schema.parameters
        )
    tag = {"tag": "an X filtered-stream rule tag, reduced to [a-zA-Z0-9._-]"}
    tag_address = _templated(topics.for_tag, "{tag}")
    channels["x.tag"] = _channel(
        tag_address, topic_spec(settings, tag_address), {"event": _ref(_X_POST)}, tag
    )
    channels["dlq"] = _channel(topics.dlq, sized[topics.dlq], {"deadLetter": _ref("dead-letter")})
    return channels


def _templated(name_of: Callable[[str], str | Unroutable], template: str) -> str:
    """A topic name with `{parameters}`: derived by the same function that names the real topics, with
    each parameter standing in as a plain word, then put back in braces."""
    address = name_of(_PARAMETER.sub(r"\1", template))
    if isinstance(address, Unroutable):
        raise ValueError(f"{template!r} can be no topic: {address}")  # a schema declared for no topic
    for parameter in _PARAMETER.findall(template):
        head, _, tail = address.rpartition(parameter)
        address = f"{head}{{{parameter}}}{tail}"
    return address


def _channel(
    address: str, spec: TopicSpec, messages: JSON, parameters: Mapping[str, str] | None = None
) -> JSON:
    kafka: JSON = {} if "{" in address else {"topic": address}
    kafka |= {
        "partitions": spec.partitions,
        **({"replicas": spec.replication_factor} if spec.replication_factor else {}),  # else by cluster
        "topicConfiguration": {
            "cleanup.policy": spec.config.get("cleanup.policy", "delete").split(","),
            "retention.ms": int(spec.config["retention.ms"]),
        },
        "bindingVersion": BINDING,
    }
    channel: JSON = {"address": address, "messages": messages, "bindings": {"kafka": kafka}}
    if parameters:
        channel["parameters"] = {name: {"description": text} for name, text in parameters.items()}
    return channel


def _ref(message: str) -> JSON:
    return {"$ref": f"#/components/messages/{message}"}


def _schema_ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _summary(channel: str) -> str:
    if channel.startswith("raw."):
        return "The receivers write each accepted delivery, exactly as received."
    if channel == "events":
        return "The firehose: every event."
    if channel == "dlq":
        return "Raw records that cannot become events, with the reason."
    if channel == "x.tag":
        return "X posts that matched a rule with this tag."
    return f"Events of type {channel} (the routes file may add or replace topics)."


def _event_message(schema: DataSchema) -> JSON:
    envelope = {
        "type": "object",
        "properties": {
            "type": _type_constraint(schema),
            "dataschema": {"const": schema.urn},
            "data": {"$ref": f"./{SCHEMAS_DIR}/{schema.file_name}"},
        },
    }
    return {
        "name": schema.name,
        "title": schema.event_type,
        "summary": schema.description,
        "contentType": CONTENT_TYPE,
        "headers": _schema_ref("eventHeaders"),
        "payload": {"allOf": [{"$ref": f"./{SCHEMAS_DIR}/{ENVELOPE_FILE}"}, envelope]},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "the event's subject, else its id"},
                "bindingVersion": BINDING,
            }
        },
    }


def _type_constraint(schema: DataSchema) -> JSON:
    if not schema.parameters:
        return {"const": schema.name}
    literal = _PARAMETER.split(schema.event_type)[::2]  # the parts between the parameters
    return {"type": "string", "pattern": "^" + ".+".join(re.escape(part) for part in literal) + "$"}


def _raw_message(source: str) -> JSON:
    key = "the `webhook-id`" if source == "standard" else "none"
    return {
        "name": f"raw.{source}",
        "summary": f"One delivery from {source}, its body exactly as received (bytes).",
        "contentType": _RAW_CONTENT_TYPES.get(source, "application/json"),
        "headers": _schema_ref("rawHeaders"),
        "payload": {"type": "string", "description": "the request body, unchanged"},
        "bindings": {"kafka": {"key": {"type": "string", "description": key}, "bindingVersion": BINDING}},
    }


def _dead_letter_message() -> JSON:
    return {
        "name": "dead-letter",
        "summary": "A raw record that could not become events, or an event Kafka refused for good, and why.",
        "description": (
            "Its value, key and headers are the raw record's, unchanged, plus the reason headers. With "
            f"`hs-error: {UNWRITABLE}` it is instead an event that Kafka refused for good (too large, "
            "invalid): the CloudEvent as it is, keyed by its subject, `content-type: "
            f"{CONTENT_TYPE}`, `hs-origin` naming its internal record and its `hsraw` the raw one."
        ),
        "contentType": "application/octet-stream",
        "headers": _schema_ref("deadLetterHeaders"),
        "payload": {"type": "string", "description": "the raw record's value (or the event), unchanged"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "the raw record's key (or the event's subject)"},
                "bindingVersion": BINDING,
            }
        },
    }


def _servers() -> JSON:
    schemes = ("scramSha512", "scramSha256", "plain", "mutualTls")
    return {
        "local": {
            "host": "localhost:9092",
            "protocol": "kafka",
            "description": "The local broker of `make run` and `make test`: PLAINTEXT, no authentication.",
        },
        "production": {
            "host": "{bootstrap}",
            "protocol": "kafka-secure",
            "description": (
                "A secured cluster (SPEC §7): TLS, authenticated by SASL (SCRAM or PLAIN) or by a client "
                "certificate. Consumers use the `reader` role's ACLs and a group named `<ns>-reader…`."
            ),
            "variables": {"bootstrap": {"description": "the cluster's bootstrap address, host:port"}},
            "security": [{"$ref": f"#/components/securitySchemes/{name}"} for name in schemes],
        },
    }


def _security_schemes() -> JSON:
    return {
        "scramSha512": {"type": "scramSha512", "description": "SASL_SSL with SCRAM-SHA-512"},
        "scramSha256": {"type": "scramSha256", "description": "SASL_SSL with SCRAM-SHA-256"},
        "plain": {"type": "plain", "description": "SASL_SSL with PLAIN"},
        "mutualTls": {"type": "X509", "description": "SSL with a client certificate (mutual TLS)"},
    }
