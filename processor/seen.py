"""The dedup state of one partition of the internal keyed topic: which event ids were first seen when.

Bounded by time, unlike a Faust table (whose `expires` never forgets ids restored from its changelog):
ids are kept in first-seen order, so forgetting the expired ones only ever looks at the oldest.
"""

from __future__ import annotations

from collections import OrderedDict


class SeenIds:
    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._first_seen: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._first_seen)

    def seen(self, event_id: str, now_ms: int) -> bool:
        first = self._first_seen.get(event_id)
        return first is not None and now_ms - first < self.window_ms

    def add(self, event_id: str, first_seen_ms: int) -> None:
        """Record `event_id`; an id seen again after it expired moves to the young end."""
        self._first_seen[event_id] = first_seen_ms
        self._first_seen.move_to_end(event_id)

    def expire(self, now_ms: int) -> int:
        """Forget the ids older than the window, oldest first; return how many."""
        cutoff = now_ms - self.window_ms
        expired = 0
        while self._first_seen:
            event_id, first = next(iter(self._first_seen.items()))
            if first > cutoff:
                break
            del self._first_seen[event_id]
            expired += 1
        return expired
