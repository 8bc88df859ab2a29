"""examples/consumer.py's handling, without a broker: once per event id, and only the schema version it
knows (the whole service runs against the broker in tests/integration/test_consumer_example.py)."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.kafka import KafkaMessage, from_structured_event

from examples.consumer import UnsupportedSchema, Welcomes
from processor import cloudevents
from processor.normalize import normalize
from tests.support import USER_CREATED
from tests.unit.rawrecords import raw_record


def _event(event_id: str = "websitetoolbox:1534", dataschema: str | None = None) -> BaseCloudEvent:
    """The forum's user.created example as a worker publishes it, read with the CloudEvents SDK."""
    raw = raw_record("websitetoolbox", USER_CREATED)
    (event,) = normalize(raw).events
    event = dataclasses.replace(event, id=event_id, dataschema=dataschema or event.dataschema)
    value = cloudevents.encode(event, raw)
    headers = {"content-type": cloudevents.CONTENT_TYPE.encode()}
    return from_structured_event(KafkaMessage(headers=headers, key=b"user/181855", value=value))


def test_an_event_is_handled_once_however_often_it_is_delivered(tmp_path: Path) -> None:
    welcomes = Welcomes(str(tmp_path / "welcome.sqlite3"))
    assert welcomes.handle(_event()) is True
    assert welcomes.handle(_event()) is False
    assert welcomes.handle(_event("websitetoolbox:1535")) is True
    welcomes.close()
    with sqlite3.connect(tmp_path / "welcome.sqlite3") as db:
        rows = db.execute("SELECT user_id, email, event_id FROM welcome ORDER BY event_id").fetchall()
    assert rows == [
        ("181855", "johnDoe@gmail.com", "websitetoolbox:1534"),
        ("181855", "johnDoe@gmail.com", "websitetoolbox:1535"),
    ]


def test_a_schema_version_it_was_not_written_for_stops_it_before_any_effect(tmp_path: Path) -> None:
    welcomes = Welcomes(str(tmp_path / "welcome.sqlite3"))
    v2 = "urn:hookstream:schema:com.websitetoolbox.user.created:v2"
    with pytest.raises(UnsupportedSchema, match=v2):
        welcomes.handle(_event(dataschema=v2))
    assert welcomes.handle(_event()) is True, "nothing of the refused event was recorded"
    welcomes.close()
