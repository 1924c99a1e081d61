"""Training assets: the MLX candidate (one MLflow run, registered as ``challenger``, with a blocking
quality check) and the champion, which moves the ``champion`` alias only to a candidate that passed
its check and is not worse than the current champion on the same validation split."""

import math
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

import dagster as dg

from efficientai_assets.defs.training.config import TrainingConfig
from efficientai_assets.gate.policy import GateDecision, Priority, enforce_heavy_gate
from efficientai_assets.models.mlp import CONFIG_FILENAME, WEIGHTS_FILENAME, TrainingParams
from efficientai_assets.names import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    DATASET_SPLITS_ASSET,
    HEAVY_POOL,
    LABEL_COLUMN,
    MODEL_NAME,
    QUALITY_CHECK,
    SPLITS_DIR,
    TAG_CODE_VERSION,
    TAG_CONFIG_HASH,
    TAG_DAGSTER_ASSET_KEY,
    TAG_DAGSTER_RUN_ID,
    TAG_DATA_MD5,
    TAG_FINGERPRINT,
    TAG_GIT_SHA,
    TAG_QUALITY,
    TAG_ROLLED_BACK,
    TAG_VAL_ACCURACY,
    TAG_VAL_LOSS,
    TRAIN_SPLIT_FILE,
    TRAINING_EXPERIMENT,
    VALIDATION_SPLIT_FILE,
)
from efficientai_assets.provenance import git_sha, stable_hash
from resources.dvc.resource import DvcResource, DvcVersion
from resources.hardware.resource import HardwareResource
from resources.mlflow.resource import MlflowResource

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion

    from efficientai_assets.defs.training.train_worker import TrainingResult

# Bump when a change to the training code should retrain rather than reuse a registered version.
TRAINING_CODE_VERSION = "1"
MODEL_ARTIFACT_NAME = "model"


def _splits_version(dvc: DvcResource) -> DvcVersion:
    version = dvc.current_version(dvc.project_path(SPLITS_DIR))
    if version is None:
        raise dg.Failure(f"no versioned splits in {dvc.root()}: materialize dataset_splits first")
    return version


def _quality(accuracy: float, loss: float, floor: float) -> tuple[bool, str]:
    if not math.isfinite(loss) or not math.isfinite(accuracy):
        return False, f"validation loss {loss} or accuracy {accuracy} is not finite"
    if accuracy < floor:
        return False, f"validation accuracy {accuracy:.4f} is below the floor {floor:.4f}"
    return True, f"validation accuracy {accuracy:.4f} ≥ floor {floor:.4f}, loss finite"


def _verdict_tag(passed: bool) -> str:
    return "passed" if passed else "failed"


