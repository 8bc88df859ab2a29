"""The processor's Prometheus series (SPEC §5), on a registry of their own per worker."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
OTHER = "other"


MAX_LABEL_LENGTH = 120


class BoundedLabel:
    """Passes the first `limit` distinct values of up to MAX_LABEL_LENGTH characters through, and
    answers `other` for the rest: a sender cannot grow our label sets (and Prometheus' memory) by
    inventing event types, many or long."""

    def __init__(self, limit: int = 200) -> None:
        self._seen: set[str] = set()
        self._limit = limit

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit or len(value) > MAX_LABEL_LENGTH:
            return OTHER
        self._seen.add(value)
        return value


class ProcessorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.event_type = BoundedLabel()
        self.raw_records = Counter(
            "hookstream_raw_records", "Raw records read, by source", ["source"], registry=self.registry
        )
        self.events_published = Counter(
            "hookstream_events_published",
            "Normalized events published, by type",
            ["type"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "hookstream_duplicates",
            "Events not published again: their id was seen within the window",
            ["source"],
            registry=self.registry,
        )
        self.pings = Counter(
            "hookstream_pings",
            "Provider pings acknowledged and not published",
            ["source"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "hookstream_dead_letters",
            "Raw records sent to the dead-letter topic, by source and reason",
            ["source", "reason"],
            registry=self.registry,
        )
        self.unroutable = Counter(
            "hookstream_unroutable",
            "Events published to the firehose only: their type or tag can be no topic (SPEC §2 Routing)",
            ["reason"],
            registry=self.registry,
        )
        self.event_latency = Histogram(
            "hookstream_event_latency_seconds",
            "From the receiver taking the request to the event published",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
