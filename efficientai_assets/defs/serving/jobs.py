"""The rollout job: one deployment move per run."""

import dagster as dg

from efficientai_assets.names import DEPLOYMENT_ASSET, DEPLOYMENT_JOB
from resources.stack.executor import executor_from_environment

deployment_job = dg.define_asset_job(
    DEPLOYMENT_JOB,
    selection=dg.AssetSelection.assets(DEPLOYMENT_ASSET),
    executor_def=executor_from_environment(),
    description="One rollout move: deploy (with an optional canary or shadow), promote, rollback.",
)
