"""Standard Webhooks normalizer. `standard/invoice_paid.json` is constructed from the payload shape
PROVIDERS.md recommends (`{"type", "timestamp", "data"}`); headers are the ones the receiver keeps."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor import cloudevents
from processor.normalize import normalize
from processor.records import Event, Invalid, RawRecord
from tests.fixtures import fixture_bytes
from tests.unit.rawrecords import raw_record
from tests.unit.strategies import JSON_VALUES, normalized_unless_dead_letter

INVOICE_PAID = fixture_bytes("standard/invoice_paid.json")
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
RECEIVED = "2026-11-28T16:00:00.123Z"
REASONS = {"invalid_json", "schema", "missing_id"}
HEADERS = {
    "hs-name": b"acme",
    "hs-http-webhook-id": MSG_ID.encode(),
    "hs-http-webhook-timestamp": b"1795881598",
    "hs-http-webhook-signature": b"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
}


def _raw(body: bytes, *, key: bytes | None = MSG_ID.encode(), **headers: bytes | None) -> RawRecord:
    merged = {name: value for name, value in (HEADERS | headers).items() if value is not None}
    return raw_record("standard", body, key=key, extra_headers=merged)


def _event(payload: object, **headers: bytes | None) -> Event:
    (event,) = normalize(_raw(orjson.dumps(payload), **headers)).events
    return event


def _invalid(raw: RawRecord) -> Invalid:
    with pytest.raises(Invalid) as raised:
        normalize(raw)
    assert raised.value.detail
    return raised.value


def test_the_recommended_payload_becomes_this_exact_cloudevent() -> None:
    raw = _raw(INVOICE_PAID)
    (event,) = normalize(raw).events
    assert cloudevents.to_document(event, raw) == {
        "specversion": "1.0",
        "id": f"standard:acme:{MSG_ID}",
        "source": "urn:hookstream:standard",
        "type": "acme.invoice.paid",
        "subject": "invoice/inv_1",
        "time": "2026-11-28T15:59:58.250Z",
        "datacontenttype": "application/json",
        "dataschema": "urn:hookstream:schema:standard-webhooks:v1",
        "data": orjson.loads(INVOICE_PAID),
        "hsreceivedat": RECEIVED,
        "hsraw": "hookstream.raw.standard/0/42",
    }


def test_the_webhook_id_comes_from_the_record_key_when_the_header_is_absent() -> None:
    (event,) = normalize(_raw(INVOICE_PAID, key=b"msg_from_key", **{"hs-http-webhook-id": None})).events
    assert event.id == "standard:acme:msg_from_key"
    (event,) = normalize(_raw(INVOICE_PAID, key=b"msg_from_key")).events
    assert event.id == f"standard:acme:{MSG_ID}", "the header wins"


@pytest.mark.parametrize("payload", [[1, 2], "pong", 42, None, {"data": {}}, {"hello": "world"}])
def test_any_json_payload_is_an_event_of_the_sender_kept_unchanged(payload: object) -> None:
    event = _event(payload)
    assert (event.type, event.subject, event.data) == ("acme.event", None, payload)
    assert event.time == "2026-11-28T15:59:58Z", "the webhook-timestamp header"


@pytest.mark.parametrize(
    ("payload_type", "event_type"),
    [
        ("invoice.paid", "acme.invoice.paid"),
        ("ping", "acme.ping"),
        ("Customer_Card-v2.updated", "acme.Customer_Card-v2.updated"),
        ("invoice paid", "acme.event"),
        ("invoice..paid", "acme.event"),
        (".paid", "acme.event"),
        ("", "acme.event"),
        ("invoice.paid\n", "acme.event"),
        (5, "acme.event"),
    ],
)
def test_a_dotted_payload_type_names_the_event_anything_else_is_an_event(
    payload_type: object, event_type: str
) -> None:
    assert _event({"type": payload_type}).type == event_type


@pytest.mark.parametrize(
    ("payload", "subject"),
    [
        ({"type": "invoice.paid", "subject": "customer/cus_9", "data": {"id": "inv_1"}}, "customer/cus_9"),
        ({"type": "invoice.paid", "subject": "", "data": {"id": 7}}, "invoice/7"),
        ({"type": "bad type", "data": {"id": "x1"}}, "event/x1"),
        ({"data": {"id": "x1"}}, "event/x1"),
        ({"type": "invoice.paid", "data": {"id": True}}, None),
        ({"type": "invoice.paid", "data": {"id": ""}}, None),
        ({"type": "invoice.paid", "data": ["inv_1"]}, None),
        ({"type": "invoice.paid", "subject": 5}, None),
    ],
)
def test_the_subject_is_the_payloads_own_or_its_data_id(payload: dict[str, Any], subject: str | None) -> None:
    assert _event(payload).subject == subject


@pytest.mark.parametrize(
    ("timestamp", "header", "time"),
    [
        ("2026-11-28T17:59:58+02:00", b"1795881598", "2026-11-28T15:59:58Z"),
        ("not a time", b"1795881598", "2026-11-28T15:59:58Z"),
        (1795881000, b"1795881598", "2026-11-28T15:59:58Z"),
        (None, b"1795881598", "2026-11-28T15:59:58Z"),
        (None, b"soon", RECEIVED),
        (None, b"99999999999999999999", RECEIVED),
        (None, None, RECEIVED),
    ],
)
def test_the_time_is_the_payload_timestamp_else_the_signed_header_else_receipt(
    timestamp: object, header: bytes | None, time: str
) -> None:
    payload = (
        {"type": "invoice.paid"} if timestamp is None else {"type": "invoice.paid", "timestamp": timestamp}
    )
    assert _event(payload, **{"hs-http-webhook-timestamp": header}).time == time


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (_raw(b"{nope"), "invalid_json"),
        (_raw(b""), "invalid_json"),
        (_raw(b"\xff"), "invalid_json"),
        (_raw(INVOICE_PAID, **{"hs-name": None}), "schema"),
        (_raw(INVOICE_PAID, **{"hs-name": b""}), "schema"),
        (_raw(INVOICE_PAID, **{"hs-name": b"acme.billing"}), "schema"),
        (_raw(INVOICE_PAID, **{"hs-name": b"acme\n"}), "schema"),
        (_raw(INVOICE_PAID, key=None, **{"hs-http-webhook-id": None}), "missing_id"),
        (_raw(INVOICE_PAID, key=b"", **{"hs-http-webhook-id": b" "}), "missing_id"),
    ],
)
def test_what_cannot_become_an_event_is_invalid_with_a_reason(raw: RawRecord, reason: str) -> None:
    assert _invalid(raw).reason == reason


_STANDARD_SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["invoice.paid", "a..b"]) | JSON_VALUES,
        "timestamp": st.sampled_from(["2026-11-28T15:59:58Z", "0001-01-01T00:00:00+01:00"]) | JSON_VALUES,
        "subject": JSON_VALUES,
        "data": st.fixed_dictionaries({"id": JSON_VALUES}) | JSON_VALUES,
    },
)
_HEADER = st.none() | st.binary(max_size=24) | st.sampled_from([b"acme", b"1795881598", b"0"])
_KEY = st.none() | st.binary(max_size=24)


def assert_only_normalized_or_invalid(raw: RawRecord) -> None:
    """Either one event fit to publish, or a dead letter with one of our reasons; never anything else."""
    outcome = normalized_unless_dead_letter(raw, REASONS)
    if outcome is None:
        return
    (event,) = outcome.events
    assert outcome.pings == 0
    assert event.source == "urn:hookstream:standard"
    assert event.id.startswith("standard:")
    assert event.time.endswith("Z")
    cloudevents.encode(event, raw)


@given(st.binary(), _HEADER, _HEADER, _HEADER, _KEY)
def test_random_bytes_only_ever_normalize_or_are_invalid(
    body: bytes, name: bytes | None, msg_id: bytes | None, timestamp: bytes | None, key: bytes | None
) -> None:
    headers = {"hs-name": name, "hs-http-webhook-id": msg_id, "hs-http-webhook-timestamp": timestamp}
    assert_only_normalized_or_invalid(_raw(body, key=key, **headers))


@given(JSON_VALUES | _STANDARD_SHAPED, _HEADER, _KEY)
def test_random_json_only_ever_normalizes_or_is_invalid(
    payload: Any, timestamp: bytes | None, key: bytes | None
) -> None:
    raw = _raw(orjson.dumps(payload), key=key, **{"hs-http-webhook-timestamp": timestamp})
    assert_only_normalized_or_invalid(raw)
