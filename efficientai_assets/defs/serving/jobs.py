"""The rollout job: one deployment move per run."""

import dagster as dg

from efficientai_assets.names import DEPLOYMENT_ASSET, DEPLOYMENT_JOB

deployment_job = dg.define_asset_job(
    DEPLOYMENT_JOB,
    selection=dg.AssetSelection.assets(DEPLOYMENT_ASSET),
    executor_def=dg.in_process_executor,
    description="One rollout move: deploy (with an optional canary or shadow), promote, rollback.",
)
