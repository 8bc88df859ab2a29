"""exactly_once transactions that gather polls: what an open transaction counts as seen, and when it is
due (processor/dedup_partition.py). The broker side (commits, refusals, SIGKILL) is in the integration
tests of the processor and its faults."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaError

from hookstream import clients
from hookstream.settings import Settings
from processor.dedup_batch import decide
from processor.dedup_partition import (
    COMMIT_INTERVAL_S,
    POLL_MS,
    Partition,
    Transaction,
    due,
    is_open,
    poll_ms,
)
from processor.dedup_stage import _abort_quietly, _failed_for_good
from processor.metrics import ProcessorMetrics
from processor.pipeline import Pipeline
from processor.route import Routes
from processor.seen import SeenIds
from tests.unit.rawrecords import raw_record
from tests.unit.test_unwritable import TOPICS, TP, forum, keyed_record


def test_an_event_first_seen_in_an_open_transaction_is_a_duplicate_before_it_commits() -> None:
    pipeline = Pipeline(Settings(), ProcessorMetrics(), Routes(TOPICS))
    (output, *_) = pipeline.outputs_of(raw_record("websitetoolbox", forum("user.created")))
    partition = Partition(SeenIds(60_000), None)
    first = decide(TP, [keyed_record(output, 0)], partition.seen, 1000, TOPICS, partition.pending)
    partition.gather(first, 5.0)
    again = decide(TP, [keyed_record(output, 1)], partition.seen, 1001, TOPICS, partition.pending)
    partition.gather(again, 5.05)
    assert list(first.fresh) == ["websitetoolbox:1534"]
    assert again.fresh == {}
    assert again.duplicates == {"websitetoolbox": 1}
    assert len(partition.seen) == 0, "memory changes only after the commit"
    assert partition.open is not None
    assert (partition.open.began_s, partition.open.first_offset) == (5.0, 0)
    assert partition.open.offsets == {TP: 2}
    assert [o.topic for o in partition.open.outputs] == [*(o.topic for o in first.outputs), TOPICS.seen]


def test_a_transaction_is_due_after_the_interval_and_a_poll_waits_no_longer() -> None:
    idle, young, old = (Partition(SeenIds(60_000), None) for _ in range(3))
    young.open, old.open = Transaction(10.0, 0), Transaction(10.0 - COMMIT_INTERVAL_S, 0)
    partitions = {0: idle, 1: young, 2: old}
    assert due(partitions, 10.0) == [2]
    assert poll_ms([idle], 10.0) == POLL_MS
    assert poll_ms([idle, young], 10.0) == COMMIT_INTERVAL_S * 1000
    assert poll_ms(partitions.values(), 10.0) == 0
    assert is_open(partitions.values())
    assert not is_open([idle])


async def test_a_producer_failed_for_good_is_a_kafka_error_and_its_abort_is_quiet() -> None:
    """aiokafka fails a transactional producer fatally when its sender task dies (a connection reset
    while it looks up a coordinator, found by the replicated drill) and then asserts on every change of
    the transaction's state. The stage must see a KafkaError (the partition starts over with a new
    producer), never an AssertionError that would end its loop."""
    producer = clients.producer(Settings(), transactional_id="hs-test-dedup-0", enable_idempotence=True)
    producer._txn_manager.set_pid_and_epoch(1, 0)  # as InitProducerId leaves it: no broker needed here
    await producer.begin_transaction()
    producer._txn_manager.fatal_error(KafkaConnectionError("Connection reset by peer"))  # as its sender does
    with pytest.raises(KafkaError, match="failed for good"), _failed_for_good():
        await producer.commit_transaction()
    with pytest.raises(KafkaError, match="failed for good"), _failed_for_good():
        await producer.begin_transaction()
    await _abort_quietly(producer)  # logs, never raises
    await producer.stop()
