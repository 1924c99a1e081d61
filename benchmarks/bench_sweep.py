"""A hyperparameter sweep of 4 configurations vs 4 single-candidate runs of the same configurations.

Subject: the ``training_sweep`` job (plan → 4 ``train_trial`` steps → summarize → challenger with
its check → champion) in one Dagster run on the embedded default (in-process executor). Baseline:
4 sequential Dagster runs of ``candidate_model`` + ``champion_model``, one per configuration —
what a person did before the sweep existed. Both on fresh homes with the data already split (not
timed), in one warm process, interleaved, the first round untimed; medians of the rest. Every
configuration trains in both (fresh homes: nothing is memoized). Target ≤ 0.8×: the sweep pays a
run's start, the splits lookup and the champion contest once instead of four times. The hardware
gate gets thresholds a busy shared machine cannot trip (as in the tests).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Target, compare, median

if TYPE_CHECKING:
    from benchmarks.harness import Row
    from benchmarks.run import Context

TITLE = "Hyperparameter sweep of 4 configurations vs 4 single-candidate runs"
NAME = "sweep"
TARGET = Target("<=", 0.8)
BASE = {"epochs": 4, "batch_size": 64}
HIDDEN_UNITS: list[Any] = [[32], [64]]
LEARNING_RATES: list[Any] = [0.01, 0.003]
GRID = {"hidden_units": HIDDEN_UNITS, "learning_rate": LEARNING_RATES}
CONFIGURATIONS = [
    {**BASE, "hidden_units": h, "learning_rate": lr} for h in HIDDEN_UNITS for lr in LEARNING_RATES
]


def _home(root: Path) -> tuple[Any, dict[str, Any], Any]:
    """A fresh home with data versioned and split: (instance context, resources, definitions)."""
    import dagster as dg

    from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
    from efficientai_assets.defs.jobs import sweep_job
    from efficientai_assets.defs.training.assets import candidate_model, champion_model
    from efficientai_assets.defs.training.sweep_assets import sweep_challenger, sweep_trials
    from resources.defaults import build_resources
    from resources.hardware.gate_settings import GateSettings
    from resources.hardware.resource import HardwareResource
    from resources.home import EfficientAIHome

    home = EfficientAIHome(root.resolve())
    home.ensure_layout()
    calm = GateSettings(
        psi_cpu_some_max=100.0, psi_memory_some_max=100.0, psi_memory_full_max=100.0
    )
    resources = {**build_resources("bench", home), "hardware": HardwareResource(gate=calm)}
    instance_context = dg.instance_for_test(temp_dir=str(home.dagster_home))
    assets = [raw_dataset, dataset_splits, candidate_model, champion_model]
    definitions = dg.Definitions(
        assets=[*assets, sweep_trials, sweep_challenger], jobs=[sweep_job], resources=resources
    )
    instance = instance_context.__enter__()
    dg.materialize([raw_dataset, dataset_splits], resources=resources, instance=instance)
    return instance_context, resources, (definitions, instance)


def _sweep(root: Path) -> float:
    from efficientai_assets.defs.training.sweep_config import sweep_run_config
    from efficientai_assets.names import SWEEP_JOB

    context, _, (definitions, instance) = _home(root)
    try:
        job = definitions.resolve_job_def(SWEEP_JOB)
        started = time.perf_counter()
        result = job.execute_in_process(
            run_config=sweep_run_config({"base": BASE, "grid": GRID}), instance=instance
        )
        elapsed = time.perf_counter() - started
        assert result.success
        return elapsed
    finally:
        context.__exit__(None, None, None)


def _singles(root: Path) -> float:
    import dagster as dg

    from efficientai_assets.defs.training.assets import candidate_model, champion_model

    context, resources, (_, instance) = _home(root)
    try:
        started = time.perf_counter()
        for config in CONFIGURATIONS:
            dg.materialize(
                [candidate_model, champion_model],
                resources=resources,
                instance=instance,
                run_config={"ops": {"candidate_model": {"config": config}}},
            )
        return time.perf_counter() - started
    finally:
        context.__exit__(None, None, None)


def run(ctx: Context) -> list[Row]:
    rounds = 2 if ctx.quick else 4
    sweeps: list[float] = []
    singles: list[float] = []
    for index in range(rounds):
        sweep_s = _sweep(ctx.scratch / f"sweep-{index}")
        single_s = _singles(ctx.scratch / f"singles-{index}")
        ctx.log(f"round {index}: sweep {sweep_s:.1f} s, 4 single runs {single_s:.1f} s")
        if index > 0:  # the first round warms imports and caches
            sweeps.append(sweep_s)
            singles.append(single_s)
    return [
        compare(
            NAME,
            "4 configurations, embedded default (in-process executor)",
            subject="training_sweep job, one run",
            subject_value=median(sweeps),
            baseline="4 runs of candidate_model + champion_model",
            baseline_value=median(singles),
            unit="s",
            target=TARGET,
            note=f"median of {len(sweeps)} interleaved rounds after 1 warm-up; fresh homes, "
            "epochs 4, batch 64; every configuration trains in both",
            extra={"sweep_s": sweeps, "singles_s": singles},
        )
    ]
