"""exactly_once transactions that gather polls: what an open transaction counts as seen, and when it is
due (processor/dedup_partition.py). The broker side (commits, refusals, SIGKILL) is in the integration
tests of the processor and its faults."""

from __future__ import annotations

from hookstream.settings import Settings
from processor.dedup_batch import decide
from processor.dedup_partition import (
    POLL_MS,
    TRANSACTION_INTERVAL_S,
    Partition,
    Transaction,
    due,
    is_open,
    poll_ms,
)
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
    young.open, old.open = Transaction(10.0, 0), Transaction(10.0 - TRANSACTION_INTERVAL_S, 0)
    partitions = {0: idle, 1: young, 2: old}
    assert due(partitions, 10.0) == [2]
    assert poll_ms([idle], 10.0) == POLL_MS
    assert poll_ms([idle, young], 10.0) == TRANSACTION_INTERVAL_S * 1000
    assert poll_ms(partitions.values(), 10.0) == 0
    assert is_open(partitions.values())
    assert not is_open([idle])
