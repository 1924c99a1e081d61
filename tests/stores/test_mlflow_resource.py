"""The MLflow resource's handling of credentials: never shown, never carried to another server."""

from __future__ import annotations

import pytest

from resources.mlflow.resource import MlflowResource, MlflowRunFailed, redact_uri


def test_passwords_in_tracking_uris_are_never_shown() -> None:
    assert (
        redact_uri("postgresql://ml:s3cret@db:5432/mlflow") == "postgresql://ml:***@db:5432/mlflow"
    )
    assert redact_uri("http://tracking:5000") == "http://tracking:5000"
    assert redact_uri("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"


def test_a_tracking_uri_with_a_password_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError) as refused:
        MlflowResource(tracking_uri="http://ml:s3cret@127.0.0.1:9/")
    assert "s3cret" not in str(refused.value)
    assert "http://***@127.0.0.1:9/" in str(refused.value)
    assert "EFFICIENTAI_MLFLOW_PASSWORD" in str(refused.value)


def test_a_failed_run_names_the_store() -> None:
    resource = MlflowResource(
        tracking_uri="http://127.0.0.1:9/", http_max_retries=0, http_timeout_seconds=5
    )
    with pytest.raises(MlflowRunFailed) as raised, resource.run("x", "y"):
        pass
    assert "http://127.0.0.1:9/" in str(raised.value)


def test_credentials_of_one_resource_do_not_reach_another_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    import os

    MlflowResource(username="alice", password="pw-a")._export_environment()
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "pw-a"
    MlflowResource()._export_environment()
    assert "MLFLOW_TRACKING_USERNAME" not in os.environ
    assert "MLFLOW_TRACKING_PASSWORD" not in os.environ


def test_credentials_the_user_exported_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "users-own")
    import os

    MlflowResource()._export_environment()
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "users-own"
