"""The services' garbage-collector settings: young collections less often, the older generations as
CPython sets them."""

from __future__ import annotations

import gc

from hookstream.heap import YOUNG_COLLECTION_THRESHOLD, collect_young_less_often


def test_young_collections_wait_for_more_allocations_and_the_older_generations_are_untouched() -> None:
    before = gc.get_threshold()
    try:
        collect_young_less_often()
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, before[1], before[2])
        assert before[0] < YOUNG_COLLECTION_THRESHOLD
    finally:
        gc.set_threshold(*before)
