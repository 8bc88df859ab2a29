"""How much data the worker's consumers ask the broker to gather before it answers a fetch: what
arrives in `GATHER_S` at the rate the consumer has been reading.

With Kafka's default (`fetch.min.bytes` 1) the broker answers a fetch as soon as one record arrives, so
at 1,000 events/s the worker's two consumers sent a fetch for every record or two, and each fetch, its
answer and the small batch it handed on cost the worker and the broker more than the records did. A
fixed minimum (4 KB) saved that, but made a quiet worker wait out `FETCH_MAX_WAIT_MS` on both its hops
(at 100 events/s, e2e p50 12 → 26 ms). A minimum that follows the rate does neither: below one record
per `GATHER_S` it is Kafka's one byte, so a fetch is answered at the first record as before; above, a
fetch brings a few records at once and waits at most `GATHER_S` for them (never longer than
`FETCH_MAX_WAIT_MS`).
Measured at 1,000 events/s, three pairs back to back: the worker 0.55-0.56 of a core against
0.66-0.67, the broker 0.33-0.35 against 0.38-0.40, e2e p50 17 against 15-17 ms and p99 36-55 against
41-46 ms; at 100 and 300 events/s the same latency; at full speed the same CPU per record.

How long the broker may hold a fetch follows from the same state, fetch by fetch. `FETCH_MAX_WAIT_MS`
(10 ms) bounds how long a fetch that leaves partitions out (they still hold fetched records) keeps them
waiting, and how long a gathering fetch waits for its minimum. A fetch that asks for every partition at
a one-byte minimum keeps nothing waiting: the first record to arrive anywhere answers it. Such a fetch
may wait as long as Kafka's own consumers do (`IDLE_FETCH_MAX_WAIT_MS`, fetch.max.wait.ms' default), so
an idle worker sends a few fetches a second instead of a hundred: 1-2% of a core instead of 11-15%.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.consumer.fetcher import Fetcher

from hookstream.kafka import FETCH_MAX_WAIT_MS

GATHER_S = 0.008
RETUNE_EVERY_S = 1.0
MOST_MIN_BYTES = 64 * 1024  # a burst's estimate stays well below what one fetch brings (1 MB a partition)
IDLE_FETCH_MAX_WAIT_MS = 500


class FetchGathering:
    """Sets one aiokafka consumer's fetch minimum, every `RETUNE_EVERY_S`, from the bytes it read, and
    each fetch's longest wait from that minimum and what the consumer still holds."""

    def __init__(self, consumer: AIOKafkaConsumer, now_s: float) -> None:
        self._consumer = consumer
        self._bytes = self._records = 0
        self._since_s = now_s
        self._fetcher: Fetcher | None = None

    def read(self, polled: Mapping[Any, Sequence[ConsumerRecord[Any, bytes]]], now_s: float) -> None:
        """Count what a poll returned (values: the rest of a record is small beside its JSON); then,
        once `RETUNE_EVERY_S` has passed, ask for what the rate brings in `GATHER_S`."""
        if self._fetcher is None and self._consumer._fetcher is not None:  # made when the consumer starts
            self._fetcher = _waits_by_what_it_asks(self._consumer._fetcher)
        for records in polled.values():
            self._records += len(records)
            self._bytes += sum(len(record.value or b"") for record in records)
        if now_s - self._since_s < RETUNE_EVERY_S:
            return
        if self._fetcher is not None:  # aiokafka reads the minimum into each fetch it builds
            elapsed_s = now_s - self._since_s
            gathered = int(self._bytes / elapsed_s * GATHER_S)
            one_record = self._records / elapsed_s * GATHER_S < 1
            self._fetcher._fetch_min_bytes = 1 if one_record else max(1, min(MOST_MIN_BYTES, gathered))
        self._bytes = self._records = 0
        self._since_s = now_s


def _waits_by_what_it_asks(fetcher: Fetcher) -> Fetcher:
    """Give each fetch `fetcher` builds (Fetcher._get_actions_per_node, where aiokafka reads the wait
    into the request) the longest wait it can have: long only when it asks for every partition (none
    holds fetched records) at a one-byte minimum."""
    build = fetcher._get_actions_per_node

    def actions_per_node(assignment: Any) -> Any:
        idle = fetcher._fetch_min_bytes == 1 and not fetcher._records
        fetcher._fetch_max_wait_ms = IDLE_FETCH_MAX_WAIT_MS if idle else FETCH_MAX_WAIT_MS
        return build(assignment)

    fetcher._get_actions_per_node = actions_per_node
    return fetcher
