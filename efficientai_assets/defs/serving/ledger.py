"""A deployment move as MLflow sees it: one run in the ``deployments`` experiment, and tags on the
registered model and on every version whose role changed.

The run's tags say who, what, when and why; the record itself is the run's ``deployment.json``
artifact. Which role each version gets is the rollout's pure decision (``version_roles``).
"""

from __future__ import annotations

from efficientai_assets.defs.serving.rollout import version_roles
from efficientai_assets.names import (
    DEPLOYMENT_ASSET,
    DEPLOYMENTS_EXPERIMENT,
    TAG_DAGSTER_ASSET_KEY,
    TAG_DAGSTER_RUN_ID,
    TAG_DEPLOYMENT_ID,
    TAG_DEPLOYMENT_LIVE,
    TAG_DEPLOYMENT_ROLE,
)
from resources.bentoml.types import DeploymentRecord
from resources.mlflow.resource import MlflowResource

RUN_TAG_PREFIX = "efficientai.deployment."


def run_tags(record: DeploymentRecord) -> dict[str, str]:
    """The tags of the move's MLflow run: the record's who/what/when/why and its Dagster run."""
    fields = {
        "id": str(record.deployment_id),
        "action": record.action,
        "mode": record.mode,
        "requested_by": record.requested_by,
        "reason": record.reason,
        "created_at": record.created_at,
        "champion_version": record.champion.model_version,
        "champion_bento": record.champion.bento_tag,
        "canary_version": record.canary.model_version if record.canary else "",
        "canary_share": str(record.canary_share),
        "previous_champion_version": record.previous_champion_version or "",
        "backend": record.backend,
    }
    return {
        **{RUN_TAG_PREFIX + key: value for key, value in fields.items()},
        TAG_DAGSTER_RUN_ID: record.dagster_run_id,
        TAG_DAGSTER_ASSET_KEY: DEPLOYMENT_ASSET,
    }


def record_in_mlflow(
    mlflow: MlflowResource, record: DeploymentRecord, previous: DeploymentRecord | None
) -> str:
    """One run per move (its record as the artifact) plus tags on the registered model and on
    every version whose role changed. Returns the run's URL."""
    import mlflow as mlflow_lib

    client = mlflow.client()
    run_name = f"{record.action}-{record.deployment_id}"
    with mlflow.run(DEPLOYMENTS_EXPERIMENT, run_name, run_tags(record)) as run_id:
        mlflow_lib.log_dict(record.to_dict(), "deployment.json")
        experiment_id = client.get_run(run_id).info.experiment_id
    for version, role in version_roles(record, previous).items():
        client.set_model_version_tag(record.model_name, version, TAG_DEPLOYMENT_ROLE, role)
        client.set_model_version_tag(
            record.model_name, version, TAG_DEPLOYMENT_ID, str(record.deployment_id)
        )
    client.set_registered_model_tag(record.model_name, TAG_DEPLOYMENT_LIVE, record.summary())
    return mlflow.run_url(experiment_id, run_id)
