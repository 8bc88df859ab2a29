"""How much data the worker's consumers ask the broker to gather before it answers a fetch: what
arrives in `GATHER_S` at the rate the consumer has been reading.

With Kafka's default (`fetch.min.bytes` 1) the broker answers a fetch as soon as one record arrives, so
at 1,000 events/s the worker's two consumers sent a fetch for every record or two, and each fetch, its
answer and the small batch it handed on cost the worker and the broker more than the records did. A
fixed minimum (4 KB) saved that, but made a quiet worker wait out `FETCH_MAX_WAIT_MS` on both its hops
(at 100 events/s, e2e p50 12 → 26 ms). A minimum that follows the rate does neither: below one record
per `GATHER_S` it is no more than a record, so a fetch is answered as before; above, a fetch brings a
few records at once and waits at most `GATHER_S` for them (never longer than `FETCH_MAX_WAIT_MS`).
Measured at 1,000 events/s, three pairs back to back: the worker 0.55-0.56 of a core against
0.66-0.67, the broker 0.33-0.35 against 0.38-0.40, e2e p50 17 against 15-17 ms and p99 36-55 against
41-46 ms; at 100 and 300 events/s the same latency; at full speed the same CPU per record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

GATHER_S = 0.008
RETUNE_EVERY_S = 1.0
MOST_MIN_BYTES = 64 * 1024  # a burst's estimate stays well below what one fetch brings (1 MB a partition)


class FetchGathering:
    """Sets one aiokafka consumer's fetch minimum, every `RETUNE_EVERY_S`, from the bytes it read."""

    def __init__(self, consumer: AIOKafkaConsumer, now_s: float) -> None:
        self._consumer = consumer
        self._bytes = 0
        self._since_s = now_s

    def read(self, polled: Mapping[Any, Iterable[ConsumerRecord[Any, bytes]]], now_s: float) -> None:
        """Count what a poll returned (values: the rest of a record is small beside its JSON); then,
        once `RETUNE_EVERY_S` has passed, ask for what the rate brings in `GATHER_S`."""
        self._bytes += sum(len(record.value or b"") for records in polled.values() for record in records)
        if now_s - self._since_s < RETUNE_EVERY_S:
            return
        fetcher = self._consumer._fetcher  # made when the consumer starts; aiokafka reads the minimum
        if fetcher is not None:  # into each fetch it sends (Fetcher._get_actions_per_node)
            rate = self._bytes / (now_s - self._since_s)
            fetcher._fetch_min_bytes = max(1, min(MOST_MIN_BYTES, int(rate * GATHER_S)))
        self._bytes, self._since_s = 0, now_s
