"""The candidate step: read the splits and the machine, ask ``memo.memo_verdict`` whether an
identical version is registered, then either re-judge and re-alias that version or train a new
one in a child process (one MLflow run) and register it as ``challenger``.

The asset (``assets.candidate_model``) declares keys, checks and config; this module does the
reading and writing around the pure verdicts of ``memo.py`` and ``quality.py``.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import dagster as dg

from efficientai_assets.defs.training.config import TrainingConfig
from efficientai_assets.defs.training.memo import MemoKey, MemoVerdict, PriorVersion, memo_verdict
from efficientai_assets.defs.training.quality import judge_quality
from efficientai_assets.defs.training.recall import (
    SHAPE_FEATURES,
    SHAPE_ROWS,
    recall_candidate,
    reused_quality_check,
)
from efficientai_assets.defs.training.registry import (
    log_mlx_model,
    register_challenger,
    splits_version,
)
from efficientai_assets.gate.policy import Priority
from efficientai_assets.gate.step import GateDecision, enforce_heavy_gate
from efficientai_assets.models.mlp import TrainingParams
from efficientai_assets.names import (
    CHALLENGER_ALIAS,
    LABEL_COLUMN,
    MODEL_NAME,
    QUALITY_CHECK,
    TAG_CODE_VERSION,
    TAG_CONFIG_HASH,
    TAG_DAGSTER_ASSET_KEY,
    TAG_DAGSTER_RUN_ID,
    TAG_DATA_MD5,
    TAG_FINGERPRINT,
    TAG_GIT_SHA,
    TAG_PARENT_RUN,
    TAG_QUALITY,
    TAG_VAL_ACCURACY,
    TAG_VAL_LOSS,
    TRAIN_SPLIT_FILE,
    TRAINING_EXPERIMENT,
    VALIDATION_SPLIT_FILE,
)
from efficientai_assets.provenance import git_sha
from resources.dvc.resource import DvcResource, DvcVersion
from resources.hardware.recommend import TrainingRecommendation
from resources.hardware.resource import HardwareResource
from resources.mlflow.resource import MlflowResource

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

# Bump when a change to the training code should retrain rather than reuse a registered version.
TRAINING_CODE_VERSION = "1"


@dataclass(frozen=True)
class TrainingTools:
    """The resources the candidate step uses, passed as one value."""

    mlflow: MlflowResource
    dvc: DvcResource
    hardware: HardwareResource


@dataclass(frozen=True)
class ParentRun:
    """A training that is one configuration of a sweep: the sweep's MLflow run, the child
    run's name, and the step's identity (its ``dagster.asset_key`` tag)."""

    run_id: str
    run_name: str
    asset_key: str


@dataclass(frozen=True)
class TrainingInputs:
    """What this run would train from, read once: the private copy of the splits, their shape,
    the hyperparameters as resolved for this machine, and the memo key they give."""

    splits: DvcVersion
    scratch: Path
    folder: Path
    train_rows: int
    feature_columns: list[str]
    recommendation: TrainingRecommendation
    batch_size: int
    trained_with: dict[str, object]
    key: MemoKey


def run_candidate(
    context: dg.AssetExecutionContext, config: TrainingConfig, tools: TrainingTools
) -> dg.MaterializeResult:
    """Recall, read, decide (reuse or train), gate, write. The hardware gate judges only training:
    an answer already known (``recall.py``) or a reuse loads no model and trains nothing."""
    splits = splits_version(tools.dvc)
    known = recall_candidate(
        context, config, tools.mlflow, tools.hardware, splits, TRAINING_CODE_VERSION
    )
    if known is not None:
        return known
    with tempfile.TemporaryDirectory(prefix="efficientai-train-") as scratch:
        inputs = _read_inputs(config, tools, splits, Path(scratch))
        model_name = tools.mlflow.model_name(MODEL_NAME)
        # force_retrain skips the lookup: the verdict would ignore what it found.
        found = (
            None
            if config.force_retrain
            else tools.mlflow.find_model_version(
                model_name, {TAG_FINGERPRINT: inputs.key.fingerprint}
            )
        )
        prior = PriorVersion(str(found.version), dict(found.tags)) if found is not None else None
        verdict = memo_verdict(
            inputs.key,
            prior,
            force_retrain=config.force_retrain,
            floor=config.min_validation_accuracy,
        )
        if found is not None and verdict.reuse:
            context.log.info("reusing %s version %s (same fingerprint)", model_name, found.version)
            return _reuse(tools.mlflow, found, verdict, config, inputs)
        context.log.info(verdict.reason)
        gate = enforce_heavy_gate(context, tools.hardware, priority=cast(Priority, config.priority))
        return _train_and_register(context, config, tools, gate, inputs)


def _read_inputs(
    config: TrainingConfig, tools: TrainingTools, splits: DvcVersion, scratch: Path
) -> TrainingInputs:
    import pandas as pd

    # An exact, private copy of the fingerprinted version: a concurrent writer cannot change it.
    folder = tools.dvc.snapshot(splits, scratch / "splits")
    train_frame = pd.read_parquet(folder / TRAIN_SPLIT_FILE)
    feature_columns = [c for c in train_frame.columns if c != LABEL_COLUMN]
    recommendation = tools.hardware.recommend_training(
        n_samples=len(train_frame),
        n_features=len(feature_columns),
        hidden_units=max(config.hidden_units),
    )
    batch_size = config.batch_size or recommendation.batch_size
    # What decides the weights: the resolved batch size and device, not "auto".
    trained_with = {
        **config.training_fingerprint_fields(),
        "batch_size": batch_size,
        "device": recommendation.device,
    }
    return TrainingInputs(
        splits=splits,
        scratch=scratch,
        folder=folder,
        train_rows=len(train_frame),
        feature_columns=feature_columns,
        recommendation=recommendation,
        batch_size=batch_size,
        trained_with=trained_with,
        key=MemoKey.for_training(splits.md5, TRAINING_CODE_VERSION, trained_with),
    )


def _reuse(
    mlflow: MlflowResource,
    version: ModelVersion,
    verdict: MemoVerdict,
    config: TrainingConfig,
    inputs: TrainingInputs,
) -> dg.MaterializeResult:
    """Point ``challenger`` at the reused version and record today's verdict on it, which
    ``champion_model`` and promotions read (the floor is not part of the memo key)."""
    assert verdict.quality is not None, "a reuse verdict carries its quality verdict"
    name = mlflow.model_name(MODEL_NAME)
    client = mlflow.client()
    client.set_registered_model_alias(name, CHALLENGER_ALIAS, version.version)
    client.set_model_version_tag(name, version.version, TAG_QUALITY, verdict.quality.tag)
    run = client.get_run(version.run_id) if version.run_id else None
    run_url = mlflow.run_url(run.info.experiment_id, run.info.run_id) if run else ""
    return dg.MaterializeResult(
        metadata={
            "memoized": True,
            "reason": dg.MetadataValue.text(verdict.reason),
            "model_name": name,
            "model_version": dg.MetadataValue.text(str(version.version)),
            "mlflow_run_url": dg.MetadataValue.url(run_url),
            "val_accuracy": verdict.val_accuracy,
            "fingerprint": version.tags.get(TAG_FINGERPRINT, ""),
            **_shape_metadata(inputs),
        },
        check_results=[
            reused_quality_check(verdict, config.min_validation_accuracy, str(version.version))
        ],
    )


def _shape_metadata(inputs: TrainingInputs) -> dict[str, dg.MetadataValue]:
    """What ``recall.py`` rebuilds the memo key from on a later run without reading the data."""
    return {
        "data_md5": dg.MetadataValue.text(inputs.splits.md5),
        SHAPE_ROWS: dg.MetadataValue.int(inputs.train_rows),
        SHAPE_FEATURES: dg.MetadataValue.int(len(inputs.feature_columns)),
    }


def _train_and_register(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    config: TrainingConfig,
    tools: TrainingTools,
    gate: GateDecision,
    inputs: TrainingInputs,
    under: ParentRun | None = None,
) -> dg.MaterializeResult:
    """Train in a child process inside one MLflow run, log the model, register it as challenger
    with its quality verdict; a failed or killed training leaves a FAILED run and no version.
    ``under``: one configuration of a sweep — a child run of the sweep's run, registered without
    moving any alias (the sweep moves ``challenger`` to its best)."""
    from efficientai_assets.defs.training.blas import training_process_env
    from efficientai_assets.defs.training.train_worker import TrainingRequest, run_training_process

    mlflow, splits = tools.mlflow, inputs.splits
    model_name = mlflow.model_name(MODEL_NAME)
    provenance = {
        TAG_DAGSTER_RUN_ID: context.run.run_id,
        TAG_DAGSTER_ASSET_KEY: (
            under.asset_key if under is not None else context.asset_key.to_user_string()
        ),
        TAG_DATA_MD5: splits.md5,
        TAG_CODE_VERSION: TRAINING_CODE_VERSION,
        TAG_CONFIG_HASH: inputs.key.config_hash,
        TAG_FINGERPRINT: inputs.key.fingerprint,
        TAG_GIT_SHA: git_sha(),
    }
    run_tags = {**provenance, **gate.to_tags(), **inputs.recommendation.to_tags()}
    run_name = f"candidate-{context.run.run_id[:8]}"
    if under is not None:
        run_tags[TAG_PARENT_RUN], run_name = under.run_id, under.run_name
    with mlflow.run(TRAINING_EXPERIMENT, run_name, run_tags) as run_id:
        experiment_id = mlflow.client().get_run(run_id).info.experiment_id
        mlflow.log_params(
            run_id,
            {
                **inputs.trained_with,
                "train_rows": inputs.train_rows,
                "features": len(inputs.feature_columns),
                "data_path": splits.path,
            },
        )
        started = time.perf_counter()
        result = run_training_process(
            TrainingRequest(
                train_path=str(inputs.folder / TRAIN_SPLIT_FILE),
                validation_path=str(inputs.folder / VALIDATION_SPLIT_FILE),
                label_column=LABEL_COLUMN,
                output_dir=str(inputs.scratch / "model"),
                params=TrainingParams(
                    epochs=config.epochs,
                    batch_size=inputs.batch_size,
                    learning_rate=config.learning_rate,
                    hidden_units=tuple(config.hidden_units),
                    seed=config.seed,
                    family=config.model_family,
                    conv_channels=tuple(config.conv_channels),
                ),
            ),
            env=training_process_env(),
            timeout_seconds=config.timeout_seconds,
        )
        train_seconds = time.perf_counter() - started
        rows = [
            {
                "epoch": r.epoch,
                "train_loss": r.train_loss,
                "val_loss": r.val_loss,
                "val_accuracy": r.val_accuracy,
                "samples_per_second": r.samples_per_second,
            }
            for r in result.history
        ]
        logged = mlflow.log_metrics_batch(run_id, rows, step_key="epoch")
        final = result.history[-1]
        quality = judge_quality(final.val_accuracy, final.val_loss, config.min_validation_accuracy)
        mlflow.set_tags(
            run_id,
            {
                "training.device": result.device,
                **result.blas_tags,
                **tools.hardware.snapshot().to_tags("hardware.end."),
            },
        )
        model_uri = log_mlx_model(result, inputs.feature_columns)
        version = (register_challenger if under is None else _register_version)(
            mlflow,
            model_uri,
            {
                **provenance,
                TAG_QUALITY: quality.tag,
                TAG_VAL_ACCURACY: repr(final.val_accuracy),
                TAG_VAL_LOSS: repr(final.val_loss),
            },
        )

    context.log.info(
        "registered %s version %s (%s)", model_name, version.version, quality.description
    )
    return dg.MaterializeResult(
        metadata={
            "memoized": False,
            "model_name": model_name,
            "model_version": dg.MetadataValue.text(str(version.version)),
            "model_uri": dg.MetadataValue.text(model_uri),
            "mlflow_run_id": dg.MetadataValue.text(run_id),
            "mlflow_run_url": dg.MetadataValue.url(mlflow.run_url(experiment_id, run_id)),
            "model_version_url": dg.MetadataValue.url(
                mlflow.model_version_url(model_name, str(version.version))
            ),
            "val_accuracy": final.val_accuracy,
            "val_loss": final.val_loss,
            "train_loss": final.train_loss,
            "epochs": len(result.history),
            "samples_per_second": final.samples_per_second,
            "train_seconds": train_seconds,
            "metric_values_logged": logged,
            "device": result.device,
            "batch_size": inputs.batch_size,
            "blas": result.blas_tags.get("blas.source", "unknown"),
            "fingerprint": inputs.key.fingerprint,
            **_shape_metadata(inputs),
            **gate.to_metadata(),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=QUALITY_CHECK,
                passed=quality.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description=quality.description,
                metadata={
                    "val_accuracy": final.val_accuracy,
                    "val_loss": final.val_loss,
                    "floor": config.min_validation_accuracy,
                    "model_version": str(version.version),
                },
            )
        ],
    )


def _register_version(mlflow: MlflowResource, model_uri: str, tags: dict[str, str]) -> ModelVersion:
    """Register without moving an alias: a sweep's configuration waits for the sweep's choice."""
    import mlflow as mlflow_lib

    mlflow.client()  # points the fluent API at this store
    return mlflow_lib.register_model(model_uri, mlflow.model_name(MODEL_NAME), tags=tags)
