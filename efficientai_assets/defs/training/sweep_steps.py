"""The sweep's steps: plan (refuse a bad sweep, open or reuse the parent MLflow run, fan out one
dynamic step per configuration), train one configuration (memo lookup, hardware gate, a child run
registered without an alias — the candidate's own training code), and summarize (the pure choice
of ``sweep_choice.py``, the results table on the parent run and in Dagster's metadata).

Thin Dagster steps around pure decisions: the expansion (``sweep_plan.py``), the memo verdict
(``memo.py``) and the best (``sweep_choice.py``). The assets are declared in ``sweep_assets.py``.
"""

import json
import math
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import dagster as dg

from efficientai_assets.defs.training.candidate import (
    TRAINING_CODE_VERSION,
    ParentRun,
    TrainingTools,
    _read_inputs,
    _train_and_register,
)
from efficientai_assets.defs.training.config import TrainingConfig
from efficientai_assets.defs.training.memo import PriorVersion, memo_verdict
from efficientai_assets.defs.training.recall import resolved_key
from efficientai_assets.defs.training.registry import splits_version
from efficientai_assets.defs.training.sweep_choice import (
    FAILED,
    REUSED,
    TRAINED,
    BestChoice,
    TrialOutcome,
    choose_best,
    results_markdown,
    results_rows,
    sweep_fingerprint,
)
from efficientai_assets.defs.training.sweep_config import SweepConfig
from efficientai_assets.defs.training.sweep_plan import SweepConfigError, TrialSpec
from efficientai_assets.gate.policy import Priority
from efficientai_assets.gate.step import enforce_heavy_gate
from efficientai_assets.names import (
    HEAVY_POOL,
    HEAVY_STEP_TAGS,
    LABEL_COLUMN,
    MODEL_NAME,
    SWEEP_TRIALS_ASSET,
    TAG_CODE_VERSION,
    TAG_DAGSTER_ASSET_KEY,
    TAG_DAGSTER_RUN_ID,
    TAG_DATA_MD5,
    TAG_FINGERPRINT,
    TAG_GIT_SHA,
    TAG_SWEEP_FINGERPRINT,
    TRAIN_SPLIT_FILE,
    TRAINING_EXPERIMENT,
)
from efficientai_assets.provenance import git_sha
from resources.dvc.resource import DvcResource, DvcVersion
from resources.hardware.resource import HardwareResource
from resources.mlflow.resource import MlflowResource

RESULTS_ARTIFACT = "sweep_results.json"
RESULTS_TABLE_ARTIFACT = "sweep_results.md"


@dataclass(frozen=True)
class SweepRun:
    """The sweep as its steps share it: the parent run (new, or reused when every configuration
    is already registered and an earlier sweep of the same keys finished), the splits it trains
    from, and how many configurations it has."""

    parent_run_id: str
    experiment_id: str
    reused: bool
    splits: DvcVersion
    fingerprint: str
    configurations: int


@dataclass(frozen=True)
class SweepResult:
    """What ``sweep_trials`` materializes: every outcome and the choice among them."""

    parent_run_id: str
    parent_run_url: str
    outcomes: tuple[TrialOutcome, ...]
    choice: BestChoice


