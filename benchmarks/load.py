"""Closed-loop HTTP load with the client and the servers on separate cores, and the servers' CPU time
read from /proc, so a serving benchmark reports both throughput and the CPU each request cost; and
a burst of large requests with the latency of small requests around it (back-pressure)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SERVER_CPUS, CLIENT_CPUS = {0}, {1}


def can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant (a server's arbiter and the workers it spawned)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    tree = [root]
    for pid in tree:
        tree.extend(child for child, parent in parents.items() if parent == pid)
    return tree


def pin(pids: list[int], cpus: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.sched_setaffinity(pid, cpus)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by ``pids`` (those still alive)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


# -- load --------------------------------------------------------------------------------------------


async def _closed_loop(
    url: str,
    body: bytes,
    concurrency: int,
    seconds: float,
    server_cpu: Callable[[], float] | None = None,
) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    deadline = 0.0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
                    continue
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + min(1.0, seconds / 3)  # warm-up, not counted
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        latencies.clear()
        errors = 0
        cpu_before = server_cpu() if server_cpu else 0.0
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu_used = (server_cpu() - cpu_before) if server_cpu else 0.0
    ordered = sorted(latencies)
    if not ordered:
        raise RuntimeError(f"no successful request to {url} ({errors} errors)")
    return {
        "throughput": len(ordered) / elapsed,
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "requests": len(ordered),
        "errors": errors,
        "server_cpu_us": 1e6 * cpu_used / (len(ordered) + errors),
    }


def _on_client_cores(load: Coroutine[Any, Any, T]) -> T:
    """Run ``load`` on the client's core when the machine has two, so it never takes the server's."""
    if not can_pin():
        return asyncio.run(load)
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, CLIENT_CPUS)
    try:
        return asyncio.run(load)
    finally:
        os.sched_setaffinity(0, previous)


def drive(
    url: str,
    body: bytes,
    concurrency: int,
    seconds: float,
    server_pids: list[int] | None = None,
) -> dict[str, Any]:
    """Closed-loop load on ``url``; the client runs on its own core when the machine has two."""
    probe = (lambda: cpu_seconds(server_pids)) if server_pids else None
    return _on_client_cores(_closed_loop(url, body, concurrency, seconds, probe))


# -- a burst and the requests after it ---------------------------------------------------------------


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


async def _burst(url: str, body: bytes, requests: int, concurrency: int) -> dict[str, Any]:
    import aiohttp

    statuses: Counter[int] = Counter()
    answered: list[float] = []  # seconds, 200s only
    retry_after: Counter[str] = Counter()  # the Retry-After header of every 503 ("" = none)
    remaining = requests

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                await response.read()
                statuses[response.status] += 1
                if response.status == 200:
                    answered.append(time.perf_counter() - started)
                elif response.status == 503:
                    retry_after[response.headers.get("Retry-After", "")] += 1

    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    ordered = sorted(answered)
    return {
        "seconds": time.perf_counter() - started,
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "retry_after": dict(retry_after),
        "answered_p50_ms": 1000 * _percentile(ordered, 0.5),
        "answered_p99_ms": 1000 * _percentile(ordered, 0.99),
    }


def burst(url: str, body: bytes, requests: int, concurrency: int) -> dict[str, Any]:
    """Send ``requests`` copies of ``body`` from ``concurrency`` clients at once (each sends its
    next one as soon as it has an answer, refusals included): status counts, the ``Retry-After``
    of the 503s, and the latency of the answered ones."""
    return _on_client_cores(_burst(url, body, requests, concurrency))


async def _one_at_a_time(url: str, body: bytes, seconds: float) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession() as session:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
                    continue
            latencies.append(time.perf_counter() - started)
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "errors": errors,
        "p50_ms": 1000 * _percentile(ordered, 0.5),
        "p99_ms": 1000 * _percentile(ordered, 0.99),
        "max_ms": 1000 * ordered[-1] if ordered else float("nan"),
    }


def one_at_a_time(url: str, body: bytes, seconds: float) -> dict[str, Any]:
    """One client sending ``body`` back to back for ``seconds``: the latency an idle server gives."""
    return _on_client_cores(_one_at_a_time(url, body, seconds))


def batcher_counters(url: str) -> dict[str, Any]:
    """A bento worker's batcher counters (``GET /metadata``: batches, requests, refusals...)."""
    import json
    import urllib.request

    with urllib.request.urlopen(url + "/metadata", timeout=10) as response:
        return dict(json.loads(response.read())["batching"])


def mean_batch(before: dict[str, Any], after: dict[str, Any]) -> float:
    """Requests per batch between two readings of ``batcher_counters``."""
    batches = after["batches"] - before["batches"]
    return (after["requests"] - before["requests"]) / batches if batches else 0.0
