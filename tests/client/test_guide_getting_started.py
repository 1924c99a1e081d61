"""The seed guide's Getting Started, as written (import path aside): the Quick Start, the Complete
Workflow with its own 5-row data, and the verbose client of Debug Mode, on real stores in a
temporary home; each test then reads what MLflow, DVC and BentoML hold."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import bentoml_list, dvc_cloud_status
from test_guide_support import enter_guide_folder, save_user_model, tracking

from efficientai_assets.client import MLOpsClient


def test_quick_start_tracks_params_each_epochs_metrics_and_the_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = enter_guide_folder(tmp_path / "quick", monkeypatch)
    Path("outputs/model.bin").write_bytes(b"\x00weights\x01")

    # -- the guide, Quick Start 1 and 2 ------------------------------------------------------
    client = MLOpsClient(project_namespace="my-project")

    # Create experiment
    experiment_id = client.create_experiment("first-experiment")

    # Start run
    with client.start_run(run_name="run-001", experiment_id=experiment_id):
        # Log parameters
        client.log_params({"learning_rate": 0.001, "batch_size": 32})

        # Training loop
        for epoch in range(10):
            metrics = {"loss": 1.0 - epoch * 0.1, "accuracy": 0.7 + epoch * 0.03}
            client.log_metrics(metrics, step=epoch)

        # Save model
        client.log_artifact("outputs/model.bin")
    # -----------------------------------------------------------------------------------------

    store = tracking(home)
    assert store.get_experiment(experiment_id).name == "my-project/first-experiment"
    (run,) = store.search_runs([experiment_id])
    assert (run.info.run_name, run.info.status) == ("run-001", "FINISHED")
    assert run.data.params == {"learning_rate": "0.001", "batch_size": "32"}
    loss = store.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, round(m.value, 6)) for m in loss] == [
        (epoch, round(1.0 - epoch * 0.1, 6)) for epoch in range(10)
    ]
    assert [m.step for m in store.get_metric_history(run.info.run_id, "accuracy")] == list(
        range(10)
    )
    downloaded = store.download_artifacts(run.info.run_id, "model.bin", str(tmp_path))
    assert Path(downloaded).read_bytes() == b"\x00weights\x01"


def test_complete_workflow_runs_as_written_and_reports_drift_on_its_five_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = enter_guide_folder(tmp_path / "complete", monkeypatch)
    save_user_model(Path("outputs/model"))  # the user's training code saved its model here

    # -- the guide, Complete Workflow Example ------------------------------------------------
    import pandas as pd

    # Initialize client
    client = MLOpsClient(project_namespace="complete-example")

    # 1. Version dataset
    dataset = pd.DataFrame({"feature": [1, 2, 3], "label": [0, 1, 0]})
    dataset.to_csv("data/train.csv", index=False)
    client.version_dataset("data/train.csv", push_to_remote=True)

    # 2. Track experiment
    experiment_id = client.create_experiment("training-experiment")

    with client.start_run(run_name="experiment-001", experiment_id=experiment_id):
        # Log config
        client.log_params({"model": "example", "version": "1.0"})

        # Collect Apple Silicon metrics
        silicon_metrics = client.collect_apple_silicon_metrics()
        print(f"Running on {silicon_metrics['chip_type']}")

        # Train (simulated)
        for epoch in range(5):
            client.log_metrics({"train_loss": 0.5 - epoch * 0.05}, step=epoch)

        # Save model
        client.log_artifact("outputs/model")

    # 3. Deploy model
    deployment_result = client.deploy_model(
        model_path="outputs/model", model_name="example_model", version="v1"
    )
    print(f"Deployment status: {deployment_result['status']}")

    # 4. Monitor performance
    reference_data = pd.DataFrame({"feature": [1, 2, 3, 4, 5]})
    client.set_reference_data(reference_data)

    current_data = pd.DataFrame({"feature": [6, 7, 8, 9, 10]})
    drift_report = client.evidently_monitor.generate_drift_report(current_data, reference_data)
    if drift_report["drift_detected"]:
        print("Warning: Data drift detected!")
    # -----------------------------------------------------------------------------------------

    printed = capsys.readouterr().out
    assert "Deployment status: success" in printed
    assert "Warning: Data drift detected!" in printed
    assert f"Running on {silicon_metrics['chip_type']}" in printed

    registry = home / "data"
    assert dvc_cloud_status(registry) == {}  # the dataset's content is on the remote
    pointer = registry / "complete-example" / "datasets" / "train.csv.dvc"
    assert pointer.is_file() and "md5:" in pointer.read_text()

    store = tracking(home)
    (run,) = store.search_runs([experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params == {"model": "example", "version": "1.0"}
    assert len(store.get_metric_history(run.info.run_id, "train_loss")) == 5
    assert "model/MLmodel" in {a.path for a in store.list_artifacts(run.info.run_id, "model")}

    tag = deployment_result["bento_tag"]
    labels = bentoml_list(home / "bentoml")[tag]
    assert labels["model_name"] == "complete-example-example_model"
    assert (labels["model_version"], labels["serving"]) == ("v1", "mlflow-pyfunc")

    assert drift_report["drift_detected"] is True and drift_report["drift_score"] == 1.0
    (column,) = drift_report["columns"]
    assert (column["method"], column["score_kind"]) == ("ks", "p_value")
    assert column["score"] == pytest.approx(2 / 252)  # the exact KS p-value of 5 vs 5 apart
    assert any("small sample" in warning for warning in drift_report["warnings"])


def test_the_verbose_client_reports_each_step_on_its_logger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    enter_guide_folder(tmp_path / "debug", monkeypatch)
    root_handlers = list(logging.getLogger().handlers)
    root_level = logging.getLogger().level
    try:
        # -- the guide, Troubleshooting: Debug Mode ------------------------------------------
        logging.basicConfig(level=logging.DEBUG)
        logger = logging.getLogger("mlops")
        logger.setLevel(logging.DEBUG)

        client = MLOpsClient(
            project_namespace="debug-project",
            verbose=True,  # Enable verbose output
        )
        # -------------------------------------------------------------------------------------
        with caplog.at_level(logging.INFO, logger="efficientai.client"):
            experiment_id = client.create_experiment(experiment_name="debugging")
            with client.start_run(run_name="debug-run", experiment_id=experiment_id):
                client.log_metrics({"loss": 0.1})
    finally:
        for handler in logging.getLogger().handlers:
            if handler not in root_handlers:
                logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(root_level)
    said = [r.getMessage() for r in caplog.records if r.name == "efficientai.client"]
    assert any("experiment debug-project/debugging" in line for line in said)
    assert any(line.startswith("run debug-run started") for line in said)
    assert any(line == "run debug-run ended FINISHED" for line in said)
    quiet = MLOpsClient(project_namespace="debug-project")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="efficientai.client"):
        quiet.create_experiment("debugging")
    assert not [r for r in caplog.records if r.name == "efficientai.client"]
