"""Which of Kafka's refusals of a record are for good, decided in this one place.

A record refused for good would be refused again however often it is sent: retrying it stops its
partition forever, so the processor writes a dead letter (`unwritable`) in its place and moves on.
Anything else is retried, because losing a record to an error we have not classified is worse than a
stalled partition, which `/livez` reports. Each class below says why it is where it is.
"""

from __future__ import annotations

from aiokafka import errors

UNWRITABLE = "unwritable"  # the dead-letter reason (`hs-error`) of a record refused for good

# Refused for good: the same bytes to the same topic meet the same refusal.
FOR_GOOD: tuple[type[BaseException], ...] = (
    # The record is larger than the topic's max.message.bytes (broker), or than our max_request_size
    # (the producer, before sending): its size will not change.
    errors.MessageSizeTooLargeError,
    # A produce batch larger than the broker accepts: we send records over a batch's size alone, so
    # this is one record too large, as above.
    errors.RecordListTooLargeError,
    # A topic name Kafka refuses. Derived names are checked before sending (hookstream/topics.py);
    # this covers one a check missed.
    errors.InvalidTopicError,
    # The broker's ACLs deny this principal the topic: only an operator changes that, and a deny on one
    # output topic must not stop every event behind the one routed there.
    errors.TopicAuthorizationFailedError,
    # The broker cannot store the record in the topic's message format: the format is the topic's.
    errors.UnsupportedForMessageFormatError,
)
# Transient, retried: leader elections and moved partitions (NotLeaderForPartition, LeaderNotAvailable,
# UnknownTopicOrPartition while a topic is created), too few in-sync replicas (NotEnoughReplicas*),
# timeouts and lost connections (RequestTimedOut, KafkaTimeoutError, KafkaConnectionError), and a broken
# idempotent producer (OutOfOrderSequenceNumber, which `DurableProducer` answers with a new producer).


def refused_for_good(error: BaseException) -> bool:
    """Whether `error`, the outcome of sending a record, means it can never be written there."""
    return isinstance(error, FOR_GOOD)


def refusal_detail(topic: str, error: BaseException) -> str:
    """What a dead letter's `hs-error-detail` says of a refusal: the topic and Kafka's own words."""
    return f"{topic}: {type(error).__name__}: {error}"
