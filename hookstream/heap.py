"""Short garbage-collection pauses for the long-running services.

A full collection walks every tracked object. A worker holds some 10^5 of them from its start alone
(Faust, aiokafka, aiohttp, our modules), so each full collection paused it for 35-50 ms, a few times a
minute at 1,000 events/s: one of the larger parts of the end-to-end p99 (measured with gc.callbacks).
Objects made while starting live as long as the process; moving them out of the collector's sight
leaves it only what the running service allocates.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect once, then exempt everything alive now from later collections (gc.freeze)."""
    gc.collect()
    gc.freeze()


# A young collection runs whenever allocations of tracked objects outnumber deallocations by this many.
# CPython's 700 is less than what the receivers' requests in flight hold at 64 clients (each request's
# objects live until the produce request that carries it is answered), so a young collection ran every
# ~60 requests, found them alive and promoted them, and the older generations' collections walked them
# again: ~0.5 s of collections per 10 s at full speed, pauses up to 20-40 ms in the p99 (measured with
# gc.callbacks). At 10,000 a young collection comes every few thousand requests and finds them gone.
YOUNG_COLLECTION_THRESHOLD = 10_000


def collect_young_less_often(threshold: int = YOUNG_COLLECTION_THRESHOLD) -> None:
    """Raise the young generation's threshold, leaving the older generations' as they are."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
