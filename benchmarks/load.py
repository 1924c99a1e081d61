"""Closed-loop HTTP load with the client and the servers on separate cores, and the servers' CPU time
read from /proc, so a serving benchmark reports both throughput and the CPU each request cost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def drive(
    url: str,
    body: bytes,
    concurrency: int,
    seconds: float,
    server_pids: list[int] | None = None,
) -> dict[str, Any]:
    """Closed-loop load on ``url``; the client runs on its own core when the machine has two."""
    probe = (lambda: cpu_seconds(server_pids)) if server_pids else None
    if not can_pin():
        return asyncio.run(_closed_loop(url, body, concurrency, seconds, probe))
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, CLIENT_CPUS)
    try:
        return asyncio.run(_closed_loop(url, body, concurrency, seconds, probe))
    finally:
        os.sched_setaffinity(0, previous)


# -- setup -------------------------------------------------------------------------------------------
