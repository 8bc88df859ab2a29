"""Kafka administration both services share: is the broker there, and do our topics exist.

Topics are created explicitly with our partition count, replication factor and retention rather than by
the broker's auto-create (which would use the broker's defaults, and is often off in production).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    UnknownProducerId,
)
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from hookstream import clients
from hookstream.access import denied
from hookstream.settings import Settings
from hookstream.topics import Topics, Unroutable, collision_key
from hookstream.writable import producer_write_blocker

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
# How long a broker may hold a consumer's fetch waiting for data. aiokafka keeps one fetch in flight per
# broker, without the partitions that still hold fetched records: a long wait on idle partitions stalls
# busy ones for as long (processor/transport.py). Idle partitions cost one small fetch per wait; a
# worker's consumers wait longer when they leave no partition out (processor/fetch_gathering.py).
FETCH_MAX_WAIT_MS = 10
# The processor's record batches: room for a poll's worth of ~1 KB events per partition in one batch.
PROCESSOR_BATCH_BYTES = 512 * 1024
TOPIC_ALREADY_EXISTS = 36
# CreateTopics errors that mean a topic can never be created under this name by us: an invalid name,
# or one that collides with an existing topic (17), a policy (44), the ACLs (29). Others (too few brokers
# for the replication factor, 38, while one is down; timeouts) may pass later and are raised for a retry.
INVALID_TOPIC, TOPIC_AUTHORIZATION_FAILED, POLICY_VIOLATION = 17, 29, 44


REPLICATED = 3  # brokers from which topics get three replicas by default, two of them in sync


def min_insync_for(replicas: int) -> int:
    """Acks=all means "in sync on min.insync.replicas brokers": 2 of 3 replicas, so an acknowledged
    write survives one lost broker and writes go on while one is down."""
    return 2 if replicas >= REPLICATED else 1


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int | None  # None: chosen from the cluster's size when the topic is created
    config: dict[str, str] = field(default_factory=dict)

    def placed(self, brokers: int) -> NewTopic:
        """The topic to create on a cluster of `brokers` live brokers."""
        replicas = self.replication_factor or (REPLICATED if brokers >= REPLICATED else 1)
        config = {"min.insync.replicas": str(min_insync_for(replicas)), **self.config}
        return NewTopic(self.name, self.partitions, replicas, topic_configs=config)


def topic_spec(settings: Settings, name: str, *, retention_days: int = 7) -> TopicSpec:
    """A data topic of this deployment: the configured partitions and replication, time retention."""
    return TopicSpec(
        name=name,
        partitions=settings.topic_partitions,
        replication_factor=settings.replication_factor,
        config={
            "retention.ms": str(retention_days * DAY_MS),
            "max.message.bytes": str(max_record_bytes(settings)),
        },
    )


def max_record_bytes(settings: Settings) -> int:
    """Room for the largest record we write: a CloudEvent wraps a body of up to max_body_bytes,
    escaped as JSON string content in the worst case, plus headers."""
    return settings.max_body_bytes * 2 + 64 * 1024


def core_topics(settings: Settings) -> list[TopicSpec]:
    """The topics `hookstream topics` creates up front: raw, firehose, dead letters, and the processor's
    two internal topics (events keyed for dedup, and the dedup state that expires with the window)."""
    topics = Topics(settings.namespace)
    seen = topic_spec(settings, topics.seen)
    seen.config.update(
        {
            "cleanup.policy": "delete",
            "retention.ms": str(int(settings.dedup_window_s * 1000) + DAY_MS),
        }
    )
    return [
        *(topic_spec(settings, name) for name in topics.all_raw),
        topic_spec(settings, topics.events),
        topic_spec(settings, topics.dlq, retention_days=30),
        topic_spec(settings, topics.keyed),
        seen,
    ]


def durable_producer(settings: Settings, *, role: str, linger_ms: int, **options: Any) -> AIOKafkaProducer:
    """A producer whose acknowledgement means durable: acks=all, and idempotent so that its own retries
    neither duplicate nor reorder a partition. Create it inside the running event loop."""
    return clients.producer(
        settings,
        client_id=f"{settings.namespace}-{role}",
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        max_request_size=max_record_bytes(settings),
        **options,
    )


# After these, aiokafka's idempotent producer keeps failing every batch (its sequence numbers no longer
# match the broker's, and it never asks for a new producer id): only a new producer recovers.
BROKEN_PRODUCER = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch)


def batch_bytes(key: bytes | None, value: bytes, headers: Iterable[tuple[str, bytes]]) -> int:
    """At least the size Kafka checks against a topic's max.message.bytes: a record batch of this one
    record (the broker checks whole batches)."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, list(headers)))


def append_record(batch: Any, key: bytes | None, value: bytes, headers: Iterable[tuple[str, bytes]]) -> bool:
    """Append a record to a batch of `create_batch`; False when the batch has no room left for it (an
    empty batch takes one record of any size)."""
    return batch.append(key=key, value=value, timestamp=None, headers=list(headers)) is not None


