"""A clock that moves only when told to, for tests of timelines that span hours."""

from __future__ import annotations

import threading
import time


class ManualClock:
    """Callable like ``time.time``; starts at ``start`` (default: now) and moves by
    :meth:`advance` or :meth:`set` only. Safe to share between threads."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds``; returns the new time."""
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float) -> None:
        with self._lock:
            self._now = when
