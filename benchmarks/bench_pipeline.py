"""The whole demo pipeline by CLI on a fresh home vs a plain script doing the same work: PENDING.

To fill in: time ``dagster job execute`` of the demo job on a fresh ``EFFICIENTAI_HOME`` against a
script calling the same libraries directly (target ≤ 1.5×), then re-run it memoized and compare
the candidate-model step's time with the training step's (target ≤ 5%). Return rows built with
``benchmarks.harness.compare``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.harness import Target, not_measured

if TYPE_CHECKING:
    from benchmarks.harness import Row
    from benchmarks.run import Context

TITLE = "Whole pipeline by CLI vs plain script (pending)"
NAME = "pipeline"


def run(ctx: Context) -> list[Row]:
    note = "pending: to be measured with the finished demo pipeline; see this module's docstring"
    return [
        not_measured(
            NAME,
            "fresh home: CLI vs plain script",
            status="pending",
            target=Target("<=", 1.5),
            note=note,
        ),
        not_measured(
            NAME,
            "memoized re-run: candidate step / training step",
            status="pending",
            target=Target("<=", 0.05),
            note=note,
        ),
    ]
