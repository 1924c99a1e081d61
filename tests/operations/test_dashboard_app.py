"""The dashboard application without a built home: its token, its settings, and a home whose
stores are all missing (every page still answers, each section says which store is down, and
nothing is created)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from efficientai_assets.dashboard.app import COOKIE, create_app
from efficientai_assets.dashboard.settings import DashboardSettings
from efficientai_assets.operations.stores import StoreLocations
from resources.home import EfficientAIHome

TOKEN = "a-long-dashboard-token-for-tests"
PAGES = ("/", "/experiments", "/models", "/monitoring", "/hardware", "/alerts")
APIS = tuple("/api/" + (p.strip("/") or "overview") for p in PAGES)


def client_for(root: Path, **env: str) -> TestClient:
    home = EfficientAIHome(root)
    settings = DashboardSettings.for_locations(StoreLocations.for_home(home, env), env)
    return TestClient(create_app(settings))


def test_an_empty_home_answers_every_page_naming_each_missing_store_and_creates_nothing(
    tmp_path: Path,
) -> None:
    root = tmp_path / "home"
    root.mkdir()
    client = client_for(root)
    for path in (*PAGES, *APIS):
        assert client.get(path).status_code == 200, path
    assert client.get("/api/overview").json()["namespaces"] == []
    monitoring = client.get("/api/monitoring").json()
    assert monitoring["status"] == "down" and monitoring["store"] == "dagster"
    assert "no Dagster run storage" in monitoring["error"]
    assert client.get("/api/alerts").json()["store"] == "dagster"
    assert "dagster is down" in client.get("/monitoring").text
    health = client.get("/health")
    assert health.status_code == 503
    assert {"dagster-storage", "mlflow"} <= set(health.json()["down"])
    assert list(root.iterdir()) == [], "reading a missing store must not create it"


def test_a_token_guards_pages_and_json_but_not_health(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EFFICIENTAI_DASHBOARD_TOKEN", TOKEN)
    client = client_for(tmp_path)
    refused = client.get("/api/overview")
    assert refused.status_code == 401 and "bearer token" in refused.json()["error"]
    page = client.get("/models")
    assert page.status_code == 401 and 'action="/login"' in page.text
    assert client.get("/api/overview", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert (
        client.get("/api/overview", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    )
    assert client.get("/health").status_code in (200, 503), "probes need no token"
    assert client.get("/reports/2026-01-01/drift.html").status_code == 401

    wrong = client.post("/login", data={"token": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and COOKIE not in wrong.cookies
    signed_in = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert signed_in.status_code == 303
    cookie = signed_in.cookies[COOKIE]
    assert TOKEN not in cookie, "the cookie is derived from the token, not the token"
    assert "httponly" in signed_in.headers["set-cookie"].lower()
    assert client.get("/models").status_code == 200, "the browser's cookie opens the pages"


def test_the_default_binds_loopback_and_bad_settings_name_the_variable() -> None:
    assert DashboardSettings.from_env({}).host == "127.0.0.1"
    assert DashboardSettings.from_env({}).port == 8000
    with pytest.raises(ValueError, match="DASHBOARD_PORT must be a whole number, got 'eighty'"):
        DashboardSettings.from_env({"DASHBOARD_PORT": "eighty"})
    with pytest.raises(ValueError, match="DASHBOARD_CACHE_SECONDS must not be negative"):
        DashboardSettings.from_env({"DASHBOARD_CACHE_SECONDS": "-1"})
    with pytest.raises(ValueError, match="must name an environment variable"):
        DashboardSettings.from_env({"EFFICIENTAI_DASHBOARD_TOKEN_ENV": "not a name"})


def test_unknown_namespaces_and_forged_page_tokens_are_refused(tmp_path: Path) -> None:
    client = client_for(tmp_path)
    missing = client.get("/api/experiments", params={"namespace": "nowhere"})
    assert missing.status_code == 404 and "unknown namespace 'nowhere'" in missing.json()["error"]
    forged = client.get("/api/experiments", params={"page_token": "<script>"})
    assert forged.status_code == 400
    assert client.get("/reports/..%2Fsecrets/drift.html").status_code == 404
    assert client.get("/reports/2026-01-01/batch.parquet").status_code == 404