@dg.op(
    ins={"splits_ready": dg.In(dg.Nothing)},
    out={"sweep": dg.Out(SweepRun), "trials": dg.DynamicOut(TrialSpec)},
    description="Refuses a bad sweep before anything runs; opens (or reuses) the parent run; "
    "one dynamic output per configuration.",
)
def plan_sweep(
    context: dg.OpExecutionContext,
    config: SweepConfig,
    mlflow: MlflowResource,
    dvc: DvcResource,
    hardware: HardwareResource,
) -> Iterator[dg.Output[SweepRun] | dg.DynamicOutput[TrialSpec]]:
    try:
        trials = config.trials()
    except SweepConfigError as error:
        raise dg.Failure(description=f"sweep config error: {error}") from None
    splits = splits_version(dvc)
    fingerprints = _trial_fingerprints(trials, hardware, dvc, splits)
    fingerprint = sweep_fingerprint(fingerprints)
    parent = None if config.base.force_retrain else _finished_sweep(mlflow, fingerprint)
    if parent is not None and not _all_registered(mlflow, fingerprints):
        parent = None
    reused = parent is not None
    if parent is None:
        parent = _open_parent(context, mlflow, splits, fingerprint, config, trials)
    experiment_id, parent_run_id = parent
    context.log.info(
        "sweep of %d configurations, parent run %s (%s)",
        len(trials),
        parent_run_id,
        "reused: every configuration is registered" if reused else "new",
    )
    yield dg.Output(
        SweepRun(parent_run_id, experiment_id, reused, splits, fingerprint, len(trials)),
        "sweep",
        metadata={"configurations": len(trials), "parent_run_reused": reused},
    )
    for trial in trials:
        yield dg.DynamicOutput(trial, mapping_key=trial.key, output_name="trials")


