"""Each project namespace has its own reports folder in a home: the default namespace keeps
``<home>/reports/<day>/`` (homes made before read as they were), any other namespace writes
``<home>/reports/namespaces/<namespace>/<day>/``; the monitoring steps and the dashboard agree on
it. (Both namespaces monitoring one day through the real pipeline: tests/operations/
test_dashboard.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from efficientai_assets.dashboard.app import create_app
from efficientai_assets.dashboard.settings import DashboardSettings
from efficientai_assets.defs.monitoring.assets import batch_path, partition_folder
from efficientai_assets.operations.stores import StoreLocations
from resources.evidently.resource import EvidentlyResource
from resources.home import DEFAULT_NAMESPACE, EfficientAIHome

DAY = "2026-03-04"


def test_the_default_namespace_keeps_the_home_reports_folder_and_others_get_their_own(
    tmp_path: Path,
) -> None:
    home = EfficientAIHome(tmp_path)
    assert home.reports_for(DEFAULT_NAMESPACE) == tmp_path / "reports"
    assert home.reports_for("alpha") == tmp_path / "reports" / "namespaces" / "alpha"
    assert home.reports_for("alpha") != home.reports_for("beta")
    with pytest.raises(ValueError, match="plain name"):
        home.reports_for("../beta")


def test_monitoring_writes_a_day_under_its_namespace_folder_of_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EFFICIENTAI_HOME", str(tmp_path))
    home = EfficientAIHome(tmp_path.resolve())
    unset = EvidentlyResource()  # the code location's wiring: the home is resolved at run time
    assert partition_folder(unset, "alpha", DAY) == home.reports_for("alpha") / DAY
    assert partition_folder(unset, DEFAULT_NAMESPACE, DAY) == home.reports / DAY
    assert batch_path(unset, "beta", DAY) == home.reports_for("beta") / DAY / "batch.parquet"
    configured = EvidentlyResource(reports_dir=str(tmp_path / "elsewhere"))
    assert partition_folder(configured, "alpha", DAY) == (tmp_path / "elsewhere" / DAY).resolve()
    with pytest.raises(Exception, match="plain folder name"):
        partition_folder(unset, "alpha", "../x")


def _report(folder: Path, text: str) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    body = f"<html><body>{text}</body></html>".encode()
    (folder / "drift.html").write_bytes(body)
    return body


def test_the_dashboard_serves_each_namespace_report_of_a_day_from_its_own_folder(
    tmp_path: Path,
) -> None:
    home = EfficientAIHome(tmp_path)
    alpha = _report(home.reports_for("alpha") / DAY, "alpha")
    beta = _report(home.reports_for("beta") / DAY, "beta")
    default = _report(home.reports_for(DEFAULT_NAMESPACE) / DAY, "default")
    settings = DashboardSettings.for_locations(StoreLocations.for_home(home, {}), {})
    client = TestClient(create_app(settings))
    assert client.get(f"/reports/alpha/{DAY}/drift.html").content == alpha
    assert client.get(f"/reports/beta/{DAY}/drift.html").content == beta
    assert client.get(f"/reports/{DEFAULT_NAMESPACE}/{DAY}/drift.html").content == default
    assert client.get(f"/reports/{DAY}/drift.html").content == default, "earlier links still work"
    assert client.get(f"/reports/gamma/{DAY}/drift.html").status_code == 404
    assert client.get(f"/reports/..%2Fnamespaces/{DAY}/drift.html").status_code == 404
    assert client.get(f"/reports/alpha/{DAY}/batch.parquet").status_code == 404


def test_resources_built_for_a_home_write_where_the_code_location_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resources.defaults import build_resources
    from sensors.drift_audit import AUDIT_FILE, audit_path

    monkeypatch.setenv("EFFICIENTAI_HOME", str(tmp_path))
    monkeypatch.delenv("EFFICIENTAI_MLFLOW_TRACKING_URI", raising=False)
    home = EfficientAIHome(tmp_path.resolve())
    unset = EvidentlyResource()  # the code location's wiring
    for namespace in ("alpha", DEFAULT_NAMESPACE):
        wired = build_resources(namespace, home)["evidently"]  # tests', scripts', the client's
        folder = home.reports_for(namespace)
        assert wired.reports_root() == folder, namespace
        assert partition_folder(wired, namespace, DAY) == folder / DAY
        assert partition_folder(unset, namespace, DAY) == folder / DAY
        assert audit_path(wired, namespace) == audit_path(unset, namespace) == folder / AUDIT_FILE
    alpha = build_resources("alpha", home)["evidently"]
    assert partition_folder(alpha, "alpha", DAY) != home.reports / DAY, "no shared day folder"
