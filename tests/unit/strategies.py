"""Hypothesis strategies the normalizer tests share, and the one way they judge an outcome: a dead letter
with one of the expected reasons, or events that keep the published contract."""

from __future__ import annotations

from collections.abc import Collection

import orjson
from hypothesis import strategies as st

from processor import cloudevents
from processor.normalize import normalize
from processor.records import Invalid, Normalized, RawRecord
from tests.contract import assert_publishable

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def normalized_unless_dead_letter(raw: RawRecord, reasons: Collection[str]) -> Normalized | None:
    """What `raw` normalizes to, every event valid by its schemas as published; None when it is a dead
    letter, whose reason must be one of `reasons`."""
    try:
        normalized = normalize(raw)
    except Invalid as invalid:
        reason = invalid.reason
    else:
        for event in normalized.events:
            assert_publishable(orjson.loads(cloudevents.encode(event, raw)))
        return normalized
    assert reason in reasons
    return None
