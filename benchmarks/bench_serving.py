"""Serving throughput and p50/p99 latency of the model bento vs bare uvicorn: PENDING.

To fill in: serve the bento with ``bentoml serve`` on 127.0.0.1 and a bare uvicorn app doing the
same prediction, drive both with the same bounded request loop, and return rows built with
``benchmarks.harness.compare`` (throughput ≥-type target; p50/p99 as info rows).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.harness import not_measured

if TYPE_CHECKING:
    from benchmarks.harness import Row
    from benchmarks.run import Context

TITLE = "Serving throughput and latency vs bare uvicorn (pending)"
NAME = "serving"


def run(ctx: Context) -> list[Row]:
    note = "pending: waits for the serving issue (bento service); see this module's docstring"
    return [
        not_measured(NAME, "requests/s vs bare uvicorn", status="pending", note=note),
        not_measured(NAME, "p50 / p99 latency vs bare uvicorn", status="pending", note=note),
    ]
