"""A child for the harness's own tests: reports given values, one per turn."""

from __future__ import annotations

from benchmarks.processes import report_step, wait_for_turn


def echo_child(values: list[float]) -> dict[str, int]:
    for value in values:
        wait_for_turn()
        report_step(value)
    return {"steps": len(values)}
