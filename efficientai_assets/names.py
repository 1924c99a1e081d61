"""Every name the project shares: registered model, aliases, experiments, registry paths, tags,
pools, asset keys, checks, jobs, schedules and sensors. Everything imports its names from here."""

from __future__ import annotations

# Registered model (prefixed by the MLflow resource's project namespace) and its aliases.
MODEL_NAME = "digits-classifier"
CHALLENGER_ALIAS = "challenger"
CHAMPION_ALIAS = "champion"

# Experiments (prefixed by the namespace).
TRAINING_EXPERIMENT = "training"

# Paths inside the DVC data registry, relative to its root (prefixed by the namespace).
RAW_DATASET_DIR = "raw"
RAW_DATASET_FILE = "dataset.parquet"
SPLITS_DIR = "splits"
TRAIN_SPLIT_FILE = "train.parquet"
VALIDATION_SPLIT_FILE = "validation.parquet"
LABEL_COLUMN = "label"

# Dagster pool shared by heavy MLX work (limit set in the home's dagster.yaml).
HEAVY_POOL = "heavy"

# Tags on MLflow runs and model versions.
TAG_FINGERPRINT = "efficientai.fingerprint"
TAG_DATA_MD5 = "efficientai.data_md5"
TAG_CODE_VERSION = "efficientai.code_version"
TAG_CONFIG_HASH = "efficientai.config_hash"
TAG_GIT_SHA = "efficientai.git_sha"
TAG_QUALITY = "efficientai.quality_check"
TAG_VAL_ACCURACY = "efficientai.val_accuracy"
TAG_VAL_LOSS = "efficientai.val_loss"
# Set on a version a rollback moved away from: never promoted again by the pipeline.
TAG_ROLLED_BACK = "efficientai.rolled_back"
TAG_DAGSTER_RUN_ID = "dagster.run_id"
TAG_DAGSTER_ASSET_KEY = "dagster.asset_key"

# Asset keys (as strings; ``dg.AssetKey(name)`` where a key is needed).
RAW_DATASET_ASSET = "raw_dataset"
DATASET_SPLITS_ASSET = "dataset_splits"
CANDIDATE_ASSET = "candidate_model"
CHAMPION_ASSET = "champion_model"
BENTO_ASSET = "model_bento"
DEPLOYMENT_ASSET = "deployment"
INFERENCE_BATCH_ASSET = "inference_batch"
DRIFT_ASSET = "drift_report"
AUDIT_ASSET = "retraining_audit"

# Asset checks.
QUALITY_CHECK = "quality"
DRIFT_CHECK = "drift_share_below_threshold"

# Jobs, schedules and sensors.
PIPELINE_JOB = "efficientai_pipeline"
TRAINING_JOB = "training_job"
DEPLOYMENT_JOB = "deployment_job"
MONITORING_JOB = "monitoring_job"
MONITORING_SCHEDULE = "monitoring_daily"
DRIFT_SENSOR = "drift_retrain_sensor"
THERMAL_SENSOR = "thermal_gate_sensor"
