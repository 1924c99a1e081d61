"""Dashboard page latency on a home with hundreds of runs, cold (cache expired) and warm.

The home holds two namespaces with hundreds of MLflow runs (per-epoch curves), registered
versions, and Dagster runs with materializations, holds, checks and failures
(``benchmarks.dashboard_home``). Two dashboards serve it over HTTP, as ``make dashboard`` does,
with a one-second cache:

- *served*: the dashboard as shipped: an expired page is answered from its expired copy while
  it is rebuilt in the background (stale-while-revalidate);
- *baseline*: the same server with ``DASHBOARD_STALE_SECONDS=0``: an expired page is rebuilt
  inside the request (how every page behaved before), measured in the same run.

Each cold request comes after the cache expired; warm requests come back to back. Medians and
p95 of several requests per page. Target: every page's cold p95 under 1 s (the budget row), and
no page slower than its inline rebuild.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.harness import REPO_ROOT, Target, compare, median

if TYPE_CHECKING:
    from benchmarks.harness import Row
    from benchmarks.run import Context

TITLE = "Dashboard page latency (hundreds of runs, cold and warm cache)"
NAME = "dashboard"
PAGES = ("/", "/experiments", "/models", "/monitoring", "/hardware", "/alerts")
FLOOR = "/static/dashboard.js"
CACHE_SECONDS = 1.0
BUDGET_SECONDS = 1.0
NOT_SLOWER = Target("<=", 1.0)


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@contextmanager
def serve(root: Path, log: Path, **extra: str) -> Iterator[str]:
    """``python -m efficientai_assets.dashboard`` over the home at ``root``, stopped afterwards."""
    import httpx

    from resources.bentoml.servers import free_port

    port = free_port()
    prefixes = ("EFFICIENTAI_", "DASHBOARD_", "MLFLOW_TRACKING", "DAGSTER_HOME", "BENTOML_HOME")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(
        EFFICIENTAI_HOME=str(root),
        DAGSTER_HOME=str(root / "dagster"),
        BENTOML_HOME=str(root / "bentoml"),
        DASHBOARD_CACHE_SECONDS=str(CACHE_SECONDS),
        **extra,
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "efficientai_assets.dashboard", "--port", str(port)],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the dashboard exited: {log.read_text()[-2000:]}")
            try:
                httpx.get(url + FLOOR, timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("no dashboard after 300 s") from None
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def measure(url: str, reps: int) -> dict[str, dict[str, list[float]]]:
    """``page → {"cold": [...], "warm": [...]}`` seconds; cold requests follow an expiry."""
    import httpx

    out: dict[str, dict[str, list[float]]] = {p: {"cold": [], "warm": []} for p in PAGES}
    out[FLOOR] = {"cold": [], "warm": []}
    with httpx.Client(base_url=url, timeout=120) as client:
        for _ in range(reps):
            for path in (*PAGES, FLOOR):
                time.sleep(CACHE_SECONDS * 1.2)  # whatever the page read has expired now
                started = time.perf_counter()
                response = client.get(path)
                out[path]["cold"].append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{path} answered {response.status_code}")
                started = time.perf_counter()
                client.get(path)
                out[path]["warm"].append(time.perf_counter() - started)
    return out


def run(ctx: Context) -> list[Row]:
    from benchmarks.dashboard_home import HomeSize, build_home

    size = (
        HomeSize(runs=40, versions=10, days=10, dagster_runs=6, failed_runs=2)
        if ctx.quick
        else HomeSize()
    )
    reps = 4 if ctx.quick else 9
    ctx.log(
        f"building a home: {len(size.namespaces)} namespaces x {size.runs} runs, "
        f"{size.versions} versions, {size.days} days, {size.dagster_runs} Dagster runs"
    )
    root = ctx.scratch / "dashboard-home"
    build_home(root, size)
    load_before = os.getloadavg()[0]
    results = {}
    for name, extra in (("served", {}), ("baseline", {"DASHBOARD_STALE_SECONDS": "0"})):
        ctx.log(f"measuring the {name} dashboard")
        with serve(root, ctx.scratch / f"dashboard-{name}.log", **extra) as url:
            results[name] = measure(url, reps)
    load = f"load {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    shape = (
        f"{len(size.namespaces) * size.runs} MLflow runs, "
        f"{len(size.namespaces) * (size.dagster_runs + size.days)} Dagster runs"
    )
    rows: list[Row] = []
    served, inline = results["served"], results["baseline"]
    for path in PAGES:
        cold, old = served[path]["cold"], inline[path]["cold"]
        rows.append(
            compare(
                NAME,
                f"{path} cold (cache expired), p95",
                subject="served stale, rebuilt behind",
                subject_value=p95(cold),
                baseline="rebuilt in the request",
                baseline_value=p95(old),
                unit="s",
                target=NOT_SLOWER,
                note=f"median {median(cold) * 1000:.0f} ms vs {median(old) * 1000:.0f} ms; "
                f"p95 {'<' if p95(cold) < BUDGET_SECONDS else '>='} 1 s; {reps} requests; "
                f"{shape}; {load}",
                extra={"cold": cold, "baseline_cold": old},
            )
        )
        warm, floor = served[path]["warm"], served[FLOOR]["warm"]
        rows.append(
            compare(
                NAME,
                f"{path} warm, median",
                subject="cached page",
                subject_value=median(warm),
                baseline=f"{FLOOR} (HTTP floor)",
                baseline_value=median(floor),
                unit="s",
                note=f"p95 {p95(warm) * 1000:.0f} ms; {reps} requests",
                extra={"warm": warm, "floor": floor},
            )
        )
    slowest = max(PAGES, key=lambda p: p95(served[p]["cold"]))
    rows.append(
        compare(
            NAME,
            "slowest page, cold p95, vs the 1 s budget",
            subject=f"{slowest} cold p95",
            subject_value=p95(served[slowest]["cold"]),
            baseline="budget",
            baseline_value=BUDGET_SECONDS,
            unit="s",
            target=Target("<=", 1.0),
            note=f"slowest inline rebuild: {max(p95(inline[p]['cold']) for p in PAGES):.2f} s "
            f"p95; {shape}; {load}",
        )
    )
    return rows
