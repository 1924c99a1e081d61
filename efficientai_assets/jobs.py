"""Jobs over the asset graph. Steps run in one process: the heavy steps already run MLX training and
``bentoml build`` in child processes, and a process per step would cost seconds for each light one."""

import dagster as dg

from efficientai_assets.serving import deployment, model_bento

PIPELINE_JOB = "efficientai_pipeline"
TRAINING_JOB = "training_job"
DEPLOYMENT_JOB = "deployment_job"

pipeline_job = dg.define_asset_job(
    PIPELINE_JOB,
    selection=dg.AssetSelection.groups("data", "training", "serving"),
    executor_def=dg.in_process_executor,
    description="The whole pipeline on its configured data: version, split, train, check, promote, "
    "build the champion's bento and record the deployment.",
)

training_job = dg.define_asset_job(
    TRAINING_JOB,
    selection=dg.AssetSelection.groups("data", "training") | dg.AssetSelection.assets(model_bento),
    executor_def=dg.in_process_executor,
    description="Retrain from the configured data: splits → candidate → quality check → champion → "
    "bento. The drift sensor launches it with the drifted batches added to the data.",
)

deployment_job = dg.define_asset_job(
    DEPLOYMENT_JOB,
    selection=dg.AssetSelection.assets(deployment),
    executor_def=dg.in_process_executor,
    description="One rollout move: deploy (with an optional canary or shadow), promote, rollback.",
)
