"""The receivers' Prometheus series (SPEC §5), on a registry of their own per app instance."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ReceiverMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "hookstream_requests",
            "Webhook requests answered, by source and status code",
            ["source", "code"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "hookstream_request_seconds",
            "Time from request to answer",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rejections = Counter(
            "hookstream_rejections",
            "Requests refused, by source and reason",
            ["source", "reason"],
            registry=self.registry,
        )
        self.kafka_produce_seconds = Histogram(
            "hookstream_kafka_produce_seconds",
            "Time from send to Kafka's acknowledgement (acks=all)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