def _trial_fingerprints(
    trials: Sequence[TrialSpec], hardware: HardwareResource, dvc: DvcResource, splits: DvcVersion
) -> list[str]:
    """Each configuration's memo key as its training step will build it (``recall.resolved_key``
    on the data's shape, read from the Parquet footer only)."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="efficientai-sweep-") as scratch:
        folder = dvc.snapshot(splits, Path(scratch) / "splits")
        meta = pq.ParquetFile(folder / TRAIN_SPLIT_FILE)
        rows = meta.metadata.num_rows
        features = len([n for n in meta.schema_arrow.names if n != LABEL_COLUMN])
    return [
        resolved_key(
            TrainingConfig(**trial.config),
            hardware,
            splits.md5,
            TRAINING_CODE_VERSION,
            rows,
            features,
        ).fingerprint
        for trial in trials
    ]


def _finished_sweep(mlflow: MlflowResource, fingerprint: str) -> tuple[str, str] | None:
    """An earlier sweep of exactly these memo keys that finished: (experiment id, run id)."""
    client = mlflow.client()
    experiment = client.get_experiment_by_name(mlflow.experiment_name(TRAINING_EXPERIMENT))
    if experiment is None:
        return None
    found = client.search_runs(
        [experiment.experiment_id],
        f"tags.`{TAG_SWEEP_FINGERPRINT}` = '{fingerprint}' and attributes.status = 'FINISHED'",
        max_results=1,
    )
    return (str(experiment.experiment_id), found[0].info.run_id) if found else None


def _all_registered(mlflow: MlflowResource, fingerprints: Sequence[str]) -> bool:
    client = mlflow.client()
    name = mlflow.model_name(MODEL_NAME)
    versions = client.search_model_versions(f"name = '{name}'")
    registered = {v.tags.get(TAG_FINGERPRINT) for v in versions if v.status == "READY"}
    return all(fingerprint in registered for fingerprint in fingerprints)


def _open_parent(
    context: dg.OpExecutionContext,
    mlflow: MlflowResource,
    splits: DvcVersion,
    fingerprint: str,
    config: SweepConfig,
    trials: Sequence[TrialSpec],
) -> tuple[str, str]:
    """A RUNNING parent run; ``summarize_sweep`` ends it (FINISHED, or FAILED when nothing won)."""
    client = mlflow.client()
    experiment_id = mlflow.ensure_experiment(TRAINING_EXPERIMENT)
    tags = {
        TAG_DAGSTER_RUN_ID: context.run.run_id,
        TAG_DAGSTER_ASSET_KEY: SWEEP_TRIALS_ASSET,
        TAG_DATA_MD5: splits.md5,
        TAG_CODE_VERSION: TRAINING_CODE_VERSION,
        TAG_GIT_SHA: git_sha(),
        TAG_SWEEP_FINGERPRINT: fingerprint,
    }
    space: dict[str, Any] = (
        dict(config.grid) if config.grid else {k: v.model_dump() for k, v in config.random.items()}
    )
    run = client.create_run(experiment_id, run_name=f"sweep-{context.run.run_id[:8]}", tags=tags)
    mlflow.log_params(
        run.info.run_id,
        {
            "configurations": len(trials),
            "search": "grid" if config.grid else "random",
            "space": json.dumps(space)[:6000],
            "seed": config.seed,
            **{f"base.{k}": v for k, v in config.base.model_dump().items()},
        },
    )
    return experiment_id, run.info.run_id


@dg.op(
    pool=HEAVY_POOL,
    tags=HEAVY_STEP_TAGS,
    description="One configuration: reuse its registered version (same data, code, config) or "
    "train it behind the hardware gate in a child run of the sweep.",
)
def train_trial(
    context: dg.OpExecutionContext,
    sweep: SweepRun,
    trial: TrialSpec,
    mlflow: MlflowResource,
    dvc: DvcResource,
    hardware: HardwareResource,
) -> dg.Output[TrialOutcome]:
    config = TrainingConfig(**trial.config)
    tools = TrainingTools(mlflow=mlflow, dvc=dvc, hardware=hardware)
    base: dict[str, Any] = {
        "key": trial.key,
        "label": trial.label,
        "swept": dict(trial.swept),
        "config": dict(trial.config),
    }
    with tempfile.TemporaryDirectory(prefix="efficientai-train-") as scratch:
        inputs = _read_inputs(config, tools, sweep.splits, Path(scratch))
        name = mlflow.model_name(MODEL_NAME)
        found = (
            None
            if config.force_retrain
            else mlflow.find_model_version(name, {TAG_FINGERPRINT: inputs.key.fingerprint})
        )
        prior = PriorVersion(str(found.version), dict(found.tags)) if found is not None else None
        verdict = memo_verdict(
            inputs.key,
            prior,
            force_retrain=config.force_retrain,
            floor=config.min_validation_accuracy,
        )
        if found is not None and verdict.reuse and verdict.quality is not None:
            context.log.info("%s: %s", trial.key, verdict.reason)
            outcome = TrialOutcome(
                **base,
                status=REUSED,
                version=str(found.version),
                run_id=str(found.run_id or ""),
                fingerprint=inputs.key.fingerprint,
                val_accuracy=verdict.val_accuracy,
                val_loss=verdict.val_loss,
                quality=verdict.quality.tag,
            )
            return dg.Output(outcome, metadata=_outcome_metadata(outcome))
        gate = enforce_heavy_gate(context, hardware, priority=cast(Priority, config.priority))
        under = ParentRun(
            run_id=sweep.parent_run_id,
            run_name=f"{trial.key} {trial.label}"[:250],
            asset_key=f"{SWEEP_TRIALS_ASSET}[{trial.key}]",
        )
        try:
            result = _train_and_register(context, config, tools, gate, inputs, under=under)
        except Exception as error:  # one configuration failing must not stop the others
            context.log.error("%s failed: %s", trial.key, error)
            outcome = TrialOutcome(
                **base,
                status=FAILED,
                fingerprint=inputs.key.fingerprint,
                error=f"{type(error).__name__}: {mlflow.explain(error, 'training')}"[:1000],
            )
            return dg.Output(outcome, metadata=_outcome_metadata(outcome))
    meta = result.metadata or {}
    checks = list(result.check_results or [])
    outcome = TrialOutcome(
        **base,
        status=TRAINED,
        version=_text(meta.get("model_version")),
        run_id=_text(meta.get("mlflow_run_id")),
        fingerprint=inputs.key.fingerprint,
        val_accuracy=_number(meta.get("val_accuracy")),
        val_loss=_number(meta.get("val_loss")),
        quality="passed" if checks and checks[0].passed else "failed",
        train_seconds=_number(meta.get("train_seconds")),
    )
    return dg.Output(outcome, metadata=_outcome_metadata(outcome))


def _text(value: object) -> str:
    return str(getattr(value, "value", value) if value is not None else "")


def _number(value: object) -> float:
    raw = getattr(value, "value", value)
    return float(raw) if isinstance(raw, int | float) else math.nan


def _outcome_metadata(outcome: TrialOutcome) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "configuration": dg.MetadataValue.json(dict(outcome.swept)),
        "model_version": outcome.version or "-",
        "val_accuracy": outcome.val_accuracy,
        "val_loss": outcome.val_loss,
        "error": outcome.error or "-",
    }


@dg.op(description="Chooses the best configuration and records the table on the parent run.")
def summarize_sweep(
    context: dg.OpExecutionContext,
    sweep: SweepRun,
    outcomes: list[TrialOutcome],
    mlflow: MlflowResource,
) -> dg.Output[SweepResult]:
    ordered = tuple(sorted(outcomes, key=lambda o: o.key))
    choice = choose_best(ordered)
    table = results_markdown(ordered, choice.best)
    url = mlflow.run_url(sweep.experiment_id, sweep.parent_run_id)
    changed = any(o.status != REUSED for o in ordered)
    if not sweep.reused or changed:
        _record_on_parent(mlflow, sweep, ordered, choice, table)
    context.log.info(choice.reason)
    if choice.best is None:
        raise dg.Failure(
            description=f"the sweep produced no usable model: {choice.reason}",
            metadata={"results": dg.MetadataValue.md(table), "mlflow_parent_run_url": url},
        )
    best = choice.best
    counts = {
        status: sum(o.status == status for o in ordered) for status in (TRAINED, REUSED, FAILED)
    }
    return dg.Output(
        SweepResult(sweep.parent_run_id, url, ordered, choice),
        metadata={
            "results": dg.MetadataValue.md(table),
            "best": dg.MetadataValue.text(f"{best.key} ({best.label})"),
            "best_model_version": dg.MetadataValue.text(best.version),
            "best_val_accuracy": best.val_accuracy,
            "best_val_loss": best.val_loss,
            "reason": dg.MetadataValue.text(choice.reason),
            "configurations": len(ordered),
            **{f"configurations_{status}": n for status, n in counts.items()},
            "mlflow_parent_run_id": dg.MetadataValue.text(sweep.parent_run_id),
            "mlflow_parent_run_url": dg.MetadataValue.url(url),
            "parent_run_reused": sweep.reused and not changed,
        },
    )


def _record_on_parent(
    mlflow: MlflowResource,
    sweep: SweepRun,
    outcomes: Sequence[TrialOutcome],
    choice: BestChoice,
    table: str,
) -> None:
    """The table (JSON + markdown artifacts), counts and the best on the parent run, then end it
    (FAILED when no configuration produced a usable model)."""
    client = mlflow.client()
    run_id = sweep.parent_run_id
    client.log_text(run_id, json.dumps(results_rows(outcomes), indent=2), RESULTS_ARTIFACT)
    client.log_text(run_id, table + "\n", RESULTS_TABLE_ARTIFACT)
    metrics: dict[str, float] = {
        "configurations": len(outcomes),
        "configurations_failed": sum(o.status == FAILED for o in outcomes),
        "configurations_trained": sum(o.status == TRAINED for o in outcomes),
        "configurations_reused": sum(o.status == REUSED for o in outcomes),
    }
    tags: Mapping[str, str] = {"sweep.best_reason": choice.reason[:5000]}
    if choice.best is not None:
        metrics |= {
            "best_val_accuracy": choice.best.val_accuracy,
            "best_val_loss": choice.best.val_loss,
        }
        tags = {
            **tags,
            "sweep.best_key": choice.best.key,
            "sweep.best_model_version": choice.best.version,
            "sweep.best_run_id": choice.best.run_id,
        }
    mlflow.log_metrics_batch(run_id, [metrics])
    mlflow.set_tags(run_id, tags)
    if choice.best is not None:
        mlflow.log_params(run_id, {f"best.{k}": v for k, v in choice.best.swept.items()})
    client.set_terminated(run_id, status="FINISHED" if choice.best is not None else "FAILED")
