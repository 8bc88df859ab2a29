"""How a sender is described to the receiver app: its routes, each with its verifier or responder."""

from __future__ import annotations

from dataclasses import dataclass

from receivers.delivery import Responder, Verifier


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A route that takes deliveries: verified, written to Kafka, then answered with `reply_body`."""

    path: str
    route: str
    verify: Verifier
    keep_headers: tuple[str, ...] = ()
    reply_body: bytes = b""
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class Challenge:
    """A route answered without Kafka, such as X's CRC check."""

    path: str
    respond: Responder
    method: str = "GET"


@dataclass(frozen=True, slots=True)
class Source:
    """An enabled sender: its `hs-source` name and its routes."""

    name: str
    endpoints: tuple[Endpoint | Challenge, ...]
