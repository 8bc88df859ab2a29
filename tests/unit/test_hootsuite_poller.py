"""The poller's pure parts: what counts as a change, and that its records normalize exactly like the
webhooks they stand in for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from processor.normalize import normalize
from receivers.hootsuite_api import Backoff
from receivers.hootsuite_poller import PollerState, changes, webhook_batches
from tests.unit.rawrecords import raw_record

NOW = datetime(2026, 11, 28, 16, 0, 0, 123000, tzinfo=UTC)


def test_only_new_or_changed_states_are_changes() -> None:
    state = PollerState(states={"m-1": "SCHEDULED", "m-2": "SENT"})
    messages: list[dict[str, Any]] = [
        {"id": "m-1", "state": "SENT"},
        {"id": "m-2", "state": "SENT"},
        {"id": 3, "state": "SCHEDULED"},
        {"id": "m-4"},
        {"state": "SENT"},
    ]
    assert changes(state, messages) == {"m-1": "SENT", "3": "SCHEDULED"}


def test_a_polled_change_becomes_the_event_a_webhook_would_give() -> None:
    (body,) = webhook_batches({"m-1": "SENT", "m-2": "SEND_FAILED_PERMANENTLY"}, NOW)
    events = normalize(raw_record("hootsuite", body, route="events")).events
    assert [(e.type, e.id, e.subject) for e in events] == [
        ("com.hootsuite.message.sent", "hootsuite:message:m-1:SENT", "message/m-1"),
        ("com.hootsuite.message.failed", "hootsuite:message:m-2:SEND_FAILED_PERMANENTLY", "message/m-2"),
    ]
    assert events[0].time == "2026-11-28T16:00:00.123Z"


def test_changes_are_batched_a_hundred_to_a_record_like_hootsuites_own() -> None:
    bodies = webhook_batches({f"m-{n}": "SENT" for n in range(250)}, NOW)
    assert [len(normalize(raw_record("hootsuite", b, route="events")).events) for b in bodies] == [
        100,
        100,
        50,
    ]


def test_backoff_is_jittered_exponential_and_never_longer_than_a_poll_interval() -> None:
    backoff = Backoff.for_interval(30)
    assert (backoff.base_s, backoff.cap_s) == (0.5, 30)
    assert all(0 <= backoff.delay_s(attempt) <= min(30, 0.5 * 2**attempt) for attempt in range(12))
    assert Backoff.for_interval(0.2).cap_s == 0.2
