"""A short time-to-live cache in front of the stores, refreshed in the background, and the error
a down store turns into.

Pages read the same registry, event log and records many times a minute; each read is cached for
``DashboardSettings.cache_seconds`` (a failure too, so a dead server is asked once per period,
not once per section). Each key computes under its own lock: concurrent requests for the same
data wait for one read instead of all hitting the store.

Page documents are read with ``stale_ok``: once a page was built, a request after it expired is
answered from the expired copy at once while one background thread rebuilds it
(stale-while-revalidate), so no visitor waits for the stores — unless the copy is older than
``max_stale_seconds``, when the request rebuilds it itself rather than show old numbers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar, cast

T = TypeVar("T")
LOG = logging.getLogger(__name__)
REFRESH_THREADS = 2  # refreshes never take more than two cores from the machine's other work
MAX_ENTRIES = 2000  # pages are keyed by query (namespace, page token): a bound on what they hold


class StoreDown(RuntimeError):
    """A store did not answer or refused; ``store`` names it, the message says why (no secret)."""

    def __init__(self, store: str, message: str) -> None:
        super().__init__(message)
        self.store = store


class TTLCache:
    """Values (or the StoreDown they raised) kept for ``seconds``; with ``stale_ok``, served for
    up to ``max_stale_seconds`` while a background refresh replaces them."""

    def __init__(
        self,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_stale_seconds: float = 300.0,
    ) -> None:
        self.seconds = seconds
        self.max_stale_seconds = max(max_stale_seconds, seconds)
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, bool, Any]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()
        self._refreshing: dict[Hashable, Future[None]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def _lock(self, key: Hashable) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _compute(self, compute: Callable[[], Any]) -> tuple[float, bool, Any]:
        try:
            return (self._clock(), True, compute())
        except StoreDown as down:
            return (self._clock(), False, down)

    def get(self, key: Hashable, compute: Callable[[], T], stale_ok: bool = False) -> T:
        """The cached value of ``key``, computed by ``compute`` when missing or expired (or, with
        ``stale_ok``, the expired value while ``compute`` runs in the background); a cached
        StoreDown is raised again until it expires."""
        with self._lock(key):
            entry = self._entries.get(key)
            age = None if entry is None else self._clock() - entry[0]
            if age is None or age >= self.seconds:
                if stale_ok and age is not None and age < self.max_stale_seconds:
                    self._refresh_later(key, compute)
                else:
                    entry = self._compute(compute)
                    self._store(key, entry)
        assert entry is not None
        _, ok, value = entry
        if not ok:
            raise cast(StoreDown, value)
        return cast(T, value)

    def _store(self, key: Hashable, entry: tuple[float, bool, Any]) -> None:
        """Keep ``entry``; past ``MAX_ENTRIES`` drop the oldest half (a flood of distinct
        queries costs recomputation, never unbounded memory)."""
        with self._guard:
            self._entries[key] = entry
            if len(self._entries) > MAX_ENTRIES:
                by_age = sorted(self._entries, key=lambda k: self._entries[k][0])
                for old in by_age[: len(by_age) // 2]:
                    if old != key:
                        del self._entries[old]
                        lock = self._locks.get(old)
                        if lock is not None and not lock.locked():
                            del self._locks[old]

    def _refresh_later(self, key: Hashable, compute: Callable[[], Any]) -> None:
        """One background refresh of ``key`` at a time; requests meanwhile get the old value."""
        with self._guard:
            if key in self._refreshing:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(REFRESH_THREADS, "dashboard-refresh")
            self._refreshing[key] = self._pool.submit(self._refresh, key, compute)

    def _refresh(self, key: Hashable, compute: Callable[[], Any]) -> None:
        try:
            entry = self._compute(compute)  # outside the key's lock: readers never wait for it
            with self._lock(key):
                self._store(key, entry)
        except Exception:  # a bug, not a store: keep serving the old value, say so once
            LOG.exception("refreshing %r failed; the previous value is still served", key)
        finally:
            with self._guard:
                self._refreshing.pop(key, None)

    def wait_for_refreshes(self, timeout: float | None = None) -> None:
        """Block until the background refreshes started so far have ended (tests, shutdown)."""
        with self._guard:
            pending = list(self._refreshing.values())
        for future in pending:
            future.result(timeout=timeout)

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()
