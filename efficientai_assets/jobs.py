"""Jobs over the asset graph. Steps run in one process: the heavy MLX step already trains in its own
child process, and a process per step would cost seconds of start-up for each light step."""

from __future__ import annotations

import dagster as dg

PIPELINE_JOB = "efficientai_pipeline"
TRAINING_JOB = "training_job"

pipeline_job = dg.define_asset_job(
    PIPELINE_JOB,
    selection=dg.AssetSelection.groups("data", "training"),
    executor_def=dg.in_process_executor,
    description="The whole pipeline on its configured data: version, split, train, check, promote.",
)

training_job = dg.define_asset_job(
    TRAINING_JOB,
    selection=dg.AssetSelection.groups("data", "training"),
    executor_def=dg.in_process_executor,
    description="Retrain from the current data: splits → candidate → quality check → champion.",
)
