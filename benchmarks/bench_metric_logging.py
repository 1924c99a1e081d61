"""Metric logging of many values: the product's batched path vs a plain ``log_metric`` loop.

The product logs training history through ``MlflowResource.log_metrics_batch`` (``log_batch`` in
chunks of MLflow's 1,000-metric limit). The baseline calls ``MlflowClient.log_metric`` once per
value. Both write to their own SQLite store in a scratch folder, each repetition into a new run,
and every value is counted back from the store afterwards. The two run as interleaved children,
one repetition per turn; the first (100 values) is the warm-up. Target: ≥ 10× faster, no loss.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Target, compare, median, not_measured
from benchmarks.processes import InterleavedChildren, report_step, wait_for_turn

if TYPE_CHECKING:
    from benchmarks.harness import Row
    from benchmarks.run import Context

TITLE = "Metric logging: batched product path vs log_metric loop"
NAME = "metric_logging"
TARGET = Target(">=", 10.0)
KEYS = 10
WARMUP_VALUES = 100


def log_child(path: str, values: int, reps: int, workdir: str) -> dict[str, Any]:
    """In an interleaved child: one repetition per turn; returns the stored count per rep."""
    from resources.mlflow.resource import MlflowResource

    folder = Path(workdir) / path
    folder.mkdir(parents=True, exist_ok=True)
    resource = MlflowResource(
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}", artifact_root=str(folder / "artifacts")
    )
    client = resource.client()
    experiment_id = resource.ensure_experiment("benchmark")
    stored = []
    for rep in range(reps + 1):
        count = WARMUP_VALUES if rep == 0 else values
        steps = count // KEYS
        rows = [
            {"step": s, **{f"metric_{k}": s * 0.001 + k for k in range(KEYS)}} for s in range(steps)
        ]
        run_id = client.create_run(experiment_id, run_name=f"rep-{rep}").info.run_id
        wait_for_turn()
        started = time.perf_counter()
        if path == "product":
            resource.log_metrics_batch(run_id, rows, step_key="step")
        else:
            for row in rows:
                step = int(row["step"])
                for key, value in row.items():
                    if key != "step":
                        client.log_metric(run_id, key, value, step=step)
        elapsed = time.perf_counter() - started
        client.set_terminated(run_id)
        if rep:
            stored.append(
                sum(len(client.get_metric_history(run_id, f"metric_{k}")) for k in range(KEYS))
            )
        report_step(elapsed)
    return {"stored": stored}


def run(ctx: Context) -> list[Row]:
    try:
        import resources.mlflow.resource  # noqa: F401
    except ImportError as error:
        return [
            not_measured(
                NAME,
                "log 10,000 values",
                status="error",
                target=TARGET,
                note=f"the product's MLflow resource does not import: {error}",
            )
        ]
    values = 1_000 if ctx.quick else 10_000
    reps = 2 if ctx.quick else 3
    kwargs = {"values": values, "reps": reps, "workdir": str(ctx.scratch)}
    function = "benchmarks.bench_metric_logging:log_child"
    children = InterleavedChildren(
        {
            "product": (function, {"path": "product", **kwargs}, {}),
            "loop": (function, {"path": "loop", **kwargs}, {}),
        }
    )
    ctx.log(f"{values:,} values, {reps} reps after a warm-up")
    try:
        times: dict[str, list[float]] = {"product": [], "loop": []}
        for rep in range(reps + 1):
            for name, seconds in children.round().items():
                if rep:
                    times[name].append(seconds)
        results = children.finish()
    finally:
        children.close()
    product, loop = median(times["product"]), median(times["loop"])
    stored = results["product"].data["stored"]
    lost = [values - n for n in stored if n != values]
    loop_lost = [values - n for n in results["loop"].data["stored"] if n != values]
    note = (
        f"{values:,} values ({KEYS} metrics × {values // KEYS} steps), SQLite store; "
        f"stored {stored} of {values:,} per rep (loop: {results['loop'].data['stored']}); "
        f"median of {reps}"
    )
    row = compare(
        NAME,
        f"log {values:,} values: MlflowResource.log_metrics_batch vs log_metric loop",
        subject="log_metrics_batch",
        subject_value=values / product,
        baseline="log_metric loop",
        baseline_value=values / loop,
        unit="values/s",
        target=TARGET,
        peak_rss_mb=results["product"].peak_rss_mb,
        note=note,
        extra={"seconds": times, "stored": stored},
    )
    if lost or loop_lost:
        row.met = False
        row.note += f"; VALUES LOST: product {lost}, loop {loop_lost}"
    return [row]