class DurableProducer:
    """`durable_producer` that replaces itself when its idempotence state breaks, which happens after
    batches fail during a broker outage. Sends in flight on the old producer fail and are retried by
    their callers; nothing is acknowledged that Kafka does not have."""

    def __init__(self, settings: Settings, *, role: str, linger_ms: int, **options: Any) -> None:
        self._settings, self._role, self._linger_ms, self._options = settings, role, linger_ms, options
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    def _make(self) -> AIOKafkaProducer:
        return durable_producer(self._settings, role=self._role, linger_ms=self._linger_ms, **self._options)

    async def start(self) -> None:
        self._producer = self._make()
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        assert self._producer is not None
        ack: asyncio.Future[Any] = await self._producer.send(
            topic, value, key=key, headers=headers, partition=partition
        )
        ack.add_done_callback(self._check)
        return ack

    def create_batch(self) -> Any:
        assert self._producer is not None
        return self._producer.create_batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        assert self._producer is not None
        ack: asyncio.Future[Any] = await self._producer.send_batch(batch, topic, partition=partition)
        ack.add_done_callback(self._check)
        return ack

    def cluster(self) -> ClusterMetadata:
        """The current producer's view of the cluster (partitions, their leaders), read without I/O."""
        assert self._producer is not None
        return self._producer.client.cluster

    async def partitions_for(self, topic: str) -> set[int]:
        assert self._producer is not None
        return set(await self._producer.partitions_for(topic))

    async def write_blocker(
        self, topics: Iterable[str], min_insync: Mapping[str, int], timeout_s: float
    ) -> str | None:
        """Why a write to `topics` cannot succeed now, as this producer sees the cluster; None if it can."""
        assert self._producer is not None
        return await producer_write_blocker(self._producer.client, topics, min_insync, timeout_s)

    def _check(self, ack: asyncio.Future[Any]) -> None:
        """Retrieve every outcome (no 'exception never retrieved'), and replace a broken producer."""
        if not ack.cancelled() and isinstance(ack.exception(), BROKEN_PRODUCER) and not self._lock.locked():
            asyncio.get_running_loop().create_task(self.replace(self._producer))

    async def replace(self, broken: AIOKafkaProducer | None) -> None:
        async with self._lock:
            if broken is not self._producer or broken is None:
                return  # replaced already
            log.warning("replacing a Kafka producer whose idempotence state broke")
            fresh = self._make()
            await fresh.start()
            self._producer = fresh
            with contextlib.suppress(KafkaError, TimeoutError):
                await asyncio.wait_for(broken.stop(), 5)


async def kafka_answers(settings: Settings, timeout_s: float = 2.0) -> bool:
    """True when a broker of `HOOKSTREAM_KAFKA_BOOTSTRAP` answers a metadata request in time."""
    return await live_brokers(settings, timeout_s) > 0


