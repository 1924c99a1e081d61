"""The dashboard's cache: an expired page is answered at once from its expired copy while one
background refresh rebuilds it; past the stale bound the request rebuilds it itself; a down store
is remembered for the period; concurrent readers of a missing key wait for one computation."""

from __future__ import annotations

import threading
import time
from functools import partial

import pytest

from efficientai_assets.dashboard.cache import StoreDown, TTLCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_expired_page_is_served_at_once_while_one_background_refresh_rebuilds_it() -> None:
    clock = Clock()
    cache = TTLCache(10, clock=clock, max_stale_seconds=300)
    assert cache.get("page", lambda: "v1", stale_ok=True) == "v1"
    clock.now += 11
    release = threading.Event()
    calls: list[str] = []

    def slow_rebuild() -> str:
        calls.append("rebuild")
        assert release.wait(30), "the test never released the rebuild"
        return "v2"

    started = time.perf_counter()
    answers = [cache.get("page", slow_rebuild, stale_ok=True) for _ in range(5)]
    assert time.perf_counter() - started < 1.0, "a request waited for the rebuild"
    assert answers == ["v1"] * 5
    release.set()
    cache.wait_for_refreshes(timeout=30)
    assert calls == ["rebuild"], "one refresh for five requests"
    assert cache.get("page", lambda: "v3", stale_ok=True) == "v2"


def test_a_page_older_than_the_stale_bound_is_rebuilt_by_the_request() -> None:
    clock = Clock()
    cache = TTLCache(10, clock=clock, max_stale_seconds=60)
    cache.get("page", lambda: "old", stale_ok=True)
    clock.now += 61
    assert cache.get("page", lambda: "new", stale_ok=True) == "new"


def test_reads_without_stale_ok_never_see_an_expired_value() -> None:
    clock = Clock()
    cache = TTLCache(10, clock=clock)
    cache.get("registry", lambda: "old")
    clock.now += 10
    assert cache.get("registry", lambda: "new") == "new"


def test_a_down_store_is_remembered_for_the_period_and_a_background_refresh_can_end_it() -> None:
    clock = Clock()
    cache = TTLCache(10, clock=clock)
    calls = []

    def down() -> str:
        calls.append(1)
        raise StoreDown("mlflow", "MLflow at http://x did not answer")

    for _ in range(3):
        with pytest.raises(StoreDown):
            cache.get("page", down, stale_ok=True)
    assert len(calls) == 1
    clock.now += 11
    with pytest.raises(StoreDown):  # the stale answer is still "down" while it refreshes
        cache.get("page", lambda: "back", stale_ok=True)
    cache.wait_for_refreshes(timeout=30)
    assert cache.get("page", lambda: "unused", stale_ok=True) == "back"


def test_a_failing_refresh_keeps_the_previous_page() -> None:
    clock = Clock()
    cache = TTLCache(10, clock=clock)
    cache.get("page", lambda: "good", stale_ok=True)
    clock.now += 11

    def broken() -> str:
        raise KeyError("a bug in a page builder")

    assert cache.get("page", broken, stale_ok=True) == "good"
    cache.wait_for_refreshes(timeout=30)
    assert cache.get("page", broken, stale_ok=True) == "good"


def test_concurrent_readers_of_a_missing_key_wait_for_one_computation() -> None:
    cache = TTLCache(10)
    calls = []

    def compute() -> int:
        calls.append(1)
        time.sleep(0.2)
        return 42

    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("k", compute, stale_ok=True)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [42] * 4 and len(calls) == 1


def test_a_flood_of_distinct_queries_keeps_the_cache_bounded() -> None:
    from efficientai_assets.dashboard.cache import MAX_ENTRIES

    clock = Clock()
    cache = TTLCache(10, clock=clock)
    for index in range(3 * MAX_ENTRIES):
        clock.now += 0.001
        value = cache.get(("experiments", str(index)), partial(int, index), stale_ok=True)
        assert value == index
    assert len(cache._entries) <= MAX_ENTRIES
    newest = ("experiments", str(3 * MAX_ENTRIES - 1))
    assert cache.get(newest, lambda: -1) == 3 * MAX_ENTRIES - 1, "the newest entries stay"
