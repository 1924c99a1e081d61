"""The team stack: the whole pipeline on it vs on the embedded default, and heavy-step throughput
with two Celery workers vs one.

Pipeline. Subject: ``efficientai_pipeline`` and one ``monitoring_job`` day queued through a running
stack's webserver (MLflow server with auth on PostgreSQL, S3 store, Dagster on PostgreSQL, Celery
workers), from submission to success, on a fresh stack each time (its start-up is timed apart).
Baseline: the same two jobs by ``dagster job execute`` on a fresh embedded home (``make run``).
Both get the same run config: the hardware gate told not to hold on CPU pressure, so a busy
machine's PSI does not decide the figure. Target ≤ 1.5×.

Throughput. ``benchmarks.stack_jobs``: four independent steps of fixed single-threaded work on the
``heavy`` queue, run on one heavy worker, then on two. Ratio = time with one / time with two.
Target ≥ 1.6× on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.bench_pipeline import DAGSTER, DAY, _env, _run
from benchmarks.harness import REPO_ROOT, Target, compare, median

if TYPE_CHECKING:
    from benchmarks.harness import Row
    from benchmarks.run import Context

TITLE = "Team stack vs embedded default"
NAME = "stack"
PIPELINE_TARGET = Target("<=", 1.5)
THROUGHPUT_TARGET = Target(">=", 1.6)
WORKSPACE = REPO_ROOT / "workspace.yaml"
GATE = {"hardware": {"config": {"gate": {"psi_cpu_some_max": 100.0, "psi_memory_some_max": 100.0}}}}
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _stack_pipeline(home: Path) -> tuple[float, float]:
    """(start-up seconds, pipeline + monitoring day seconds) on a fresh stack in ``home``."""
    from resources.home import EfficientAIHome
    from resources.stack import launch, lifecycle

    started = time.perf_counter()
    stack = lifecycle.up(EfficientAIHome(home), WORKSPACE)
    startup = time.perf_counter() - started
    try:
        started = time.perf_counter()
        run_id = launch.submit(stack, "efficientai_pipeline", run_config={"resources": GATE})
        launch.wait(stack, run_id, timeout_seconds=1800)
        run_id = launch.submit(stack, "monitoring_job", partition=DAY, run_config={})
        launch.wait(stack, run_id, timeout_seconds=1800)
        return startup, time.perf_counter() - started
    finally:
        lifecycle.down(EfficientAIHome(home), WORKSPACE)


def _embedded_pipeline(home: Path) -> float:
    """The two jobs of ``make run`` by CLI on a fresh embedded home, with the same run config."""
    from resources.home import EfficientAIHome

    EfficientAIHome(home).ensure_layout()
    config = home / "bench-run-config.json"
    config.write_text(json.dumps({"resources": GATE}))
    env = {k: v for k, v in _env(home).items() if not k.startswith("EFFICIENTAI_CELERY")}
    base = [DAGSTER, "job", "execute", "-m", "efficientai_assets.definitions", "-c", str(config)]
    tags = json.dumps({"dagster/partition": DAY})
    return _run([*base, "-j", "efficientai_pipeline"], env) + _run(
        [*base, "-j", "monitoring_job", "--tags", tags], env
    )


def _throughput(home: Path, reps: int, log: Any) -> tuple[list[float], list[float]]:
    """Seconds to run ``independent_heavy_steps`` on one heavy worker, then on two, ``reps``
    times alternately, on one stack (the second worker is started and stopped each time)."""
    import dagster as dg

    from resources.home import EfficientAIHome
    from resources.stack import lifecycle
    from resources.stack.settings import HEAVY_QUEUE

    stack = lifecycle.up(EfficientAIHome(home), WORKSPACE, workers=())
    saved = dict(os.environ)
    one: list[float] = []
    two: list[float] = []
    try:
        specs = [lifecycle.WorkerSpec(f"bench-heavy-{i}", (HEAVY_QUEUE,)) for i in (0, 1)]
        lifecycle.start_worker(stack, specs[0], extra_env=SINGLE_THREAD)
        os.environ.update(stack.client_env(secrets=False))
        # Imported only now: the job's executor is chosen from the environment when it loads.
        from benchmarks.stack_jobs import independent_heavy_steps

        if independent_heavy_steps.executor_def.name != "celery":
            raise RuntimeError("benchmarks.stack_jobs was loaded before the stack's environment")
        job = dg.reconstructable(independent_heavy_steps)
        with dg.DagsterInstance.from_config(str(stack.paths.dagster_home)) as instance:
            dg.execute_job(job, instance=instance)  # warm-up: both sides' imports
            for rep in range(reps):
                for times in (one, two):
                    if times is two:
                        lifecycle.start_worker(stack, specs[1], extra_env=SINGLE_THREAD)
                    started = time.perf_counter()
                    result = dg.execute_job(job, instance=instance)
                    times.append(time.perf_counter() - started)
                    if not result.success:
                        raise RuntimeError("independent_heavy_steps failed on the stack")
                stack.stop_service(specs[1].name)
                log(f"rep {rep}: one worker {one[-1]:.1f} s, two workers {two[-1]:.1f} s")
        return one, two
    finally:
        os.environ.clear()
        os.environ.update(saved)
        lifecycle.down(EfficientAIHome(home), WORKSPACE)


def run(ctx: Context) -> list[Row]:
    reps = 1 if ctx.quick else 3
    stack_times: list[float] = []
    startups: list[float] = []
    embedded_times: list[float] = []
    for rep in range(reps):
        startup, elapsed = _stack_pipeline(ctx.scratch / f"stack-{rep}")
        startups.append(startup)
        stack_times.append(elapsed)
        embedded_times.append(_embedded_pipeline(ctx.scratch / f"embedded-{rep}"))
        ctx.log(
            f"rep {rep}: stack {elapsed:.1f} s (+{startup:.1f} s up), "
            f"embedded {embedded_times[-1]:.1f} s"
        )
    one, two = _throughput(ctx.scratch / "throughput", reps, ctx.log)
    detail: dict[str, Any] = {"stack_startup_s": startups}
    return [
        compare(
            NAME,
            "whole pipeline + one monitoring day: stack vs embedded",
            subject="stack (queued, Celery workers)",
            subject_value=median(stack_times),
            baseline="embedded (dagster job execute)",
            baseline_value=median(embedded_times),
            unit="s",
            target=PIPELINE_TARGET,
            note=f"median of {reps}; fresh stack / home each; stack start-up (not timed in the "
            f"ratio) {median(startups):.0f} s",
            extra=detail,
        ),
        compare(
            NAME,
            "4 independent heavy steps: two workers vs one (throughput)",
            subject="two heavy workers",
            subject_value=median(one) / median(two),
            baseline="one heavy worker",
            baseline_value=1.0,
            unit="×",
            target=THROUGHPUT_TARGET,
            note=f"median of {reps}; one worker: "
            + ", ".join(f"{t:.1f}" for t in one)
            + " s; two: "
            + ", ".join(f"{t:.1f}" for t in two)
            + " s; steps single-threaded (OMP/OPENBLAS_NUM_THREADS=1)",
        ),
    ]
