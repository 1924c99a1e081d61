"""A hyperparameter sweep as assets: ``sweep_trials`` (a graph: plan → one ``train_trial`` step
per configuration, fanned out dynamically → summarize) and ``sweep_challenger`` (the best,
registered as ``challenger`` with the candidate's blocking quality check). ``champion_model``
depends on both the candidate and this challenger, so the sweep's job promotes its best through
the very step a single candidate goes through.

Why a graph-backed asset: each configuration is its own step, so the executor runs them in
parallel where it can, the ``heavy`` pool limits how many train at once and, on the team stack,
Celery sends each to the ``heavy`` queue; the sweep's result is still one asset a person reads.
"""

from typing import Any

import dagster as dg

from efficientai_assets.defs.training.candidate import TRAINING_CODE_VERSION
from efficientai_assets.defs.training.quality import judge_quality
from efficientai_assets.defs.training.sweep_steps import (
    SweepResult,
    plan_sweep,
    summarize_sweep,
    train_trial,
)
from efficientai_assets.names import (
    CHALLENGER_ALIAS,
    DATASET_SPLITS_ASSET,
    MODEL_NAME,
    QUALITY_CHECK,
    SWEEP_CHALLENGER_ASSET,
    SWEEP_TRIALS_ASSET,
    TAG_QUALITY,
)
from resources.mlflow.resource import MlflowResource
from resources.store_retry import retry_transient_store_errors

SWEEP_GROUP = "sweep"


@dg.graph_asset(
    name=SWEEP_TRIALS_ASSET,
    group_name=SWEEP_GROUP,
    kinds={"mlx", "mlflow"},
    ins={"dataset_splits": dg.AssetIn(DATASET_SPLITS_ASSET, dagster_type=dg.Nothing)},
    description="Every configuration of a grid or seeded random search over the training config, "
    "one step each (memoized, gated, a child MLflow run of the sweep's run); the table and the "
    "best.",
)
def sweep_trials(dataset_splits: Any) -> Any:
    sweep, trials = plan_sweep(dataset_splits)
    outcomes = trials.map(lambda trial: train_trial(sweep, trial))
    return summarize_sweep(sweep, outcomes.collect())


@dg.asset(
    name=SWEEP_CHALLENGER_ASSET,
    group_name=SWEEP_GROUP,
    kinds={"mlflow"},
    code_version=TRAINING_CODE_VERSION,
    check_specs=[
        dg.AssetCheckSpec(
            QUALITY_CHECK,
            asset=SWEEP_CHALLENGER_ASSET,
            blocking=True,
            description="The sweep's best: validation accuracy at or above its floor, finite loss.",
        )
    ],
    description="Points 'challenger' at the sweep's best configuration (validation accuracy, "
    "ties by loss); champion_model then promotes it as it would a single candidate.",
)
@retry_transient_store_errors
def sweep_challenger(
    context: dg.AssetExecutionContext, sweep_trials: SweepResult, mlflow: MlflowResource
) -> dg.MaterializeResult:
    best = sweep_trials.choice.best
    if best is None:  # summarize_sweep fails first; kept for a result loaded from elsewhere
        raise dg.Failure(sweep_trials.choice.reason)
    floor = float(best.config.get("min_validation_accuracy", 0.0))
    quality = judge_quality(best.val_accuracy, best.val_loss, floor)
    name = mlflow.model_name(MODEL_NAME)
    client = mlflow.client()
    client.set_registered_model_alias(name, CHALLENGER_ALIAS, best.version)
    client.set_model_version_tag(name, best.version, TAG_QUALITY, quality.tag)
    context.log.info(
        "%s version %s is the challenger (%s)", name, best.version, quality.description
    )
    return dg.MaterializeResult(
        metadata={
            "model_name": name,
            "model_version": dg.MetadataValue.text(best.version),
            "configuration": dg.MetadataValue.text(f"{best.key} ({best.label})"),
            "reason": dg.MetadataValue.text(sweep_trials.choice.reason),
            "val_accuracy": best.val_accuracy,
            "val_loss": best.val_loss,
            "mlflow_parent_run_url": dg.MetadataValue.url(sweep_trials.parent_run_url),
            "model_version_url": dg.MetadataValue.url(mlflow.model_version_url(name, best.version)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=QUALITY_CHECK,
                passed=quality.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description=quality.description,
                metadata={
                    "val_accuracy": best.val_accuracy,
                    "val_loss": best.val_loss,
                    "floor": floor,
                    "model_version": best.version,
                },
            )
        ],
    )
