"""Where and when the batcher sends waiting deliveries (`plan`, `linger_s`; pure): keyless ones of a
flush together to one partition whose leader is free, the next flush's to the next; keyed ones where
Kafka's partitioner puts them; nothing to a leader that has a batch of ours in flight; nothing whose
caller gave up; a wait for company only after a small flush."""

from __future__ import annotations

import asyncio

from aiokafka.partitioner import murmur2

from receivers.batching import LINGER_S, SMALL_FLUSH, Node, Waiting, linger_s, plan
from receivers.delivery import Delivery

PARTITIONS = [0, 1, 2, 3]


def waiting(value: bytes, key: bytes | None = None) -> Waiting:
    delivery = Delivery(topic="raw", value=value, key=key, headers=())
    return Waiting(delivery, asyncio.get_running_loop().create_future())


def leaders(*nodes: Node) -> dict[int, Node]:
    return dict(enumerate(nodes))


async def test_keyless_deliveries_of_a_flush_share_one_partition_and_the_next_flush_takes_the_next() -> None:
    first = [waiting(b"%d" % n) for n in range(5)]
    planned = plan(first, PARTITIONS, leaders(1, 1, 1, 1).__getitem__, set(), 0)
    assert planned.groups == {0: first}
    assert planned.kept == []
    again = plan([waiting(b"x")], PARTITIONS, leaders(1, 1, 1, 1).__getitem__, set(), planned.next_start)
    assert list(again.groups) == [1]
    wrapped = plan([waiting(b"y")], PARTITIONS, leaders(1, 1, 1, 1).__getitem__, set(), 4)
    assert list(wrapped.groups) == [0]


async def test_keyed_deliveries_go_where_kafkas_partitioner_puts_them_in_arrival_order() -> None:
    keyed = [waiting(b"%d" % n, key=b"msg_%d" % (n % 3)) for n in range(9)]
    planned = plan(keyed, PARTITIONS, leaders(1, 1, 1, 1).__getitem__, set(), 0)
    for partition, group in planned.groups.items():
        for item in group:
            assert item.delivery.key is not None
            assert (murmur2(item.delivery.key) & 0x7FFFFFFF) % len(PARTITIONS) == partition
    assert sorted(item.delivery.value for group in planned.groups.values() for item in group) == sorted(
        item.delivery.value for item in keyed
    )
    for group in planned.groups.values():
        assert group == [item for item in keyed if item in group]  # arrival order kept


async def test_a_busy_leader_keeps_its_deliveries_and_keyless_ones_go_to_a_free_leader() -> None:
    layout = leaders(1, 2, 1, 2).__getitem__
    keyed = [waiting(b"k%d" % n, key=b"msg_%d" % n) for n in range(8)]
    keyless = [waiting(b"a"), waiting(b"b")]
    planned = plan([*keyed, *keyless], PARTITIONS, layout, {1}, 0)
    assert list(planned.groups) != []
    assert all(layout(partition) == 2 for partition in planned.groups)
    sent = [item for group in planned.groups.values() for item in group]
    assert [item for item in sent if item.delivery.key is None] == keyless
    assert planned.kept == [item for item in keyed if item not in sent]
    assert all(layout(_partition_of(item)) == 1 for item in planned.kept)
    every_busy = plan(keyless, PARTITIONS, layout, {1, 2}, 0)
    assert every_busy.groups == {}
    assert every_busy.kept == keyless


async def test_without_any_known_leader_keyless_deliveries_still_go_out_and_aiokafka_waits_for_one() -> None:
    unknown = leaders(None, -1, None, -1).__getitem__
    items = [waiting(b"a"), waiting(b"b")]
    planned = plan(items, PARTITIONS, unknown, set(), 1)
    assert planned.groups == {1: items}
    assert plan(items, PARTITIONS, unknown, {-1}, 1).kept == items


async def test_a_delivery_whose_caller_gave_up_is_dropped() -> None:
    gone, kept = waiting(b"gone"), waiting(b"kept")
    gone.acked.cancel()
    planned = plan([gone, kept], PARTITIONS, leaders(1, 1, 1, 1).__getitem__, set(), 0)
    assert planned.groups == {0: [kept]}
    assert planned.kept == []


def _partition_of(item: Waiting) -> int:
    assert item.delivery.key is not None
    return int(murmur2(item.delivery.key) & 0x7FFFFFFF) % len(PARTITIONS)


def test_only_a_flush_after_a_small_one_lingers() -> None:
    assert linger_s(0) == linger_s(SMALL_FLUSH - 1) == LINGER_S > 0
    assert linger_s(SMALL_FLUSH) == linger_s(64) == 0
