"""Faust's aiokafka transport with a short consumer fetch wait, the one setting Faust does not expose,
and the credentials Faust's clients log in with.

Faust hard-codes `fetch_max_wait_ms=1500` (faust/transport/drivers/aiokafka.py). aiokafka keeps one fetch
in flight per broker and leaves out of it the partitions that still hold fetched records; so a fetch
sent while the busy partitions were full asks only for idle ones (the other raw topics), the broker holds
it for the whole wait, and the busy partitions' records pile up meanwhile. Measured at 1,000 events/s:
stage one stalled for 1-1.5 s every few seconds (e2e p50 100-1,400 ms); with the wait at
`FETCH_MAX_WAIT_MS` the stall is bounded by it (e2e p50 35 ms).
"""

from __future__ import annotations

from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from hookstream.kafka import FETCH_MAX_WAIT_MS
from hookstream.settings import Settings


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts its fetcher
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


def broker_credentials(settings: Settings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """Faust's `broker_credentials` for the security settings, the same ones `hookstream.clients` gives
    aiokafka. Faust hands them to its consumer, producer and topic admin alike
    (`credentials_to_aiokafka_auth`). SASL over TLS needs the context inside the SASL credentials: without
    one Faust silently means SASL_PLAINTEXT. TLS alone gets our context (Faust's `SSLCredentials(cafile=...)`
    cannot build one: it passes `purpose=None` to `ssl.create_default_context`)."""
    security = settings.kafka_security
    if security.uses_sasl:
        assert security.sasl_password is not None  # KafkaSecurity.checked() saw to it
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password.reveal(),
            mechanism=security.sasl_mechanism,
            ssl_context=security.ssl_context(),
        )
    context = security.ssl_context()
    return None if context is None else faust.SSLCredentials(context)