async def live_brokers(settings: Settings, timeout_s: float = 2.0) -> int:
    """How many brokers the cluster lists as alive, in the metadata of the first broker of
    `HOOKSTREAM_KAFKA_BOOTSTRAP` that answers in time; 0 when none does. Only bootstrap addresses are
    asked (an admin client would go on to ask a random broker, perhaps one that is down)."""
    client = clients.client(settings, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        return len(client.cluster.brokers())
    except (KafkaError, OSError, TimeoutError):
        return 0
    finally:
        with contextlib.suppress(Exception):
            await client.close()


async def ensure_topics(settings: Settings, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the missing topics of `specs` with a short-lived admin client; return the names created."""
    async with topic_admin(settings) as admin:
        return await admin.ensure(specs)


async def delete_topics_starting_with(settings: Settings, prefixes: Iterable[str]) -> list[str]:
    """Delete every topic whose name starts with one of `prefixes`; return their names. For the runs
    that make namespaces of their own (the benchmark, the suite) on a broker that outlives them: a
    developer's local broker kept every run's partitions (11,000 of them, 10 GB, after a day), and its
    checkpoints, log scans and metadata grew with them."""
    prefixes = tuple(prefixes)
    admin = clients.admin(settings)
    await admin.start()
    try:
        ours = [topic for topic in await admin.list_topics() if topic.startswith(prefixes)]
        if ours:
            await admin.delete_topics(ours)
        return ours
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def topic_admin(settings: Settings) -> AsyncIterator[TopicAdmin]:
    """A started `TopicAdmin`, closed on the way out."""
    admin = TopicAdmin(settings)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


class TopicAdmin:
    """Creates topics that do not exist yet, remembering what it has seen so a second call is free, and
    knowing which names can be no topic: Kafka refuses a name that equals an existing one once '.' and
    '_' are read alike, so a sender's `api_posts` after `api.posts` is checked before it is tried.

    A topic without a configured replication factor gets one from the number of live brokers, the
    most this admin has seen: a topic created while a broker of three is down still gets three
    replicas (and its creation fails until the broker is back, which callers retry)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._admin = clients.admin(settings)
        self._known: dict[str, str] = {}  # collision key → the existing topic's name
        self._unroutable: dict[str, Unroutable] = {}
        self._denied: set[str] = set()  # names our ACLs do not let us create
        self._lock = asyncio.Lock()
        self._brokers = 0

    async def start(self) -> None:
        await self._admin.start()
        for name in await self._admin.list_topics():
            self._known[collision_key(name)] = name
        await self._count_brokers()

    async def _count_brokers(self) -> int:
        """The brokers, from metadata of no topic: `describe_cluster` asks for the metadata of every
        topic in the cluster and decodes all of it, on each topic a route creates (on a broker with a
        few thousand topics, 3% of a worker's CPU while new types arrived). aiokafka's admin has no
        public call for metadata of no topic; `_get_cluster_metadata` is the one `describe_cluster` uses."""
        metadata = await self._admin._get_cluster_metadata(topics=[])
        self._brokers = max(self._brokers, len(metadata.to_object()["brokers"]))
        return self._brokers

    async def close(self) -> None:
        await self._admin.close()

    async def ensure(self, specs: Iterable[TopicSpec]) -> list[str]:
        """Create the missing topics of `specs`; return the names created. A name that can be no topic
        is a KafkaError: these are our own topics, not a sender's."""
        created, unroutable = await self._create(list(specs))
        if unroutable:
            name, reason = next(iter(unroutable.items()))
            if name in self._denied:
                raise denied(self._settings, "CREATE", f"topic {name}")
            raise KafkaError(f"could not create topic {name}: {reason}")
        return created

    async def routable(self, specs: Iterable[TopicSpec]) -> dict[str, Unroutable]:
        """Create the missing topics of `specs`; return those that can be no topic, and why."""
        return (await self._create(list(specs)))[1]

    def _missing(self, specs: list[TopicSpec]) -> list[TopicSpec]:
        return [
            spec
            for spec in specs
            if self._known.get(collision_key(spec.name)) != spec.name and spec.name not in self._unroutable
        ]

    async def _create(self, specs: list[TopicSpec]) -> tuple[list[str], dict[str, Unroutable]]:
        unroutable = {
            spec.name: self._unroutable[spec.name] for spec in specs if spec.name in self._unroutable
        }
        if not self._missing(specs):
            return [], unroutable
        async with self._lock:
            request: dict[str, TopicSpec] = {}
            for spec in self._missing(specs):
                key = collision_key(spec.name)
                if key in self._known or any(collision_key(name) == key for name in request):
                    self._unroutable[spec.name] = Unroutable.COLLISION
                else:
                    request[spec.name] = spec
            created = await self._create_topics(list(request.values())) if request else []
        return created, {
            spec.name: self._unroutable[spec.name] for spec in specs if spec.name in self._unroutable
        }

    async def _create_topics(self, specs: list[TopicSpec]) -> list[str]:
        brokers = await self._count_brokers()
        response = await self._admin.create_topics([spec.placed(brokers) for spec in specs])
        created = []
        for name, code, *message in response.topic_errors:
            if code == TOPIC_AUTHORIZATION_FAILED:
                self._denied.add(name)
            if code in (INVALID_TOPIC, TOPIC_AUTHORIZATION_FAILED, POLICY_VIOLATION):
                collides = code == INVALID_TOPIC and "collides" in str(message)
                self._unroutable[name] = Unroutable.COLLISION if collides else Unroutable.REFUSED
                log.warning("topic refused", extra={"topic": name, "error": f"{code} {message}"})
                continue
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise KafkaError(f"could not create topic {name}: error {code} {message}")
            if code == 0:
                created.append(name)
                log.info("created topic", extra={"topic": name})
            self._known[collision_key(name)] = name
        return created

    async def min_insync(self, names: Iterable[str]) -> dict[str, int]:
        """Each topic's `min.insync.replicas`: how many in-sync replicas an acks=all write needs."""
        return await self._int_config(names, "min.insync.replicas")

    async def max_message_bytes(self, names: Iterable[str]) -> dict[str, int]:
        """Each topic's `max.message.bytes`: the largest record batch the broker takes for it."""
        return await self._int_config(names, "max.message.bytes")

    async def _int_config(self, names: Iterable[str], key: str) -> dict[str, int]:
        (response,) = await self._admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, {key: None}) for name in names]
        )
        return {
            resource[3]: int(value)
            for resource in response.resources
            for name, value, *_ in resource[4]
            if name == key
        }

    async def partitions(self, names: Iterable[str]) -> dict[str, int]:
        """The partition count of each existing topic of `names`."""
        described = await self._admin.describe_topics(list(names))
        for topic in described:
            if topic["error_code"] == TOPIC_AUTHORIZATION_FAILED:  # a consumer assigned it would spin
                raise denied(self._settings, "DESCRIBE", f"topic {topic['topic']}")
        return {topic["topic"]: len(topic["partitions"]) for topic in described if topic["error_code"] == 0}
