"""The whole graph as users get it: the code location's own jobs and resources, resolved from
EFFICIENTAI_HOME at run time, checked through what each tool reports."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from conftest import (
    FAST_TRAINING,
    bentoml_list,
    dvc_cloud_status,
    make_home,
    resources_for_tests,
)

from efficientai_assets.names import CHAMPION_ALIAS, MODEL_NAME
from resources.evidently.render import RENDERED, wait_for_report
from resources.home import DEFAULT_NAMESPACE

DAY = "2026-11-01"


def test_the_code_locations_jobs_materialize_every_asset_into_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = make_home(tmp_path / "home")
    monkeypatch.setenv("EFFICIENTAI_HOME", str(home.root))
    from efficientai_assets.definitions import defs

    # Only the gate's pressure thresholds differ from the code location's resources.
    hardware = {"hardware": resources_for_tests("efficientai", home)["hardware"]}
    with dg.instance_for_test(temp_dir=str(home.dagster_home)) as instance:
        pipeline = defs.get_job_def("efficientai_pipeline").execute_in_process(
            run_config={"ops": {"candidate_model": {"config": FAST_TRAINING}}},
            instance=instance,
            resources=hardware,
        )
        assert pipeline.success
        monitoring = defs.get_job_def("monitoring_job").execute_in_process(
            instance=instance, partition_key=DAY, resources=hardware
        )
        assert monitoring.success
        assert instance.get_materialized_partitions(dg.AssetKey("drift_report")) == {DAY}
        materialized = {
            event.asset_key.to_user_string()
            for result in (pipeline, monitoring)
            for event in result.get_asset_materialization_events()
            if event.asset_key is not None
        }
    every_asset = {
        "raw_dataset",
        "dataset_splits",
        "candidate_model",
        "champion_model",
        "model_bento",
        "deployment",
        "inference_batch",
        "drift_report",
    }
    assert every_asset <= materialized

    # MLflow: the embedded SQLite store under the home holds the run and the aliases.
    from mlflow import MlflowClient

    client = MlflowClient(home.mlflow_tracking_uri, registry_uri=home.mlflow_tracking_uri)
    name = f"efficientai-{MODEL_NAME}"
    champion = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    run = client.get_run(champion.run_id or "")
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith(f"file://{home.mlflow_artifacts}")

    # DVC: every tracked output is on the home's remote.
    assert dvc_cloud_status(home.data_registry) == {}
    assert any((home.dvc_remote / "files" / "md5").rglob("*"))

    # BentoML: the champion's bento is in the home's store, labelled with its provenance.
    bentos = bentoml_list(home.bentoml_home)
    assert [labels["model_version"] for labels in bentos.values()] == [str(champion.version)]

    # Evidently: the day's report, as HTML (rendered by its child process after the step) and JSON.
    # The default namespace's reports folder: the home's own ``reports/``.
    day = home.reports_for(DEFAULT_NAMESPACE) / DAY
    assert day == home.reports / DAY
    assert wait_for_report(day, timeout_seconds=600) == RENDERED
    report = json.loads((day / "drift.json").read_text())
    assert report
    assert (day / "drift.html").stat().st_size > 10_000