def _log_mlx_model(result: "TrainingResult", signature_columns: list[str]) -> str:
    """Log weights + config as a models-from-code pyfunc into the active run; returns its URI."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from efficientai_assets.models import mlp, pyfunc_model

    signature = ModelSignature(
        inputs=Schema([ColSpec("float", name) for name in signature_columns]),
        outputs=Schema([ColSpec("long", "label")]),
    )
    info = mlflow.pyfunc.log_model(
        name=MODEL_ARTIFACT_NAME,
        python_model=pyfunc_model.__file__,
        artifacts={
            "weights": str(result.output_dir / WEIGHTS_FILENAME),
            "config": str(result.output_dir / CONFIG_FILENAME),
        },
        code_paths=[mlp.__file__],
        signature=signature,
        pip_requirements=["mlx", "numpy", "pandas", "mlflow"],
    )
    return str(info.model_uri)


def _register(
    mlflow_resource: MlflowResource, model_uri: str, run_id: str, tags: dict[str, str]
) -> "ModelVersion":
    """Register and point ``challenger`` at the version; undo the registration if aliasing fails."""
    import mlflow

    name = mlflow_resource.model_name(MODEL_NAME)
    client = mlflow_resource.client()
    version = mlflow.register_model(model_uri, name, tags=tags)
    try:
        client.set_registered_model_alias(name, CHALLENGER_ALIAS, version.version)
    except Exception:
        client.delete_model_version(name, version.version)
        raise
    return version


def _memoized_result(
    mlflow_resource: MlflowResource, version: "ModelVersion", config: TrainingConfig
) -> dg.MaterializeResult:
    name = mlflow_resource.model_name(MODEL_NAME)
    client = mlflow_resource.client()
    client.set_registered_model_alias(name, CHALLENGER_ALIAS, version.version)
    accuracy = float(version.tags.get(TAG_VAL_ACCURACY, "nan"))
    loss = float(version.tags.get(TAG_VAL_LOSS, "nan"))
    # The floor is not part of the fingerprint: judge the reused version against today's floor
    # and record the verdict, which champion_model and promotions read.
    passed, verdict = _quality(accuracy, loss, config.min_validation_accuracy)
    client.set_model_version_tag(name, version.version, TAG_QUALITY, _verdict_tag(passed))
    run = mlflow_resource.client().get_run(version.run_id) if version.run_id else None
    run_url = mlflow_resource.run_url(run.info.experiment_id, run.info.run_id) if run else ""
    return dg.MaterializeResult(
        metadata={
            "memoized": True,
            "reason": dg.MetadataValue.text(
                f"version {version.version} was trained from the same data, code and config"
            ),
            "model_name": name,
            "model_version": dg.MetadataValue.text(str(version.version)),
            "mlflow_run_url": dg.MetadataValue.url(run_url),
            "val_accuracy": accuracy,
            "fingerprint": version.tags.get(TAG_FINGERPRINT, ""),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=QUALITY_CHECK,
                passed=passed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "val_accuracy": accuracy,
                    "val_loss": loss,
                    "floor": config.min_validation_accuracy,
                    "model_version": str(version.version),
                },
                description=f"reused version, re-checked: {verdict}",
            )
        ],
    )


@dg.asset(
    group_name="training",
    kinds={"mlx", "mlflow"},
    code_version=TRAINING_CODE_VERSION,
    deps=[DATASET_SPLITS_ASSET],
    pool=HEAVY_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            QUALITY_CHECK,
            asset="candidate_model",
            blocking=True,
            description="Validation accuracy at or above the configured floor, and a finite loss.",
        )
    ],
    description="An MLX MLP trained on the splits; one MLflow run; registered as 'challenger'.",
)
def candidate_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    mlflow: MlflowResource,
    dvc: DvcResource,
    hardware: HardwareResource,
) -> dg.MaterializeResult:
    gate = enforce_heavy_gate(context, hardware, priority=cast(Priority, config.priority))
    splits = _splits_version(dvc)
    with tempfile.TemporaryDirectory(prefix="efficientai-train-") as scratch:
        return _train_or_reuse(context, config, mlflow, dvc, hardware, gate, splits, Path(scratch))


def _train_or_reuse(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    mlflow: MlflowResource,
    dvc: DvcResource,
    hardware: HardwareResource,
    gate: GateDecision,
    splits: DvcVersion,
    scratch: Path,
) -> dg.MaterializeResult:
    import pandas as pd

    from efficientai_assets.defs.training.blas import training_process_env
    from efficientai_assets.defs.training.train_worker import TrainingRequest, run_training_process

    # An exact, private copy of the fingerprinted version: a concurrent writer cannot change it.
    folder = dvc.snapshot(splits, scratch / "splits")
    train_frame = pd.read_parquet(folder / TRAIN_SPLIT_FILE)
    feature_columns = [c for c in train_frame.columns if c != LABEL_COLUMN]
    recommendation = hardware.recommend_training(
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
    config_hash = stable_hash(trained_with)
    fingerprint = stable_hash(
        {"data": splits.md5, "code": TRAINING_CODE_VERSION, "config": config_hash}
    )
    model_name = mlflow.model_name(MODEL_NAME)
    if not config.force_retrain:
        existing = mlflow.find_model_version(model_name, {TAG_FINGERPRINT: fingerprint})
        if existing is not None:
            context.log.info(
                "reusing %s version %s (same fingerprint)", model_name, existing.version
            )
            return _memoized_result(mlflow, existing, config)

    params = TrainingParams(
        epochs=config.epochs,
        batch_size=batch_size,
        learning_rate=config.learning_rate,
        hidden_units=tuple(config.hidden_units),
        seed=config.seed,
    )
    provenance = {
        TAG_DAGSTER_RUN_ID: context.run.run_id,
        TAG_DAGSTER_ASSET_KEY: context.asset_key.to_user_string(),
        TAG_DATA_MD5: splits.md5,
        TAG_CODE_VERSION: TRAINING_CODE_VERSION,
        TAG_CONFIG_HASH: config_hash,
        TAG_FINGERPRINT: fingerprint,
        TAG_GIT_SHA: git_sha(),
    }
    run_tags = {
        **provenance,
        **gate.to_tags(),
        **recommendation.to_tags(),
    }
    with mlflow.run(TRAINING_EXPERIMENT, f"candidate-{context.run.run_id[:8]}", run_tags) as run_id:
        experiment_id = mlflow.client().get_run(run_id).info.experiment_id
        mlflow.log_params(
            run_id,
            {
                **trained_with,
                "train_rows": len(train_frame),
                "features": len(feature_columns),
                "data_path": splits.path,
            },
        )
        started = time.perf_counter()
        result = run_training_process(
            TrainingRequest(
                train_path=str(folder / TRAIN_SPLIT_FILE),
                validation_path=str(folder / VALIDATION_SPLIT_FILE),
                label_column=LABEL_COLUMN,
                output_dir=str(Path(scratch) / "model"),
                params=params,
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
        passed, verdict = _quality(
            final.val_accuracy, final.val_loss, config.min_validation_accuracy
        )
        mlflow.set_tags(
            run_id,
            {
                "training.device": result.device,
                **result.blas_tags,
                **hardware.snapshot().to_tags("hardware.end."),
            },
        )
        model_uri = _log_mlx_model(result, feature_columns)
        version = _register(
            mlflow,
            model_uri,
            run_id,
            {
                **provenance,
                TAG_QUALITY: _verdict_tag(passed),
                TAG_VAL_ACCURACY: repr(final.val_accuracy),
                TAG_VAL_LOSS: repr(final.val_loss),
            },
        )

    run_url = mlflow.run_url(experiment_id, run_id)
    context.log.info("registered %s version %s (%s)", model_name, version.version, verdict)
    return dg.MaterializeResult(
        metadata={
            "memoized": False,
            "model_name": model_name,
            "model_version": dg.MetadataValue.text(str(version.version)),
            "model_uri": dg.MetadataValue.text(model_uri),
            "mlflow_run_id": dg.MetadataValue.text(run_id),
            "mlflow_run_url": dg.MetadataValue.url(run_url),
            "model_version_url": dg.MetadataValue.url(
                mlflow.model_version_url(model_name, str(version.version))
            ),
            "val_accuracy": final.val_accuracy,
            "val_loss": final.val_loss,
            "train_loss": final.train_loss,
            "epochs": len(result.history),
            "samples_per_second": result.history[-1].samples_per_second,
            "train_seconds": train_seconds,
            "metric_values_logged": logged,
            "device": result.device,
            "batch_size": batch_size,
            "blas": result.blas_tags.get("blas.source", "unknown"),
            "data_md5": splits.md5,
            "fingerprint": fingerprint,
            **gate.to_metadata(),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=QUALITY_CHECK,
                passed=passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description=verdict,
                metadata={
                    "val_accuracy": final.val_accuracy,
                    "val_loss": final.val_loss,
                    "floor": config.min_validation_accuracy,
                    "model_version": str(version.version),
                },
            )
        ],
    )


def _current_validation(dvc: DvcResource) -> "pd.DataFrame":
    """The current validation split, read from an exact private snapshot."""
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="efficientai-validation-") as scratch:
        folder = dvc.snapshot(_splits_version(dvc), Path(scratch) / "splits")
        return pd.read_parquet(folder / VALIDATION_SPLIT_FILE)


def _evaluate_on_validation(
    mlflow: MlflowResource, version: "ModelVersion", validation: "pd.DataFrame"
) -> float:
    """Accuracy of a registered version on ``validation`` (loaded via pyfunc, as served)."""
    import mlflow as mlflow_lib

    mlflow.client()
    model = mlflow_lib.pyfunc.load_model(f"models:/{version.name}/{version.version}")
    predicted = model.predict(validation.drop(columns=[LABEL_COLUMN]))
    return float((predicted["label"].to_numpy() == validation[LABEL_COLUMN].to_numpy()).mean())


def _same_features(mlflow: MlflowResource, one: "ModelVersion", other: "ModelVersion") -> bool:
    """Whether two registered versions take the same input columns (from their signatures)."""
    from mlflow.models import get_model_info

    mlflow.client()

    def columns(version: "ModelVersion") -> list[str] | None:
        signature = get_model_info(f"models:/{version.name}/{version.version}").signature
        return signature.inputs.input_names() if signature is not None else None

    return columns(one) == columns(other)


@dg.asset(
    group_name="training",
    kinds={"mlflow"},
    code_version=TRAINING_CODE_VERSION,
    deps=[candidate_model],
    description="Moves the 'champion' alias to the challenger when it passed its quality check and "
    "is not worse than the current champion on the current validation split.",
)
def champion_model(
    context: dg.AssetExecutionContext, mlflow: MlflowResource, dvc: DvcResource
) -> dg.MaterializeResult:
    name = mlflow.model_name(MODEL_NAME)
    challenger = mlflow.version_for_alias(name, CHALLENGER_ALIAS)
    if challenger is None:
        raise dg.Failure(f"{name} has no '{CHALLENGER_ALIAS}' version: materialize candidate_model")
    if challenger.tags.get(TAG_QUALITY) != "passed":
        raise dg.Failure(
            f"{name} version {challenger.version} failed its quality check "
            f"({TAG_QUALITY}={challenger.tags.get(TAG_QUALITY)!r}); the champion stays"
        )
    champion = mlflow.version_for_alias(name, CHAMPION_ALIAS)
    validation = _current_validation(dvc)
    challenger_accuracy = _evaluate_on_validation(mlflow, challenger, validation)
    comparable = champion is not None and _same_features(mlflow, champion, challenger)
    champion_accuracy = (
        _evaluate_on_validation(mlflow, champion, validation)
        if champion is not None and comparable
        else None
    )
    if champion is not None and champion.version == challenger.version:
        promoted, reason = False, f"version {challenger.version} is already the champion"
    elif challenger.tags.get(TAG_ROLLED_BACK):
        promoted = False
        reason = (
            f"challenger v{challenger.version} was rolled back ({challenger.tags[TAG_ROLLED_BACK]});"
            " the pipeline does not promote it again — change the data or config, or promote it "
            "explicitly with the deployment asset (action: promote)"
        )
    elif champion is not None and not comparable:
        promoted = True
        reason = (
            f"challenger v{challenger.version} ({challenger_accuracy:.4f}) takes other input "
            f"columns than champion v{champion.version}: not comparable on this validation "
            "split; the challenger passed its quality check and takes the seat"
        )
    elif champion_accuracy is not None and challenger_accuracy < champion_accuracy:
        promoted = False
        reason = (
            f"challenger v{challenger.version} ({challenger_accuracy:.4f}) is worse than "
            f"champion v{champion.version if champion else '-'} ({champion_accuracy:.4f})"
        )
    else:
        promoted = True
        reason = (
            f"challenger v{challenger.version} ({challenger_accuracy:.4f}) is not worse than "
            + (
                f"champion v{champion.version} ({champion_accuracy:.4f})"
                if champion is not None and champion_accuracy is not None
                else "an empty seat"
            )
        )
    if promoted:
        client = mlflow.client()
        client.set_registered_model_alias(name, CHAMPION_ALIAS, challenger.version)
        client.set_model_version_tag(
            name, challenger.version, "efficientai.promoted_by", context.run.run_id
        )
        client.set_model_version_tag(
            name, challenger.version, "efficientai.promotion_reason", reason
        )
    current = challenger if promoted or champion is None else champion
    context.log.info(reason)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(f"{name}/{current.version}"),
        metadata={
            "promoted": promoted,
            "reason": dg.MetadataValue.text(reason),
            "champion_version": dg.MetadataValue.text(str(current.version)),
            "previous_champion_version": dg.MetadataValue.text(
                str(champion.version) if champion is not None else "none"
            ),
            "challenger_val_accuracy": challenger_accuracy,
            "champion_val_accuracy": challenger_accuracy
            if promoted
            else (champion_accuracy or 0.0),
            "model_version_url": dg.MetadataValue.url(
                mlflow.model_version_url(name, str(current.version))
            ),
        },
    )
