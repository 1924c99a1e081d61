"""A short time-to-live cache in front of the stores, and the error a down store turns into.

Pages read the same registry, event log and records many times a minute; each read is cached for
``DashboardSettings.cache_seconds`` (a failure too, so a dead server is asked once per period,
not once per section). Each key computes under its own lock: concurrent requests for the same
data wait for one read instead of all hitting the store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

T = TypeVar("T")


class StoreDown(RuntimeError):
    """A store did not answer or refused; ``store`` names it, the message says why (no secret)."""

    def __init__(self, store: str, message: str) -> None:
        super().__init__(message)
        self.store = store


class TTLCache:
    """Values (or the StoreDown they raised) kept for ``seconds``."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, bool, Any]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: Hashable) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value of ``key``, computed by ``compute`` when missing or expired;
        a cached StoreDown is raised again until it expires."""
        with self._lock(key):
            entry = self._entries.get(key)
            if entry is None or self._clock() - entry[0] >= self.seconds:
                try:
                    entry = (self._clock(), True, compute())
                except StoreDown as down:
                    entry = (self._clock(), False, down)
                self._entries[key] = entry
        _, ok, value = entry
        if not ok:
            raise cast(StoreDown, value)
        return cast(T, value)

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()
