"""Records the processor writes, and the one way it writes them outside a transaction: send in order,
wait for every acknowledgement, resend what failed. A batch's offsets are committed only after this
returns, so a crash repeats outputs but never loses one."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from hookstream.kafka import DurableProducer

log = logging.getLogger(__name__)

RETRY_BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class Output:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = ()
    partition: int | None = None


async def send(
    producer: DurableProducer | AIOKafkaProducer, outputs: Sequence[Output]
) -> list[asyncio.Future[Any]]:
    """Hand `outputs` to the producer in order; the futures resolve when Kafka acknowledges each."""
    return [
        await producer.send(o.topic, o.value, key=o.key, headers=list(o.headers), partition=o.partition)
        for o in outputs
    ]


async def send_all(producer: DurableProducer, outputs: Sequence[Output]) -> None:
    """Deliver every output, retrying failed deliveries until Kafka has them all."""
    pending = list(outputs)
    for attempt in itertools.count():
        results = await asyncio.gather(*await send(producer, pending), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if not errors:
            return
        if not all(isinstance(error, KafkaError) for error in errors):
            raise next(error for error in errors if not isinstance(error, KafkaError))
        pending = [o for o, r in zip(pending, results, strict=True) if isinstance(r, BaseException)]
        log.warning(
            "resending after failed deliveries",
            extra={"count": len(pending), "error": ",".join(sorted({type(e).__name__ for e in errors}))},
        )
        await asyncio.sleep(RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)])
