"""The values that flow through a receiver: request in, verdict, delivery out. Pure data, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Reason(StrEnum):
    """Why a request was refused; the `reason` label of `hookstream_rejections_total`."""

    MISSING_SIGNATURE = "missing_signature"
    MALFORMED_SIGNATURE = "malformed_signature"
    BAD_SIGNATURE = "bad_signature"
    MISSING_TIMESTAMP = "missing_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    MISSING_ID = "missing_id"
    BAD_TOKEN = "bad_token"  # noqa: S105 - a reason name, not a credential
    MALFORMED_BODY = "malformed_body"
    BODY_TOO_LARGE = "body_too_large"
    BODY_INCOMPLETE = "body_incomplete"
    BODY_TIMEOUT = "body_timeout"
    UNSUPPORTED_ENCODING = "unsupported_encoding"
    INTERNAL_ERROR = "internal_error"
    OVERLOADED = "overloaded"
    KAFKA_UNAVAILABLE = "kafka_unavailable"


@dataclass(frozen=True, slots=True)
class RawRequest:
    """What a verifier may look at: the exact body bytes and the request's metadata."""

    method: str
    headers: Mapping[str, str]
    body: bytes
    received_at_ms: int
    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A request proven to come from its sender. Only this can become a `Delivery`."""

    auth: str
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: Reason


Verdict = Accepted | Rejected


class Verifier(Protocol):
    def __call__(self, request: RawRequest) -> Verdict:
        """Decide whether `request` is authentic. Pure; never raises on any input."""


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer given without touching Kafka (a CRC challenge, a refused request)."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"


class Responder(Protocol):
    def __call__(self, request: RawRequest) -> Reply:
        """Answer a challenge request. Pure; never raises on any input."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One authenticated request on its way to `hookstream.raw.<source>`."""

    topic: str
    value: bytes
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
