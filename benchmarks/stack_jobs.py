"""A job of independent heavy steps for the stack benchmark: each step is the same fixed amount of
single-threaded numerical work, tagged for the ``heavy`` Celery queue. Celery workers load this
module by name (``benchmarks.stack_jobs``), as they load the project's code location."""

from __future__ import annotations

import dagster as dg

from resources.stack.executor import executor_from_environment

STEPS = 4
MATRIX = 384
ROUNDS = 4000  # ~10 s of one core per step here: dispatch costs ~1 s a step


def _heavy_op(index: int) -> dg.OpDefinition:
    @dg.op(name=f"heavy_{index}", tags={"dagster-celery/queue": "heavy"})
    def heavy_step() -> float:
        import numpy as np

        rng = np.random.default_rng(index)
        matrix = rng.standard_normal((MATRIX, MATRIX)) / MATRIX
        total = 0.0
        for _ in range(ROUNDS):
            matrix = np.tanh(matrix @ matrix + 0.1)
            total += float(matrix[0, 0])
        return total

    return heavy_step


_OPS = [_heavy_op(index) for index in range(STEPS)]


@dg.job(executor_def=executor_from_environment())
def independent_heavy_steps() -> None:
    for op in _OPS:
        op()
