"""Jobs across the domains of the asset graph. Steps run in one process: the heavy steps already run MLX training and
``bentoml build`` in child processes, and a process per step would cost seconds for each light one."""

import dagster as dg

from efficientai_assets.names import (
    BENTO_ASSET,
    CHAMPION_ASSET,
    PIPELINE_JOB,
    SWEEP_CHALLENGER_ASSET,
    SWEEP_JOB,
    SWEEP_TRIALS_ASSET,
    TRAINING_JOB,
)
from resources.stack.executor import executor_from_environment

pipeline_job = dg.define_asset_job(
    PIPELINE_JOB,
    selection=dg.AssetSelection.groups("data", "training", "serving"),
    executor_def=executor_from_environment(),
    description="The whole pipeline on its configured data: version, split, train, check, promote, "
    "build the champion's bento and record the deployment.",
)

training_job = dg.define_asset_job(
    TRAINING_JOB,
    selection=dg.AssetSelection.groups("data", "training") | dg.AssetSelection.assets(BENTO_ASSET),
    executor_def=executor_from_environment(),
    description="Retrain from the configured data: splits → candidate → quality check → champion → "
    "bento. The drift sensor launches it with the drifted batches added to the data.",
)

sweep_job = dg.define_asset_job(
    SWEEP_JOB,
    selection=dg.AssetSelection.assets(SWEEP_TRIALS_ASSET, SWEEP_CHALLENGER_ASSET, CHAMPION_ASSET),
    executor_def=executor_from_environment(),
    description="A hyperparameter sweep on the current splits: one step per configuration of a "
    "grid or seeded random search (memoized, gated, in the heavy pool), the best registered as "
    "'challenger', its blocking quality check, then the champion contest.",
)
