"""The processor's core values: a raw record as read from Kafka, an event before encoding, a rejection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hookstream import headers as H
from processor.timefmt import in_range_ms


@dataclass(frozen=True, slots=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Mapping[str, bytes]
    timestamp_ms: int

    @classmethod
    def from_message(cls, message: Any, timestamp_ms: int) -> RawRecord:
        """A consumed record (aiokafka's or Faust's: same fields, timestamps in different units)."""
        return cls(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value if message.value is not None else b"",
            headers=dict(message.headers or ()),
            timestamp_ms=timestamp_ms,
        )

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("ascii", "replace")

    @property
    def source(self) -> str | None:
        return self.header(H.SOURCE)

    @property
    def received_at_ms(self) -> int:
        """When the receiver took the request; the record's timestamp if that header is unreadable or
        outside the years a timestamp holds (a record not written by our receivers may say anything)."""
        value = self.header(H.RECEIVED_AT)
        readable = value is not None and value.isascii() and value.isdigit() and len(value) <= 15
        return int(value) if readable and value and in_range_ms(int(value)) else self.timestamp_ms

    @property
    def origin(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True, slots=True)
class Event:
    """A normalized event: the CloudEvents attributes a normalizer decides (SPEC §2 table)."""

    id: str
    type: str
    source: str
    time: str
    data: Any
    dataschema: str  # `urn:hookstream:schema:<name>:v<N>`, the schema `data` is published under
    subject: str | None = None
    extensions: Mapping[str, str | int | bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Normalized:
    """What one raw record became: events to publish, and pings that were only counted."""

    events: list[Event]
    pings: int = 0


class Invalid(Exception):
    """A raw record that cannot become events; it goes to the dead-letter topic with `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
