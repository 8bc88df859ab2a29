"""The dedup state of one partition of the internal keyed topic: which event ids were first seen when.

Bounded by time, unlike a Faust table (whose `expires` never forgets ids restored from its changelog):
ids are kept in first-seen order, so forgetting the expired ones only ever looks at the oldest. Two
stores with one interface: in memory (`memory://`, the default) and on local disk in RocksDB
(`rocksdb://`, for windows with more ids than memory holds). The state topic is the truth; a store is
rebuilt from it when its partition is taken over. A disk store handed over in good order (its owner
closed it with the state topic's end offset) is kept, and the next owner on that disk reads only what
came after: a rolling restart does not re-read a whole window. Any other disk store starts empty.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

import orjson
from rocksdict import Options, Rdict

_ID = b"i/"  # i/<event id> -> first seen (ms, 8 bytes big-endian)
_TIME = b"t/"  # t/<first seen, 8 bytes big-endian><event id> -> b"": the time index expiry walks
_HANDED_OVER = b"h/"  # -> the state topic's end offset when the last owner closed the store in good order


class SeenStore(Protocol):
    window_ms: int

    def __len__(self) -> int: ...
    def seen(self, event_id: str, now_ms: int) -> bool: ...
    def add(self, event_id: str, first_seen_ms: int) -> None: ...
    def expire(self, now_ms: int) -> int: ...
    def take_over(self) -> int | None:
        """The state-topic offset up to which this store already holds everything, if it was handed
        over in good order; else None, and the store is empty. Either way it is now owned again."""
        ...

    def clear(self) -> None: ...
    def close(self, handed_over_at: int | None = None) -> None:
        """Close; with `handed_over_at` (the state topic's end offset, every id before it held here)
        the next owner may resume from it."""
        ...


class SeenIds:
    """In memory: an insertion-ordered map, oldest first."""

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

    def take_over(self) -> int | None:
        return None  # memory does not outlive its owner

    def clear(self) -> None:
        self._first_seen.clear()

    def close(self, handed_over_at: int | None = None) -> None:
        self._first_seen.clear()


class DiskSeenIds:
    """In RocksDB at `path`: kept from an earlier owner only if it was handed over (`take_over`)."""

    def __init__(self, window_ms: int, path: Path) -> None:
        self.window_ms = window_ms
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(path), options=Options(raw_mode=True))
        self._count = 0  # of ids since `take_over`, which counts what it keeps

    def __len__(self) -> int:
        return self._count

    def seen(self, event_id: str, now_ms: int) -> bool:
        first = self._db.get(_ID + event_id.encode())
        return first is not None and now_ms - int.from_bytes(first) < self.window_ms

    def add(self, event_id: str, first_seen_ms: int) -> None:
        key = event_id.encode()
        previous = self._db.get(_ID + key)
        if previous is not None:
            del self._db[_TIME + previous + key]
        else:
            self._count += 1
        stamp = first_seen_ms.to_bytes(8)
        self._db[_ID + key] = stamp
        self._db[_TIME + stamp + key] = b""

    def expire(self, now_ms: int) -> int:
        cutoff = now_ms - self.window_ms
        expired: list[bytes] = []
        for index in self._keys(_TIME):
            if int.from_bytes(index[2:10]) > cutoff:
                break
            expired.append(index)
        for index in expired:
            del self._db[index]
            del self._db[_ID + index[10:]]
        self._count -= len(expired)
        return len(expired)

    def take_over(self) -> int | None:
        mark = self._db.get(_HANDED_OVER)
        if mark is None:
            self.clear()  # its owner stopped without handing it over: nothing in it can be trusted
            return None
        del self._db[_HANDED_OVER]  # owned again: a crash from now on must not look like a hand-over
        self._db.flush()
        self._count = sum(1 for _ in self._keys(_ID))
        return int.from_bytes(mark)

    def clear(self) -> None:
        self._db.close()
        Rdict.destroy(str(self._path))
        self._db = Rdict(str(self._path), options=Options(raw_mode=True))
        self._count = 0

    def close(self, handed_over_at: int | None = None) -> None:
        if handed_over_at is not None:
            self._db[_HANDED_OVER] = handed_over_at.to_bytes(8)
            self._db.flush()
        self._db.close()
        if handed_over_at is None:
            Rdict.destroy(str(self._path))

    def _keys(self, prefix: bytes) -> Iterator[bytes]:
        """The keys starting with `prefix`, in order."""
        cursor = self._db.iter()
        cursor.seek(prefix)
        while cursor.valid() and (key := cursor.key()).startswith(prefix):
            yield key
            cursor.next()


MAX_KEPT_ID_BYTES = 128


def dedup_key(event_id: str) -> str:
    """What the state keeps of an event id: the id itself, or for a long one (a sender chooses its
    length) its SHA-256, so a state record of a full batch stays far below any topic's size limit."""
    encoded = event_id.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_KEPT_ID_BYTES:
        return event_id
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def encode_seen(first_seen_ms: int, event_ids: Iterable[str]) -> bytes:
    """One state-topic record: the ids a batch saw first, and when (one record per batch, not per id)."""
    return orjson.dumps({"t": first_seen_ms, "ids": list(event_ids)})


def decode_seen(value: bytes | None) -> tuple[int, list[str]]:
    """The (first seen, ids) of a state-topic record; an unreadable one holds nothing."""
    try:
        document = orjson.loads(value or b"")
        first_seen, event_ids = document["t"], document["ids"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return 0, []
    if not isinstance(first_seen, int) or not isinstance(event_ids, list):
        return 0, []
    return first_seen, [event_id for event_id in event_ids if isinstance(event_id, str)]


def open_seen(store: str, window_ms: int, state_dir: Path, seen_topic: str, partition: int) -> SeenStore:
    """The store HOOKSTREAM_STORE names, for one partition of `seen_topic`. `rocksdb://<dir>` puts it
    under <dir> (else under `state_dir`), named after the topic, so namespaces never share a store."""
    if store.startswith("rocksdb://"):
        base = Path(store.removeprefix("rocksdb://") or state_dir)
        return DiskSeenIds(window_ms, base / f"{seen_topic}-{partition}")
    return SeenIds(window_ms)
