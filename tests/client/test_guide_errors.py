"""One error type: whatever a client entry point refuses or fails on is an ``MLOpsClientError``,
also of the standard type that fits (so both kinds of handler work); MLflow's own exceptions
arrive wrapped, naming the run and the tracking URI, with the password removed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_guide_support import enter_guide_folder, tracking

from efficientai_assets.client import MLOpsClient, MLOpsClientError, NoActiveRunError
from efficientai_assets.client.errors import TrackingError
from resources.bentoml.servers import free_port
from resources.evidently.types import DriftInputError as FrameError


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MLOpsClient:
    enter_guide_folder(tmp_path / "errors", monkeypatch)
    return MLOpsClient(project_namespace="my-project")


def _cases(client: MLOpsClient, tmp_path: Path) -> list[tuple[str, Callable[[], Any], type, str]]:
    from efficientai_assets.client.dvc_client import create_client as dvc_client
    from efficientai_assets.client.evidently_monitor import EvidentlyMonitor
    from efficientai_assets.client.mlflow_client import create_client as mlflow_client
    from efficientai_assets.client.packager import package_model
    from efficientai_assets.client.thermal_scheduler import ThermalAwareScheduler

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    not_a_frame: Any = [[1.0]]
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return [
        ("namespace", lambda: MLOpsClient("Not A Namespace"), ValueError, "project_namespace"),
        ("no experiment name", lambda: client.create_experiment(), ValueError, "name once"),
        ("unknown experiment", lambda: client.start_run("r", "987654").__enter__(), ValueError,
         "'987654' does not exist"),
        ("log outside a run", lambda: client.log_metrics({"x": 1.0}), NoActiveRunError,
         "start_run"),
        ("missing dataset", lambda: client.version_dataset("data/none.csv"), FileNotFoundError,
         "none.csv"),
        ("missing model", lambda: client.deploy_model("outputs/none", "m", "1"),
         FileNotFoundError, "does not exist"),
        ("not a frame", lambda: client.set_reference_data(not_a_frame), TypeError, "DataFrame"),
        ("empty frame", lambda: client.evidently_monitor.generate_drift_report(
            frame.iloc[:0], frame), FrameError, r"empty \(0 rows\)"),
        ("no common columns", lambda: client.evidently_monitor.generate_drift_report(
            pd.DataFrame({"y": [1.0]}), frame), FrameError, r"missing column\(s\) \['x'\]"),
        ("no reference", lambda: MLOpsClient("my-project").evidently_monitor
         .generate_drift_report(frame), MLOpsClientError, "no reference data"),
        ("dvc namespace", lambda: dvc_client(project_name="Bad Name"), ValueError, "project_name"),
        ("dvc status first", lambda: dvc_client(project_name="fresh", workspace_root=tmp_path / "w")
         .status(), ValueError, "init()"),
        ("dvc remote unusable", lambda: dvc_client(project_name="my-project").model_copy(
            update={"remote_url": str(blocker / "remote")}).init(), MLOpsClientError,
         "initialise the DVC registry"),
        ("mlflow outside a run", lambda: mlflow_client(project_name="my-project").log_params(
            {"lr": 1}), NoActiveRunError, "start_run"),
        ("package missing", lambda: package_model("outputs/none", "m"), FileNotFoundError,
         "does not exist"),
        ("monitor namespace", lambda: EvidentlyMonitor(project_name="UPPER"), ValueError,
         "project_name"),
        ("scheduler priority", lambda: ThermalAwareScheduler().should_run_task(
            "training", priority="asap"), ValueError, "priority"),
    ]  # fmt: skip


def test_every_refusal_is_a_client_error_and_the_standard_type_that_fits(
    client: MLOpsClient, tmp_path: Path
) -> None:
    for name, call, standard, message in _cases(client, tmp_path):
        with pytest.raises(MLOpsClientError, match=message) as raised:
            call()
        assert isinstance(raised.value, standard), (name, type(raised.value).__mro__)
    with client.start_run("bad-values"):
        with pytest.raises(MLOpsClientError, match="not a number") as not_number:
            client.log_metrics({"accuracy": "high"})
        assert isinstance(not_number.value, TypeError)
        with pytest.raises(FileNotFoundError, match=r"ghost\.bin") as missing:
            client.log_artifact("outputs/ghost.bin")
        assert isinstance(missing.value, MLOpsClientError)


def test_mlflow_errors_name_the_run_and_the_store(client: MLOpsClient) -> None:
    with (
        pytest.raises(TrackingError, match="cannot end the run FINISHED") as ending,
        client.start_run("doomed") as run,
    ):
        tracking(client.home.root).delete_run(run.run_id)  # gone under the client's feet
        with pytest.raises(TrackingError, match="cannot log metrics") as logging:
            client.log_metrics({"loss": 0.1})
    for raised in (logging, ending):
        text = str(raised.value)
        assert f"(run {run.run_id})" in text
        assert client.home.mlflow_tracking_uri in text
        assert "must be in the 'active' state" in text
        assert type(raised.value.__cause__).__module__.startswith("mlflow")
    assert client.active_run is None


def test_mlflow_errors_never_carry_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    enter_guide_folder(tmp_path / "secret", monkeypatch)
    port = free_port()  # nothing listens there: a real refused connection
    secret = "s3cret-Passw0rd-xyz"
    monkeypatch.setenv("EFFICIENTAI_MLFLOW_PASSWORD", secret)
    monkeypatch.setenv("EFFICIENTAI_MLFLOW_USERNAME", "admin")
    dead = MLOpsClient(
        project_namespace="my-project",
        mlflow_tracking_uri=f"http://admin:{secret}@127.0.0.1:{port}",
    )
    for call in (
        lambda: dead.create_experiment("unreachable"),
        lambda: dead.start_run("unreachable").__enter__(),
    ):
        with pytest.raises(TrackingError) as raised:
            call()
        text = str(raised.value)
        assert f"admin:***@127.0.0.1:{port}" in text
        assert secret not in text and secret not in repr(raised.value.args)
