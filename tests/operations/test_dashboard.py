"""The dashboard on a home the real pipeline built: two project namespaces, a hardware hold,
several monitoring days with one drifted (and one day both namespaces monitored, each into its
own reports folder), a drift-triggered retraining, a canary, a failed quality check and a failed
run. The JSON endpoints are checked against MLflow and Dagster read
directly; every page is loaded in headless Chromium (Debian's package, driven by Playwright);
screenshots are kept under ``tests/artifacts/dashboard/`` (git-ignored).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
from conftest import bentoml_list, make_home, resources_for_tests, training_run_config

from efficientai_assets.names import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    DRIFT_ASSET,
    MODEL_NAME,
)
from resources.bentoml.records import DeploymentLog
from resources.hardware.gate_settings import GateSettings
from resources.hardware.resource import HardwareResource
from resources.home import EfficientAIHome
from sensors.drift_audit import AUDIT_FILE, read_audit_records

ALPHA, BETA = "alpha", "beta"
CALM_DAYS = ("2026-11-20", "2026-11-21")
DRIFTED_DAY = "2026-11-22"
SHARED_DAY = CALM_DAYS[0]  # monitored by both namespaces
AFTER_DAY = "2026-11-23"
HELD_SECONDS = 900
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "dashboard"


@dataclass
class BuiltHome:
    """A home with its Dagster instance, and what the builder knows it put there."""

    home: EfficientAIHome
    instance: dg.DagsterInstance
    resources: dict[str, dict[str, Any]]
    failed_run_id: str = ""
    retraining_run_id: str = ""


def _held_then_clear(folder: Path) -> HardwareResource:
    """A replayed machine that is critical at first and clear ``HELD_SECONDS`` later: the first
    heavy step is held, then goes (the gate's hysteresis shortened to one reading). The trace is
    also the clock; its critical readings share one time, so however many readings the step
    takes before it asks the gate, the wait it records is exactly ``HELD_SECONDS``."""
    start = time.time() - 2 * HELD_SECONDS
    critical = {"at": 0, "thermal_state": "critical", "thermal_source": "replay"}
    trace = folder / "hold-trace.json"
    trace.write_text(
        json.dumps(
            {
                "start": start,
                "readings": [
                    *[critical] * 4,
                    {"at": HELD_SECONDS, "thermal_state": "nominal", "thermal_source": "replay"},
                ],
            }
        )
    )
    return HardwareResource(
        source="replay",
        replay_trace_path=str(trace),
        gate=GateSettings(
            bad_readings_to_hold=1,
            cooldown_seconds=0,
            retry_initial_seconds=0.02,
            retry_max_seconds=0.05,
        ),
    )


def _materialize(
    built: BuiltHome,
    namespace: str,
    assets: list[Any],
    run_config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        resources=built.resources[namespace],
        instance=built.instance,
        run_config=run_config or {},
        **kwargs,
    )


def pipeline_assets() -> list[Any]:
    from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
    from efficientai_assets.defs.serving.assets import deployment, model_bento
    from efficientai_assets.defs.training.assets import candidate_model, champion_model

    return [raw_dataset, dataset_splits, candidate_model, champion_model, model_bento, deployment]


def monitor_day(built: BuiltHome, namespace: str, day: str, **batch: Any) -> None:
    from efficientai_assets.defs.monitoring.assets import drift_report, inference_batch
    from resources.evidently.render import wait_for_report

    result = _materialize(
        built,
        namespace,
        [inference_batch, drift_report],
        {"ops": {"inference_batch": {"config": batch}}},
        partition_key=day,
    )
    # The step gives the verdict; Evidently's HTML report follows from its child process.
    [report] = result.asset_materializations_for_node("drift_report")
    wait_for_report(Path(str(report.metadata["report_path"].value)).parent, timeout_seconds=600)


def build_alpha(built: BuiltHome, scratch: Path) -> None:
    """The pipeline (first heavy step held, then clear), three monitoring days, the third
    drifted, the retraining the drift sensor requests, its audit, and one more day."""
    from efficientai_assets.defs.jobs import training_job
    from sensors.drift import RetrainPolicy, build_drift_sensor

    held = {**built.resources[ALPHA], "hardware": _held_then_clear(scratch)}
    dg.materialize(
        pipeline_assets(),
        resources=held,
        instance=built.instance,
        run_config=training_run_config(),
    )
    for day in CALM_DAYS:
        monitor_day(built, ALPHA, day, shift="none")
    monitor_day(built, ALPHA, DRIFTED_DAY, shift="sudden", shift_start=DRIFTED_DAY, rows=600)

    sensor = build_drift_sensor(
        training_job,
        policy=RetrainPolicy(min_new_rows=100),
        extra_run_config=training_run_config(),
    )

    def tick(cursor: str | None) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=built.instance, cursor=cursor, resources=built.resources[ALPHA]
        )
        result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        return result

    requested = tick(None)
    [request] = list(requested.run_requests or [])
    from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
    from efficientai_assets.defs.serving.assets import model_bento
    from efficientai_assets.defs.training.assets import candidate_model, champion_model

    retraining = _materialize(
        built,
        ALPHA,
        [raw_dataset, dataset_splits, candidate_model, champion_model, model_bento],
        dict(request.run_config),
        tags={**request.tags, "dagster/run_key": request.run_key or ""},
    )
    built.retraining_run_id = retraining.run_id
    audited = tick(requested.cursor)
    for event in audited.asset_events:  # what the daemon does with a sensor's asset events
        assert isinstance(event, dg.AssetMaterialization)
        built.instance.report_runless_asset_event(event)
    # The shift goes on; the retrained champion has seen it.
    monitor_day(built, ALPHA, AFTER_DAY, shift="sudden", shift_start=DRIFTED_DAY)


def build_beta(built: BuiltHome) -> None:
    """Other data (another split seed), a champion, the first of alpha's monitoring days, a
    second candidate served as a 20% canary, a third candidate that fails its quality floor, and
    a promote without a reason (a failed run)."""
    from efficientai_assets.defs.serving.assets import deployment
    from efficientai_assets.defs.training.assets import candidate_model

    seeded = {
        **training_run_config(),
        "ops": {**training_run_config()["ops"], "dataset_splits": {"config": {"seed": 7}}},
    }
    _materialize(built, BETA, pipeline_assets(), seeded)
    monitor_day(built, BETA, SHARED_DAY, shift="none")
    _materialize(built, BETA, [candidate_model], training_run_config(seed=1, epochs=6))
    _materialize(
        built,
        BETA,
        [deployment],
        {"ops": {"deployment": {"config": {"action": "deploy", "canary_share": 0.2}}}},
    )
    _materialize(
        built,
        BETA,
        [candidate_model],
        training_run_config(seed=2, epochs=2, min_validation_accuracy=0.999),
        raise_on_error=False,
    )
    failed = _materialize(
        built,
        BETA,
        [deployment],
        {"ops": {"deployment": {"config": {"action": "promote"}}}},
        raise_on_error=False,
    )
    assert not failed.success
    built.failed_run_id = failed.run_id


def build_dashboard_home(root: Path) -> Iterator[BuiltHome]:
    home = make_home(root / "home")
    with dg.instance_for_test(temp_dir=str(home.dagster_home)) as instance:
        # Each namespace's reports in its own folder of the home, as the code location has them.
        resources = {ns: resources_for_tests(ns, home) for ns in (ALPHA, BETA)}
        built = BuiltHome(home, instance, resources)
        build_alpha(built, root)
        build_beta(built)
        yield built


@pytest.fixture(scope="module")
def built_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltHome]:
    yield from build_dashboard_home(tmp_path_factory.mktemp("dashboard"))


# -- the dashboard as `make dashboard` runs it ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dashboard_env(home: EfficientAIHome, **extra: str) -> dict[str, str]:
    """The environment `make dashboard` gives the server for ``home``, nothing inherited that
    points at other stores."""
    prefixes = ("EFFICIENTAI_", "DASHBOARD_", "MLFLOW_TRACKING", "DAGSTER_HOME", "BENTOML_HOME")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(
        EFFICIENTAI_HOME=str(home.root),
        DAGSTER_HOME=str(home.dagster_home),
        BENTOML_HOME=str(home.bentoml_home),
        **extra,
    )
    return env


@contextmanager
def serve_dashboard(home: EfficientAIHome, log: Path, **extra: str) -> Iterator[str]:
    """``python -m efficientai_assets.dashboard`` on a free loopback port, stopped afterwards."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "efficientai_assets.dashboard", "--port", str(port)],
            env=dashboard_env(home, **extra),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the dashboard exited:\n{log.read_text()[-3000:]}")
            try:
                httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"no dashboard after 180s:\n{log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)


def home_files(root: Path) -> dict[str, str]:
    """``relative path → sha256`` of every file under ``root`` that holds data. Any reader of a
    SQLite database in WAL mode maps its ``-shm`` index and may create an empty ``-wal``: neither
    holds data (a write would leave pages in the ``-wal``, or change the database itself)."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and not path.name.endswith("-shm")
        and not (path.name.endswith("-wal") and path.stat().st_size == 0)
    }


@dataclass
class Dashboard:
    url: str
    built: BuiltHome
    before: dict[str, str]

    def json(self, path: str, status: int = 200) -> Any:
        response = httpx.get(self.url + path, timeout=60)
        assert response.status_code == status, response.text[:500]
        return response.json()


@pytest.fixture(scope="module")
def dashboard(
    built_home: BuiltHome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    before = home_files(built_home.home.root)
    log = tmp_path_factory.mktemp("dashboard-log") / "dashboard.log"
    # Two runs a page, so the alpha namespace's runs span pages.
    with serve_dashboard(built_home.home, log, DASHBOARD_PAGE_SIZE="2") as url:
        yield Dashboard(url, built_home, before)


def mlflow_client(built: BuiltHome) -> Any:
    from mlflow import MlflowClient

    uri = built.home.mlflow_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _model(namespace: str) -> str:
    return f"{namespace}-{MODEL_NAME}"


def drift_materializations(built: BuiltHome, namespace: str = ALPHA) -> dict[str, dict[str, Any]]:
    """``day → metadata`` of the newest drift report of each day of ``namespace`` (the one
    written into its reports folder), read from Dagster."""
    records = built.instance.fetch_materializations(dg.AssetKey(DRIFT_ASSET), limit=100).records
    folder = built.home.reports_for(namespace)
    out: dict[str, dict[str, Any]] = {}
    for record in records:  # newest first
        assert record.asset_materialization is not None and record.partition_key is not None
        metadata = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        if Path(str(metadata["report_path"])).is_relative_to(folder):
            out.setdefault(record.partition_key, metadata)
    return out


# -- the JSON endpoints against MLflow, Dagster and the records ------------------------------------


def test_overview_shows_each_namespace_seats_live_deployment_drift_and_gate(
    dashboard: Dashboard,
) -> None:
    client = mlflow_client(dashboard.built)
    document = dashboard.json("/api/overview")
    rows = {row["namespace"]: row for row in document["namespaces"]}
    assert set(rows) == {ALPHA, BETA}
    for namespace, row in rows.items():
        registry = row["registry"]
        assert registry["status"] == "up"
        for alias in (CHAMPION_ALIAS, CHALLENGER_ALIAS):
            stored = client.get_model_version_by_alias(_model(namespace), alias)
            assert registry[alias]["version"] == str(stored.version)
            assert registry[alias]["val_accuracy"] == float(stored.tags["efficientai.val_accuracy"])
        current = DeploymentLog(
            dashboard.built.home.bentoml_home / "deployments" / _model(namespace)
        ).current()
        assert current is not None
        assert row["live"]["deployment"]["bento"] == current.champion.bento_tag
    assert rows[ALPHA]["registry"]["champion"]["version"] == "2", "the retraining was promoted"
    assert rows[BETA]["registry"]["challenger"]["quality"] == "failed"
    beta_live = rows[BETA]["live"]["deployment"]
    assert (beta_live["mode"], beta_live["canary_version"], beta_live["canary_share"]) == (
        "canary",
        "2",
        0.2,
    )
    newest_day = max(drift_materializations(dashboard.built))
    assert rows[ALPHA]["monitoring"]["last_drift"]["day"] == newest_day == AFTER_DAY
    assert rows[BETA]["monitoring"]["last_drift"]["day"] == SHARED_DAY
    assert rows[ALPHA]["monitoring"]["last_gate"]["decision"] == "go"
    assert document["totals"]["namespaces"] == 2
    assert document["totals"]["model_versions"] == 5
    listed = dashboard.json("/api/alerts")["alerts"]
    assert document["totals"]["open_alerts"] == sum(a["open"] for a in listed)
    for namespace, row in rows.items():
        assert row["open_alerts"] == sum(a["open"] and a["namespace"] == namespace for a in listed)


def test_models_list_every_version_with_aliases_verdicts_and_lineage(
    dashboard: Dashboard,
) -> None:
    client = mlflow_client(dashboard.built)
    bentos = bentoml_list(dashboard.built.home.bentoml_home)
    document = dashboard.json("/api/models")
    for row in document["namespaces"]:
        name = _model(row["namespace"])
        stored = {str(v.version): v for v in client.search_model_versions(f"name='{name}'")}
        aliases = client.get_registered_model(name).aliases
        assert {v["version"] for v in row["versions"]} == set(stored)
        for version in row["versions"]:
            expected = stored[version["version"]]
            assert sorted(version["aliases"]) == sorted(
                alias for alias, number in aliases.items() if str(number) == version["version"]
            )
            assert version["quality"] == expected.tags["efficientai.quality_check"]
            lineage = version["lineage"]
            assert lineage["mlflow_run"]["id"] == expected.run_id
            assert lineage["data_md5"] == expected.tags["efficientai.data_md5"]
            assert lineage["git_sha"] == expected.tags["efficientai.git_sha"]
            dagster_run = lineage["dagster_run"]["id"]
            assert dashboard.built.instance.get_run_by_id(dagster_run) is not None
            assert lineage["dagster_run"]["url"].endswith(f"/runs/{dagster_run}")
            if lineage["bento"] is not None:
                assert lineage["bento"]["in_store"] is (lineage["bento"]["tag"] in bentos)
    alpha = next(r for r in document["namespaces"] if r["namespace"] == ALPHA)
    assert all(v["lineage"]["bento"]["in_store"] for v in alpha["versions"]), "both were built"


def test_monitoring_has_each_day_with_its_drift_share_threshold_and_report(
    dashboard: Dashboard,
) -> None:
    stored = drift_materializations(dashboard.built)
    document = dashboard.json("/api/monitoring")
    rows = {row["namespace"]: row for row in document["namespaces"]}
    days = {d["day"]: d for d in rows[ALPHA]["days"]}
    assert list(days) == sorted(stored) == [*CALM_DAYS, DRIFTED_DAY, AFTER_DAY]
    assert [d["day"] for d in rows[BETA]["days"]] == [SHARED_DAY]
    for day, entry in days.items():
        assert entry["drift_share"] == stored[day]["drift_share"]
        assert entry["threshold"] == stored[day]["drift_share_threshold"]
        assert entry["drifted_columns"] == stored[day]["drifted_column_names"]
    assert days[DRIFTED_DAY]["dataset_drift"] is True
    assert all(days[day]["dataset_drift"] is False for day in CALM_DAYS)
    report = httpx.get(dashboard.url + days[DRIFTED_DAY]["report_url"], timeout=60)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert (
        report.content
        == (dashboard.built.home.reports_for(ALPHA) / DRIFTED_DAY / "drift.html").read_bytes()
    )
    assert (
        httpx.get(f"{dashboard.url}/reports/..%2F..%2Fetc/drift.html", timeout=10).status_code
        == 404
    )


def test_two_namespaces_keep_their_own_report_of_the_same_day_and_each_shows_under_its_own(
    dashboard: Dashboard,
) -> None:
    built = dashboard.built
    files = {ns: built.home.reports_for(ns) / SHARED_DAY / "drift.json" for ns in (ALPHA, BETA)}
    stored = {ns: drift_materializations(built, ns)[SHARED_DAY] for ns in (ALPHA, BETA)}
    for namespace, path in files.items():
        assert Path(str(stored[namespace]["json_path"])) == path
        assert path.is_file() and (path.parent / "batch.parquet").is_file()
    assert files[ALPHA].read_bytes() != files[BETA].read_bytes(), "other reference data"
    assert not (built.home.reports / SHARED_DAY).exists(), "nothing in a shared day folder"
    rows = {row["namespace"]: row for row in dashboard.json("/api/monitoring")["namespaces"]}
    for namespace, path in files.items():
        [day] = [d for d in rows[namespace]["days"] if d["day"] == SHARED_DAY]
        assert day["drift_share"] == stored[namespace]["drift_share"]
        assert day["json_url"] == f"/reports/{namespace}/{SHARED_DAY}/drift.json"
        served = httpx.get(dashboard.url + day["json_url"], timeout=60)
        assert served.status_code == 200 and served.content == path.read_bytes()


def test_alerts_name_quality_drift_hold_failed_run_and_retraining(dashboard: Dashboard) -> None:
    document = dashboard.json("/api/alerts")
    found = document["alerts"]

    def one(kind: str, **match: Any) -> dict[str, Any]:
        hits = [a for a in found if a["kind"] == kind and all(a[k] == v for k, v in match.items())]
        assert len(hits) == 1, (kind, match, found)
        return hits[0]

    quality = one("quality", namespace=BETA)
    assert quality["open"] and "version 3" in quality["title"]
    drifted = one("drift", namespace=ALPHA, title=f"drift on {DRIFTED_DAY}")
    assert not drifted["open"], "a newer report of the namespace superseded it"
    hold = one("hold", namespace=ALPHA)
    assert f"held {HELD_SECONDS}s" in hold["title"] and not hold["open"]
    failed = one("failed_run", run_id=dashboard.built.failed_run_id)
    assert failed["open"] and "needs a reason" in failed["detail"]
    retraining = one("retraining", run_id=dashboard.built.retraining_run_id)
    assert retraining["namespace"] == ALPHA and "promoted" in retraining["title"]
    home = dashboard.built.home
    [line] = read_audit_records(home.reports_for(ALPHA) / AUDIT_FILE)
    assert (line["run_id"], line["namespace"]) == (dashboard.built.retraining_run_id, ALPHA)
    assert not (home.reports / AUDIT_FILE).exists(), "alpha's trail is in alpha's folder"
    stored_failures = dashboard.built.instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])
    )
    assert {r.dagster_run.run_id for r in stored_failures} == {
        a["run_id"] for a in found if a["kind"] == "failed_run"
    }


def test_hardware_has_the_snapshot_the_hold_and_throughput_per_version(
    dashboard: Dashboard,
) -> None:
    client = mlflow_client(dashboard.built)
    document = dashboard.json("/api/hardware")
    assert document["snapshot"]["status"] == "up"
    assert document["snapshot"]["readings"]["platform"] in ("linux", "darwin")
    events = [e for e in document["gate"]["events"] if e["namespace"] == ALPHA]
    assert any(e["kind"] == "hold" and e["asset"] == "candidate_model" for e in events)
    assert any(e["kind"] == "decision" and e["held_seconds"] == HELD_SECONDS for e in events)
    for row in document["throughput"]:
        for point in row["versions"]:
            version = client.get_model_version(_model(row["namespace"]), point["version"])
            run = client.get_run(version.run_id)
            assert point["samples_per_second"] == run.data.metrics["samples_per_second"]
    assert {len(r["versions"]) for r in document["throughput"]} == {2, 3}


def test_experiments_page_through_every_run_with_its_curves(dashboard: Dashboard) -> None:
    client = mlflow_client(dashboard.built)
    experiments = [
        e.experiment_id for e in client.search_experiments() if e.name.startswith(f"{ALPHA}/")
    ]
    stored = {r.info.run_id: r for r in client.search_runs(experiments, max_results=1000)}
    seen: list[str] = []
    token: str | None = None
    while True:
        query = f"/api/experiments?namespace={ALPHA}" + (f"&page_token={token}" if token else "")
        page = dashboard.json(query)
        assert len(page["runs"]) <= 2
        for run in page["runs"]:
            seen.append(run["run_id"])
            for metric, curve in run["curves"].items():
                history = sorted(
                    client.get_metric_history(run["run_id"], metric), key=lambda m: m.step
                )
                assert curve["values"] == [m.value for m in history]
        token = page["next_page_token"]
        if not token:
            break
    assert sorted(seen) == sorted(stored), "every run once, across pages"
    assert len(stored) > 2
    dashboard.json("/api/experiments?namespace=nowhere", status=404)


def test_health_reports_every_store_up(dashboard: Dashboard) -> None:
    document = dashboard.json("/health")
    status = {c["component"]: c["status"] for c in document["components"]}
    assert document["status"] == "up"
    assert status["dagster-storage"] == status["mlflow"] == status["bentoml-store"] == "up"
    assert status["dvc-remote"] == status["disk"] == "up"
    assert all(isinstance(c["latency_ms"], float) for c in document["components"])
    # `make health` asks the running dashboard's /health too.
    health = subprocess.run(
        [sys.executable, "-m", "efficientai_assets.operations.health"],
        env=dashboard_env(dashboard.built.home, DASHBOARD_URL=dashboard.url),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert health.returncode == 0, health.stdout
    assert "OK   dashboard" in health.stdout and f"{dashboard.url}/health: 200" in health.stdout


def test_the_dashboard_never_writes_to_the_home(dashboard: Dashboard) -> None:
    for path in (
        "/",
        "/experiments",
        "/models",
        "/monitoring",
        "/hardware",
        "/alerts",
        "/health",
        "/api/overview",
        "/api/experiments",
        "/api/models",
        "/api/monitoring",
        "/api/hardware",
        "/api/alerts",
        f"/reports/{ALPHA}/{DRIFTED_DAY}/drift.json",
    ):
        assert httpx.get(dashboard.url + path, timeout=60).status_code == 200, path
    after = home_files(dashboard.built.home.root)
    changed = sorted(
        k for k in {*after, *dashboard.before} if after.get(k) != dashboard.before.get(k)
    )
    assert not changed, f"the dashboard changed {changed}"


# -- a real browser ---------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = ("/", "/experiments", "/models", "/monitoring", "/hardware", "/alerts")
FIGURES_JS = """() => Array.from(document.querySelectorAll("div.chart")).map(el => ({
  id: el.id,
  drawn: el.classList.contains("js-plotly-plot") && !!el.querySelector("svg.main-svg"),
  traces: (el.data || []).map(t => ({name: t.name, x: Array.from(t.x || []), y: Array.from(t.y || [])})),
}))"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.is_file():
        if os.environ.get("EFFICIENTAI_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run the browser test")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def visit(browser: Any, url: str, shot: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Load ``url``, keep a screenshot, return its drawn figures and any console errors."""
    errors: list[str] = []
    page = browser.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = page.goto(url, wait_until="networkidle", timeout=60_000)
    assert response is not None and response.status == 200, url
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('div.chart'))"
        ".every(el => el.classList.contains('js-plotly-plot'))",
        timeout=30_000,
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
    figures = page.evaluate(FIGURES_JS)
    page.close()
    return figures, errors


def test_every_page_loads_in_chromium_and_its_charts_hold_the_stored_numbers(
    dashboard: Dashboard, browser: Any
) -> None:
    client = mlflow_client(dashboard.built)
    drawn: dict[str, dict[str, Any]] = {}
    for path in PAGES:
        figures, errors = visit(browser, dashboard.url + path, path.strip("/") or "overview")
        assert not errors, f"console errors on {path}: {errors}"
        assert figures and all(f["drawn"] for f in figures), f"undrawn chart on {path}"
        drawn.update({f["id"]: f for f in figures})

    stored = drift_materializations(dashboard.built)
    [share] = [
        t for t in drawn["chart-drift-share"]["traces"] if t["name"] == f"{ALPHA} drift share"
    ]
    assert share["x"] == sorted(stored)
    assert share["y"] == [stored[day]["drift_share"] for day in sorted(stored)]
    [line] = [t for t in drawn["chart-drift-share"]["traces"] if t["name"] == f"{ALPHA} threshold"]
    assert set(line["y"]) == {stored[DRIFTED_DAY]["drift_share_threshold"]}

    [champions] = [t for t in drawn["chart-accuracy"]["traces"] if t["name"] == "champion"]
    for namespace, accuracy in zip(champions["x"], champions["y"], strict=True):
        version = client.get_model_version_by_alias(_model(namespace), CHAMPION_ALIAS)
        assert accuracy == float(version.tags["efficientai.val_accuracy"])

    curves = {t["name"]: t for t in drawn["chart-val-accuracy"]["traces"]}
    runs = dashboard.json(f"/api/experiments?namespace={ALPHA}")["runs"]
    for run in runs:
        if "val_accuracy" in run["curves"]:
            history = sorted(
                client.get_metric_history(run["run_id"], "val_accuracy"), key=lambda m: m.step
            )
            assert curves[run["name"]]["y"] == [m.value for m in history]

    [go] = [t for t in drawn["chart-gate"]["traces"] if t["name"] == "go"]
    assert HELD_SECONDS in go["y"], "the step that waited 900 s is drawn at 900"
    assert any(t["name"] == "hold" for t in drawn["chart-gate"]["traces"])

    throughput = {t["name"]: t for t in drawn["chart-throughput"]["traces"]}
    for namespace, trace in throughput.items():
        for label, value in zip(trace["x"], trace["y"], strict=True):
            version = client.get_model_version(_model(namespace), label.removeprefix("v"))
            assert value == client.get_run(version.run_id).data.metrics["samples_per_second"]

    report_errors: list[str] = []
    page = browser.new_page()
    page.on("pageerror", lambda e: report_errors.append(str(e)))
    page.goto(
        f"{dashboard.url}/reports/{ALPHA}/{DRIFTED_DAY}/drift.html",
        wait_until="load",
        timeout=120_000,
    )
    page.screenshot(path=str(ARTIFACTS / "drift-report.png"))
    page.close()
    assert not report_errors, report_errors


def test_a_dead_mlflow_server_shows_as_down_on_its_sections_not_as_an_error(
    built_home: BuiltHome,
) -> None:
    from fastapi.testclient import TestClient

    from efficientai_assets.dashboard.app import create_app
    from efficientai_assets.dashboard.settings import DashboardSettings
    from efficientai_assets.operations.stores import StoreLocations

    env = {"EFFICIENTAI_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    settings = DashboardSettings.for_locations(StoreLocations.for_home(built_home.home, env), env)
    client = TestClient(create_app(settings))
    for path in (*PAGES, *(f"/api{p}" for p in PAGES if p != "/"), "/api/overview"):
        assert client.get(path).status_code == 200, path
    overview = client.get("/api/overview").json()
    rows = {row["namespace"]: row for row in overview["namespaces"]}
    assert set(rows) == {ALPHA, BETA}, "the deployment records still name the namespaces"
    for row in rows.values():
        assert row["registry"]["status"] == "down" and row["registry"]["store"] == "mlflow"
        assert row["live"]["status"] == "up", "deployment records do not need MLflow"
        assert row["monitoring"]["status"] == "up", "Dagster does not need MLflow"
    assert "mlflow is down" in client.get("/models").text
    health = client.get("/health")
    assert health.status_code == 503 and health.json()["down"] == ["mlflow"]
