"""Can a write with acks=all succeed now? The receivers' readiness, from what their own producer sees.

"Some broker answers" is not the question a load balancer needs answered: with two brokers of three
down, the third answers every metadata request while no write can reach `min.insync.replicas`. A write
to a partition succeeds when its leader is known and reachable and at least `min.insync.replicas` of its
in-sync replicas are reachable (the leader waits for all of them). The producer's metadata says who
leads and who is in sync; whether a broker is reachable, the producer's own connections say.

Kafka's metadata lags the truth in both directions, which this check covers: a dead leader is listed
until the controller notices (broker.session.timeout.ms) — it is unreachable, so not ready; a cluster
that lost its controller quorum keeps listing dead brokers in every ISR forever — they are unreachable,
so not ready until enough of them are back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Container, Iterable, Mapping
from typing import Any

from aiokafka.structs import PartitionMetadata

REACH_TIMEOUT_S = 1.0  # a broker that does not accept a connection within this is counted away


def write_blocker(
    partitions: Iterable[PartitionMetadata], reachable: Container[int], min_insync: Mapping[str, int]
) -> str | None:
    """Why a write to one of `partitions` cannot succeed now, or None when a write to each can."""
    for p in partitions:
        where = f"{p.topic}/{p.partition}"
        if p.leader < 0:
            return f"{where} has no leader"
        if p.leader not in reachable:
            return f"{where}: its leader, broker {p.leader}, is unreachable"
        in_sync = sum(1 for broker in p.isr if broker in reachable)
        needed = min_insync.get(p.topic, 1)
        if in_sync < needed:
            return f"{where}: {in_sync} in-sync replica(s) reachable, min.insync.replicas is {needed}"
    return None


async def producer_write_blocker(
    client: Any, topics: Iterable[str], min_insync: Mapping[str, int], timeout_s: float
) -> str | None:
    """`write_blocker` for `topics` with an aiokafka client's metadata, refreshed first, and its
    connections: a broker counts as reachable when the client is connected to it or can connect now."""
    topics = list(topics)
    for topic in topics:
        client.add_topic(topic)  # tracked from now on (a producer replaced meanwhile knows none yet)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client.force_metadata_update(), timeout_s)
    partitions = []
    for topic in topics:
        # aiokafka keeps each partition's leader, replicas and ISR from the last metadata response, and
        # exposes only the leader; aiokafka is pinned (pyproject.toml).
        known = client.cluster._partitions.get(topic)
        if not known:
            return f"no metadata for {topic} yet"
        partitions.extend(known.values())
    brokers = sorted({p.leader for p in partitions if p.leader >= 0} | {b for p in partitions for b in p.isr})
    up = await asyncio.gather(*(_reachable(client, broker) for broker in brokers))
    return write_blocker(partitions, {b for b, ok in zip(brokers, up, strict=True) if ok}, min_insync)


async def _reachable(client: Any, broker: int) -> bool:
    try:
        return bool(await asyncio.wait_for(client.ready(broker), REACH_TIMEOUT_S))
    except (TimeoutError, OSError):
        return False
