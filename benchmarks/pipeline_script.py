"""The demo pipeline's work as one plain script, without Dagster: the baseline of bench_pipeline.

``python -m benchmarks.pipeline_script HOME DAY`` versions the sample data and its splits in DVC,
trains the MLX model in the same child process the product uses, logs and registers it in MLflow,
evaluates it on the validation split, moves both aliases, builds the bento, records the
deployment, and writes the day's drift report with the champion's accuracy on the batch — the same
libraries and the same store calls as the assets, in one process, with no orchestration around them.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from efficientai_assets.defs.training.config import TrainingConfig
from efficientai_assets.names import (
    CANDIDATE_ASSET,
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    LABEL_COLUMN,
    MODEL_NAME,
    RAW_DATASET_DIR,
    RAW_DATASET_FILE,
    SPLITS_DIR,
    TAG_CODE_VERSION,
    TAG_CONFIG_HASH,
    TAG_DAGSTER_ASSET_KEY,
    TAG_DAGSTER_RUN_ID,
    TAG_DATA_MD5,
    TAG_FINGERPRINT,
    TRAIN_SPLIT_FILE,
    TRAINING_EXPERIMENT,
    VALIDATION_SPLIT_FILE,
)
from resources.defaults import build_resources
from resources.home import EfficientAIHome


def main(home_root: str, day: str) -> None:
    import mlflow as mlflow_lib
    import pandas as pd
    from sklearn.model_selection import train_test_split

    from efficientai_assets.defs.data.datasets import sample_digits, validate_dataset
    from efficientai_assets.defs.monitoring.assets import champion_accuracy
    from efficientai_assets.defs.monitoring.sources import InferenceBatchConfig, simulate_batch
    from efficientai_assets.defs.serving.bentos import build_bento_for_version, served_model
    from efficientai_assets.defs.serving.ledger import record_in_mlflow
    from efficientai_assets.defs.training.blas import training_process_env
    from efficientai_assets.defs.training.candidate import TRAINING_CODE_VERSION
    from efficientai_assets.defs.training.memo import MemoKey
    from efficientai_assets.defs.training.registry import evaluate_on_validation, log_mlx_model
    from efficientai_assets.defs.training.train_worker import TrainingRequest, run_training_process
    from efficientai_assets.models.mlp import TrainingParams
    from resources.bentoml.types import DeploymentRecord
    from resources.evidently.resource import DriftSchema

    home = EfficientAIHome(Path(home_root))
    home.ensure_layout()
    resources = build_resources("efficientai", home)
    dvc, mlflow, bentoml, evidently = (
        resources["dvc"],
        resources["mlflow"],
        resources["bentoml"],
        resources["evidently"],
    )

    # data
    frame = validate_dataset(sample_digits(), LABEL_COLUMN, "sample")
    dvc.ensure_repo()
    staged = dvc.stage()
    frame.to_parquet(staged / RAW_DATASET_FILE, index=False)
    dvc.version(dvc.project_path(RAW_DATASET_DIR), "raw dataset", staged=staged)
    train, validation = train_test_split(
        frame, test_size=0.2, random_state=42, stratify=frame[LABEL_COLUMN]
    )
    staged = dvc.stage()
    train.reset_index(drop=True).to_parquet(staged / TRAIN_SPLIT_FILE, index=False)
    validation.reset_index(drop=True).to_parquet(staged / VALIDATION_SPLIT_FILE, index=False)
    splits = dvc.version(dvc.project_path(SPLITS_DIR), "splits", staged=staged)
    folder = dvc.snapshot(splits, home.root / "tmp-splits")

    # training, tracking, registry
    config = TrainingConfig()
    params = TrainingParams(
        epochs=config.epochs,
        batch_size=config.batch_size or 64,
        learning_rate=config.learning_rate,
        hidden_units=tuple(config.hidden_units),
        seed=config.seed,
    )
    name = mlflow.model_name(MODEL_NAME)
    # The provenance the product's candidate step records on its run and version: the pipeline
    # loads only versions that carry it (promotion.origin_refusal).
    key = MemoKey.for_training(
        splits.md5,
        TRAINING_CODE_VERSION,
        {**config.training_fingerprint_fields(), "batch_size": params.batch_size, "device": "cpu"},
    )
    provenance = {
        TAG_DAGSTER_RUN_ID: "plain-script",
        TAG_DAGSTER_ASSET_KEY: CANDIDATE_ASSET,
        TAG_DATA_MD5: splits.md5,
        TAG_CODE_VERSION: TRAINING_CODE_VERSION,
        TAG_CONFIG_HASH: key.config_hash,
        TAG_FINGERPRINT: key.fingerprint,
    }
    with mlflow.run(TRAINING_EXPERIMENT, "plain-script", provenance) as run_id:
        mlflow.log_params(run_id, config.training_fingerprint_fields())
        with tempfile.TemporaryDirectory() as scratch:
            result = run_training_process(
                TrainingRequest(
                    train_path=str(folder / TRAIN_SPLIT_FILE),
                    validation_path=str(folder / VALIDATION_SPLIT_FILE),
                    label_column=LABEL_COLUMN,
                    output_dir=str(Path(scratch) / "model"),
                    params=params,
                ),
                env=training_process_env(),
            )
            mlflow.log_metrics_batch(
                run_id,
                [
                    {"epoch": r.epoch, "val_accuracy": r.val_accuracy, "val_loss": r.val_loss}
                    for r in result.history
                ],
                step_key="epoch",
            )
            feature_columns = [c for c in train.columns if c != LABEL_COLUMN]
            model_uri = log_mlx_model(result, feature_columns)
    version = mlflow_lib.register_model(model_uri, name, tags=provenance)
    client = mlflow.client()
    client.set_registered_model_alias(name, CHALLENGER_ALIAS, version.version)
    client.set_registered_model_alias(name, CHAMPION_ALIAS, version.version)
    version = client.get_model_version(name, version.version)
    evaluate_on_validation(mlflow, version, validation)

    # serving
    bento = build_bento_for_version(mlflow, bentoml, version)
    record = DeploymentRecord(
        deployment_id=1,
        model_name=name,
        action="deploy",
        mode="single",
        champion=served_model(version, bento),
        canary=None,
        canary_share=0.0,
        requested_by="plain-script",
        reason="serve the champion",
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dagster_run_id="",
        previous_deployment_id=None,
        previous_champion_version=None,
    )
    bentoml.write_deployment(record)
    record_in_mlflow(mlflow, record, None)

    # monitoring
    # The same split as the product: the verdict now, Evidently's report from its child process.
    batch = simulate_batch(InferenceBatchConfig(), day)
    schema = DriftSchema.for_features(feature_columns, LABEL_COLUMN)
    train_split = pd.read_parquet(folder / TRAIN_SPLIT_FILE)
    profile, _ = evidently.reference_profile(splits.md5, lambda: train_split, schema)
    drift = evidently.decide(profile, batch, schema)
    batch_file = home.reports / day / "batch.parquet"
    batch_file.parent.mkdir(parents=True, exist_ok=True)
    batch.to_parquet(batch_file, index=False)
    evidently.publish(drift, profile, batch_file, home.reports / day)
    champion_accuracy(mlflow, version, batch)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m benchmarks.pipeline_script HOME DAY")
    main(sys.argv[1], sys.argv[2])
