"""The one bounded, thread-safe LRU map of the library.

Every in-process cache that holds an entry per credential uses it: the resolver's answers
(:mod:`flask_authgear.core.resolver`), the verified-token cache (:mod:`flask_authgear.core.jwt`) and webhook
idempotency.
The bound is what keeps a flood of distinct junk credentials from growing memory; expiry is the caller's
business, because each caller has its own rule for when an entry stops being true.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["LRU"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A map of at most ``size`` entries; storing one more forgets the least recently read or written.

    Threads may share an instance. Writes hold one lock, so the bound holds. Reads take none: the dictionary
    read and the move to the end are each atomic, and a reader gets a whole value or none, so every warm
    request reads its caches without waiting. ``size <= 0`` stores nothing. A value is never None, which
    :meth:`get` answers for a missing key.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value (now the most recent entry), or None."""
        value = self._entries.get(key)
        if value is None:
            return None
        try:  # noqa: SIM105 - a read on every warm request: suppress() would add a context manager to it
            self._entries.move_to_end(key)
        except KeyError:  # forgotten by another thread since the read; the value read is still whole
            pass
        return value

    def __setitem__(self, key: K, value: V) -> None:
        if self.size <= 0:
            return
        with self._lock:
            entries = self._entries
            if key in entries:
                entries.move_to_end(key)
            else:
                # Room is made before a new key goes in, so that a reader, which takes no lock, never sees more
                # than ``size`` entries.
                while len(entries) >= self.size:
                    entries.popitem(last=False)
            entries[key] = value

    def pop(self, key: K) -> V | None:
        """Remove and return the value, or None, atomically (two threads never both get it)."""
        with self._lock:
            return self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
