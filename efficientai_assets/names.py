"""Every name the project shares: registered model, aliases, experiments, registry paths, tags,
pools, asset keys, checks, jobs, schedules and sensors. Everything imports its names from here."""

from __future__ import annotations

# Registered model (prefixed by the MLflow resource's project namespace) and its aliases.
MODEL_NAME = "digits-classifier"
CHALLENGER_ALIAS = "challenger"
CHAMPION_ALIAS = "champion"

# Experiments (prefixed by the namespace).
TRAINING_EXPERIMENT = "training"
DEPLOYMENTS_EXPERIMENT = "deployments"

# Paths inside the DVC data registry, relative to its root (prefixed by the namespace).
RAW_DATASET_DIR = "raw"
RAW_DATASET_FILE = "dataset.parquet"
SPLITS_DIR = "splits"
TRAIN_SPLIT_FILE = "train.parquet"
VALIDATION_SPLIT_FILE = "validation.parquet"
LABEL_COLUMN = "label"

# Dagster pool shared by heavy MLX work (limit set in the home's dagster.yaml).
HEAVY_POOL = "heavy"
# Op tags of the same heavy steps: on the team stack the Celery executor sends them to the `heavy`
# queue, which only workers on hardware fit for them consume (ignored when run in one process).
HEAVY_STEP_TAGS = {"dagster-celery/queue": "heavy"}

# Tags on MLflow runs and model versions.
TAG_FINGERPRINT = "efficientai.fingerprint"
TAG_DATA_MD5 = "efficientai.data_md5"
TAG_CODE_VERSION = "efficientai.code_version"
TAG_CONFIG_HASH = "efficientai.config_hash"
TAG_GIT_SHA = "efficientai.git_sha"
TAG_QUALITY = "efficientai.quality_check"
# Its values: what the candidate's blocking check concluded, read by every promotion.
QUALITY_PASSED = "passed"
QUALITY_FAILED = "failed"
TAG_VAL_ACCURACY = "efficientai.val_accuracy"
TAG_VAL_LOSS = "efficientai.val_loss"
# Set on a version a rollback moved away from: never promoted again by the pipeline.
TAG_ROLLED_BACK = "efficientai.rolled_back"
# Set by whatever moves the champion alias: which Dagster run moved it, and why.
TAG_PROMOTED_BY = "efficientai.promoted_by"
TAG_PROMOTION_REASON = "efficientai.promotion_reason"
# The bento built from a model version (on the version) or by a client run (on the run).
TAG_BENTO = "efficientai.bento_tag"
# What a deployment move made of each version (champion, canary, shadow, retired), in which
# move, and (on the registered model) what is live now.
TAG_DEPLOYMENT_ROLE = "efficientai.deployment.role"
TAG_DEPLOYMENT_ID = "efficientai.deployment.id"
TAG_DEPLOYMENT_LIVE = "efficientai.deployment.live"
# Runs logged by the Python client: its project namespace, its origin, and the parent run.
TAG_PROJECT = "efficientai.project"
TAG_SOURCE = "efficientai.source"
TAG_PARENT_RUN = "mlflow.parentRunId"
TAG_DAGSTER_RUN_ID = "dagster.run_id"
TAG_DAGSTER_ASSET_KEY = "dagster.asset_key"
# On a sweep's parent run: the memo keys of its configurations, hashed (a rerun reuses the run).
TAG_SWEEP_FINGERPRINT = "efficientai.sweep_fingerprint"

# Asset keys (as strings; ``dg.AssetKey(name)`` where a key is needed).
RAW_DATASET_ASSET = "raw_dataset"
DATASET_SPLITS_ASSET = "dataset_splits"
CANDIDATE_ASSET = "candidate_model"
CHAMPION_ASSET = "champion_model"
# A hyperparameter sweep: its configurations (one step each, ``train_trial[<key>]``) and its best,
# registered as the challenger.
SWEEP_TRIALS_ASSET = "sweep_trials"
SWEEP_CHALLENGER_ASSET = "sweep_challenger"
BENTO_ASSET = "model_bento"
DEPLOYMENT_ASSET = "deployment"
INFERENCE_BATCH_ASSET = "inference_batch"
DRIFT_ASSET = "drift_report"
AUDIT_ASSET = "retraining_audit"

# Asset checks.
QUALITY_CHECK = "quality"
DRIFT_CHECK = "drift_share_below_threshold"

# Tags on Dagster runs the drift sensor requests: what the run retrains on (read by raw_dataset,
# which assembles the retraining data from them) and what the audit trail reports.
TAG_TRIGGER = "efficientai/trigger"
TRIGGER_DRIFT = "drift"
TAG_DRIFT_PARTITIONS = "efficientai/drift_partitions"
TAG_DRIFT_BATCHES = "efficientai/drift_batches"
TAG_DRIFT_REPORTS = "efficientai/drift_reports"
TAG_DRIFT_SHARE = "efficientai/drift_share"
TAG_REPLACED_CHAMPION = "efficientai/replaced_champion"
TAG_REFERENCE_MD5 = "efficientai/reference_data_md5"
TAG_REFERENCE_COMMIT = "efficientai/reference_commit"
TAG_REFERENCE_ROWS = "efficientai/max_reference_rows"
TAG_REFERENCE_SEED = "efficientai/reference_seed"
TAG_RETRAIN_GATE = "efficientai/gate"
# The project namespace the run retrains: only that namespace's sensor audits it.
TAG_RUN_NAMESPACE = "efficientai/namespace"

# Tags on Dagster runs the thermal gate sensor requests: the gate's verdict when it requested.
TAG_GATE_DECISION = "efficientai/gate.decision"
TAG_GATE_STATE = "efficientai/gate.state"
TAG_GATE_LEVEL = "efficientai/gate.level"
TAG_GATE_PRIORITY = "efficientai/gate.priority"
TAG_GATE_THERMAL_STATE = "efficientai/hardware.thermal_state"

# Jobs, schedules and sensors.
PIPELINE_JOB = "efficientai_pipeline"
TRAINING_JOB = "training_job"
SWEEP_JOB = "training_sweep"
DEPLOYMENT_JOB = "deployment_job"
MONITORING_JOB = "monitoring_job"
MONITORING_SCHEDULE = "monitoring_daily"
DRIFT_SENSOR = "drift_retrain_sensor"
THERMAL_SENSOR = "thermal_gate_sensor"
