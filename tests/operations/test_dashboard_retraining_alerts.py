"""The dashboard's retraining alerts take their namespace from the audit record, and from the
retraining run's own materializations for records written before records named one. (The real
loop, drift to an audited retraining in two namespaces: tests/operations/test_dashboard.py.)"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from efficientai_assets.dashboard.alerts import retraining_alerts
from efficientai_assets.dashboard.data import DashboardData
from efficientai_assets.dashboard.settings import DashboardSettings
from efficientai_assets.names import AUDIT_ASSET, CHAMPION_ASSET, MODEL_NAME
from efficientai_assets.operations.stores import StoreLocations
from resources.home import EfficientAIHome


@dg.asset(name=CHAMPION_ASSET)
def champion() -> dg.MaterializeResult:
    """Stands in for a retraining run's champion step: it names its registered model."""
    return dg.MaterializeResult(metadata={"model_name": f"beta-{MODEL_NAME}"})


def audit(instance: dg.DagsterInstance, run_id: str, outcome: str, **extra: str) -> None:
    metadata = {"run_id": run_id, "outcome": outcome, "reason": "", **extra}
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=AUDIT_ASSET,
            metadata={k: dg.MetadataValue.text(v) for k, v in metadata.items()},
        )
    )


def test_retraining_alerts_name_the_recorded_namespace_or_the_runs_for_older_records(
    tmp_path: Path,
) -> None:
    home = EfficientAIHome(tmp_path.resolve())
    home.dagster_home.mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(home.dagster_home)) as instance:
        beta_run = dg.materialize([champion], instance=instance).run_id
        audit(instance, beta_run, "promoted")  # an older record: no namespace
        audit(instance, "failed-before-any-model", "failed", namespace="alpha")
        audit(instance, "unknown-old-run", "rejected")  # older, and its run names nothing

    settings = DashboardSettings.for_locations(StoreLocations.for_home(home, {}), {})
    found = {a["run_id"]: a for a in retraining_alerts(DashboardData(settings))}

    assert found[beta_run]["namespace"] == "beta", "the run's champion names it"
    assert found["failed-before-any-model"]["namespace"] == "alpha", "the record names it"
    assert found["failed-before-any-model"]["open"], "alpha's newest retraining failed"
    assert found["unknown-old-run"]["namespace"] is None
