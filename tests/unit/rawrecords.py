"""Builds `RawRecord`s the way the receivers write them, for normalizer tests without Kafka."""

from __future__ import annotations

from processor.records import RawRecord

RECEIVED_AT_MS = 1_795_881_600_123  # 2026-11-28T16:00:00.123Z


def raw_record(
    source: str,
    body: bytes,
    *,
    route: str = "post",
    offset: int = 42,
    extra_headers: dict[str, bytes] | None = None,
    key: bytes | None = None,
) -> RawRecord:
    headers = {
        "hs-source": source.encode(),
        "hs-route": route.encode(),
        "hs-received-at": str(RECEIVED_AT_MS).encode(),
        "hs-request-id": b"0123456789abcdef0123456789abcdef",
        "content-type": b"application/json",
        **(extra_headers or {}),
    }
    return RawRecord(
        topic=f"hookstream.raw.{source}",
        partition=0,
        offset=offset,
        key=key,
        value=body,
        headers=headers,
        timestamp_ms=RECEIVED_AT_MS + 3,
    )
