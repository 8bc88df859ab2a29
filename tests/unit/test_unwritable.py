"""What parses and then cannot be written (SPEC §2 Routing): the pure parts, without Kafka. The same on
the broker: tests/integration/test_unwritable.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka import errors as kafka_errors

from hookstream.errors import SettingsError
from hookstream.refusals import refused_for_good
from hookstream.settings import Settings
from hookstream.topics import Topics, Unroutable
from processor.dedup_batch import decide
from processor.metrics import ProcessorMetrics
from processor.outputs import Output
from processor.pipeline import Pipeline
from processor.route import Routes
from processor.seen import MAX_KEPT_ID_BYTES, SeenIds, dedup_key
from tests.fixtures import fixture_bytes
from tests.support import USER_CREATED, sso_form
from tests.unit.rawrecords import raw_record

TOPICS = Topics()
TP = TopicPartition(TOPICS.keyed, 0)


@pytest.fixture
def metrics() -> ProcessorMetrics:
    return ProcessorMetrics()


@pytest.fixture
def pipeline(metrics: ProcessorMetrics) -> Pipeline:
    return Pipeline(Settings(), metrics, Routes(TOPICS))


def forum(event_type: str, event_id: int = 1534) -> bytes:
    envelope = orjson.loads(USER_CREATED)
    envelope.update({"type": event_type, "id": event_id})
    return orjson.dumps(envelope)


def test_an_event_whose_type_can_be_no_topic_goes_to_the_firehose_saying_why(pipeline: Pipeline) -> None:
    (keyed,) = pipeline.outputs_of(raw_record("websitetoolbox", forum("user." + "a" * 240)))
    headers = dict(keyed.headers)
    assert headers["hs-out-topics"] == b"hookstream.events"
    assert headers["hs-unroutable"] == b"too_long"


def test_an_event_larger_than_the_keyed_topic_takes_is_its_raw_records_dead_letter(
    pipeline: Pipeline, metrics: ProcessorMetrics
) -> None:
    """A 450,000-character assignment id sits in the id, subject, key, a header and data: over 2 MB."""
    body = sso_form("secret", 1_700_000_000, assignmentId="7" * 450_000, modifiedDate="2026-11-28 15:00:00")
    form = {"content-type": b"application/x-www-form-urlencoded"}
    raw = raw_record("hootsuite", body, route="callback", extra_headers=form)
    (dead,) = pipeline.outputs_of(raw)
    headers = dict(dead.headers)
    assert headers["hs-error"] == b"unwritable"
    assert b"hookstream.internal.keyed" in headers["hs-error-detail"]
    assert dead.value == body, "the dead letter holds the raw bytes"
    assert metrics.dead_letters.labels("hootsuite", "unwritable")._value.get() == 1


def keyed_record(output: Output, offset: int) -> Any:
    """A keyed-topic record as the dedup stage reads it back."""

    class Record:
        topic, partition, key, value, headers = (
            TP.topic,
            TP.partition,
            output.key,
            output.value,
            output.headers,
        )

    record = Record()
    record.offset = offset  # type: ignore[attr-defined]
    return record


def test_a_batch_counts_nothing_until_it_is_told_to(pipeline: Pipeline, metrics: ProcessorMetrics) -> None:
    """Retried batches are decided again: only `count`, called once Kafka has a batch, counts."""
    outputs = [
        *pipeline.outputs_of(raw_record("websitetoolbox", forum("user.created"), offset=1)),
        *pipeline.outputs_of(raw_record("websitetoolbox", forum("user.created"), offset=2)),
        *pipeline.outputs_of(raw_record("websitetoolbox", forum("user." + "b" * 240, 9), offset=3)),
    ]
    records = [keyed_record(output, offset) for offset, output in enumerate(outputs)]
    for _ in range(3):
        batch = decide(TP, records, SeenIds(60_000), 1000, TOPICS)
    assert metrics.duplicates.labels("websitetoolbox")._value.get() == 0
    batch.count(metrics)
    assert metrics.duplicates.labels("websitetoolbox")._value.get() == 1
    assert metrics.unroutable.labels("too_long")._value.get() == 1
    assert metrics.events_published.labels("com.websitetoolbox.user.created")._value.get() == 1
    assert metrics.events_published.labels("other")._value.get() == 1, "a long type is no label"


def test_a_topic_that_can_be_no_topic_is_left_out_and_counted(pipeline: Pipeline) -> None:
    outputs = pipeline.outputs_of(raw_record("websitetoolbox", forum("user.created")))
    batch = decide(TP, [keyed_record(outputs[0], 0)], SeenIds(60_000), 1000, TOPICS)
    kept = batch.without({"hookstream.websitetoolbox.user.created": Unroutable.COLLISION})
    assert [o.topic for o in kept.outputs] == ["hookstream.events"]
    assert kept.unroutable == {"collision": 1}


def test_an_event_refused_for_good_becomes_one_dead_letter_in_place_of_all_its_outputs(
    pipeline: Pipeline, metrics: ProcessorMetrics
) -> None:
    outputs = pipeline.outputs_of(raw_record("websitetoolbox", forum("user.created")))
    batch = decide(TP, [keyed_record(outputs[0], 7)], SeenIds(60_000), 1000, TOPICS)
    refused = batch.dead_lettering({"websitetoolbox:1534": "crm.small: MessageSizeTooLargeError"}, TOPICS.dlq)
    assert refused.outputs == []
    (letter,) = refused.letters
    headers = dict(letter.headers)
    assert (letter.topic, letter.key, letter.value) == ("hookstream.dlq", b"user/181855", outputs[0].value)
    assert headers["hs-error"] == b"unwritable"
    assert headers["hs-origin"] == b"hookstream.internal.keyed/0/7"
    assert "hs-event-id" not in headers
    assert "hs-out-topics" not in headers
    assert refused.dead_lettering({"websitetoolbox:1534": "again"}, TOPICS.dlq) is refused
    refused.count(metrics)
    assert metrics.dead_letters.labels("websitetoolbox", "unwritable")._value.get() == 1


def test_long_event_ids_are_kept_as_their_hash() -> None:
    long_id = "hootsuite:assignment:" + "7" * 300_000
    assert len(dedup_key(long_id)) <= MAX_KEPT_ID_BYTES
    assert dedup_key(long_id) == dedup_key(long_id) != dedup_key(long_id + "8")
    assert dedup_key("websitetoolbox:1534") == "websitetoolbox:1534"


@pytest.mark.parametrize(
    ("error", "for_good"),
    [
        (kafka_errors.MessageSizeTooLargeError(), True),
        (kafka_errors.RecordListTooLargeError(), True),
        (kafka_errors.InvalidTopicError(), True),
        (kafka_errors.TopicAuthorizationFailedError("crm.small"), True),
        (kafka_errors.NotEnoughReplicasError(), False),
        (kafka_errors.NotLeaderForPartitionError(), False),
        (kafka_errors.KafkaTimeoutError(), False),
        (kafka_errors.OutOfOrderSequenceNumber(), False),
        (kafka_errors.UnknownTopicOrPartitionError(), False),
    ],
)
def test_only_refusals_that_would_repeat_are_for_good(error: Exception, for_good: bool) -> None:
    assert refused_for_good(error) is for_good


@pytest.mark.parametrize(
    "topic", ["hookstream.raw.x", "hookstream.internal.keyed", "a" * 250, "hookstream.dlq"]
)
def test_a_routes_file_topic_kafka_refuses_or_of_our_own_stops_startup(tmp_path: Path, topic: str) -> None:
    routes_file = tmp_path / "routes.toml"
    routes_file.write_text(f'[[route]]\ntype = "com.x.*"\ntopics = ["{topic}"]\n')
    with pytest.raises(SettingsError) as raised:
        Routes.load(TOPICS, routes_file)
    assert raised.value.name == "HOOKSTREAM_ROUTES"


def test_a_standard_sender_named_io_cannot_reach_the_internal_topics(pipeline: Pipeline) -> None:
    """Names like `io` are refused at startup; a raw record written before that still routes safely."""
    body = fixture_bytes("standard/invoice_paid.json").replace(b'"invoice.paid"', b'"internal.keyed"')
    headers = {"hs-name": b"io", "hs-http-webhook-id": b"msg_1"}
    (keyed,) = pipeline.outputs_of(raw_record("standard", body, extra_headers=headers))
    assert dict(keyed.headers)["hs-out-topics"] == b"hookstream.events"
    assert dict(keyed.headers)["hs-unroutable"] == b"reserved"
