"""Health, backup and restore as their commands run them (``make health``, ``make backup``,
``make restore``), on a home the real pipeline built: a backup taken while a pipeline run is in
progress restores into a new home that passes its own checks (the champion loads by alias,
``dvc pull`` restores the data, the run history is there, the live deployment serves), with the
source home moved away; broken stores are named; bad archives and non-empty homes are refused
before anything is written.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from conftest import (
    make_home,
    resources_for_tests,
    throwaway_postgres_databases,
    training_run_config,
)
from test_dashboard import dashboard_env, free_port, pipeline_assets

from resources.home import DEFAULT_NAMESPACE, EfficientAIHome
from sensors.drift_audit import AUDIT_FILE

NAMESPACE = "ops"
MODEL = f"{NAMESPACE}-digits-classifier"
TESTS = Path(__file__).resolve().parent


@dataclass
class OpsHome:
    home: EfficientAIHome
    root: Path  # scratch folder beside the home


@pytest.fixture(scope="module")
def ops_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsHome]:
    """One namespace: data, a champion, its bento and a deployment record."""
    root = tmp_path_factory.mktemp("operations")
    home = make_home(root / "home")
    with dg.instance_for_test(temp_dir=str(home.dagster_home)) as instance:
        dg.materialize(
            pipeline_assets(), resources=resources_for_tests(NAMESPACE, home), instance=instance,
            run_config=training_run_config(),
        )  # fmt: skip
    yield OpsHome(home, root)


def command(
    module: str, home: EfficientAIHome, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """``python -m efficientai_assets.operations.<module>`` as the make target runs it."""
    return subprocess.run(
        [sys.executable, "-m", f"efficientai_assets.operations.{module}", *args],
        env=dashboard_env(home, EFFICIENTAI_PROJECT=NAMESPACE, **env),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def lines_of(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """``component → status word`` from the command's probe lines."""
    out: dict[str, str] = {}
    for line in result.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("OK", "DOWN", "off"):
            out[rest.strip().split("  ")[0].strip()] = word
    return out


# -- health -------------------------------------------------------------------------------------


def test_health_prints_a_line_per_component_and_exits_zero_when_all_are_up(
    ops_home: OpsHome,
) -> None:
    result = command("health", ops_home.home)
    assert result.returncode == 0, result.stdout + result.stderr
    status = lines_of(result)
    for component in ("dagster-storage", "mlflow", "dvc-remote", "bentoml-store", "disk"):
        assert status[component] == "OK", result.stdout
    assert status["server"] == status["dashboard"] == "off", "not running, not configured"
    assert "holds all" in result.stdout, "the remote holds every object of the current versions"


def test_health_names_a_dead_mlflow_server_and_a_missing_dvc_remote(ops_home: OpsHome) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    result = command("health", ops_home.home, EFFICIENTAI_MLFLOW_TRACKING_URI=dead)
    assert result.returncode == 1
    assert lines_of(result)["mlflow"] == "DOWN" and "1 down: mlflow" in result.stdout

    remote = ops_home.home.dvc_remote
    moved = remote.with_name("dvc-remote.moved")
    remote.rename(moved)
    try:
        result = command("health", ops_home.home, "--json")
    finally:
        moved.rename(remote)
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["down"] == ["dvc-remote"]
    [probe] = [c for c in document["components"] if c["component"] == "dvc-remote"]
    assert str(remote) in probe["detail"] and "does not exist" in probe["detail"]


def test_health_reads_an_mlflow_tracking_server_through_its_health_route(ops_home: OpsHome) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", ops_home.home.mlflow_tracking_uri, "--workers", "1"],
        env=dashboard_env(ops_home.home, MLFLOW_DISABLE_TELEMETRY="true"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        result = command("health", ops_home.home, EFFICIENTAI_MLFLOW_TRACKING_URI=url)
        while lines_of(result).get("mlflow") != "OK" and time.monotonic() < deadline:
            time.sleep(2)
            result = command(
                "health", ops_home.home, "--quick", EFFICIENTAI_MLFLOW_TRACKING_URI=url
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert result.returncode == 0, result.stdout
    assert f"server {url}: OK" in result.stdout


def test_health_names_a_configured_server_that_does_not_answer(ops_home: OpsHome) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = command("health", ops_home.home, EFFICIENTAI_SERVE_URLS=url)
    assert result.returncode == 1
    assert lines_of(result)[f"server {url}"] == "DOWN"


# -- backup and restore --------------------------------------------------------------------------

# A pipeline run held by the hardware gate for a few checks, then training long enough to still be
# writing while the backup runs.
SLOW_RUN = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {tests!r})
    sys.path.insert(0, {tests!r}.rsplit('/', 1)[0])
    import dagster as dg
    from conftest import resources_for_tests, training_run_config
    from resources.hardware.gate_settings import GateSettings
    from resources.hardware.resource import HardwareResource
    from resources.home import EfficientAIHome
    from test_dashboard import pipeline_assets

    home = EfficientAIHome(__import__("pathlib").Path({home!r}))
    trace = {trace!r}
    readings = [{{"at": i, "thermal_state": "critical"}} for i in range(15)]
    readings.append({{"at": 15, "thermal_state": "nominal"}})
    open(trace, "w").write(json.dumps({{"start": time.time(), "readings": readings}}))
    resources = {{
        **resources_for_tests({namespace!r}, home),
        "hardware": HardwareResource(source="replay", replay_trace_path=trace, gate=GateSettings(
            bad_readings_to_hold=1, cooldown_seconds=0, retry_initial_seconds=1.0,
            retry_max_seconds=1.0, retry_jitter=0.0)),
    }}
    instance = dg.DagsterInstance.from_config(str(home.dagster_home))
    config = training_run_config(epochs=300, seed=5, force_retrain=True)
    result = dg.materialize(pipeline_assets()[:4], resources=resources, instance=instance,
                            run_config=config, tags={{"test": "in-progress"}})
    print("RUN", result.run_id, result.success)
    """
)


def wait_for_started_run(home: EfficientAIHome, process: subprocess.Popen[str]) -> str:
    instance = dg.DagsterInstance.from_config(str(home.dagster_home))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        runs = instance.get_runs(
            filters=dg.RunsFilter(
                tags={"test": "in-progress"}, statuses=[dg.DagsterRunStatus.STARTED]
            )
        )
        held = instance.fetch_observations(dg.AssetKey("candidate_model"), limit=1).records
        if runs and held and held[0].run_id == runs[0].run_id:
            return runs[0].run_id  # started, and its candidate step is held by the gate
        time.sleep(0.5)
    raise AssertionError("the pipeline run never reached its held candidate step")


def test_a_backup_taken_during_a_run_restores_into_a_new_home_that_passes_its_checks(
    ops_home: OpsHome,
) -> None:
    home, backups = ops_home.home, ops_home.root / "backups-live"
    # Two namespaces' reports of one day, each in its namespace's folder: both are carried.
    reports = {ns: f'{{"namespace": "{ns}"}}' for ns in (NAMESPACE, "other-project")}
    for namespace, text in reports.items():
        folder = home.reports_for(namespace) / "2026-05-01"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "drift.json").write_text(text)
    # Each namespace's retraining audit trail names the home's files by their full path.
    trails = {ns: home.reports_for(ns) / AUDIT_FILE for ns in (*reports, DEFAULT_NAMESPACE)}
    for namespace, trail in trails.items():
        report = home.reports_for(namespace) / "2026-05-01" / "drift.html"
        trail.write_text(json.dumps({"namespace": namespace, "drift_reports": str(report)}) + "\n")
    script = SLOW_RUN.format(
        tests=str(TESTS), home=str(home.root), trace=str(ops_home.root / "slow-trace.json"),
        namespace=NAMESPACE,
    )  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=dashboard_env(home), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        run_id = wait_for_started_run(home, process)
        backup = command("backup", home, BACKUP_DIR=str(backups))
        still_running = process.poll() is None
        output, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert still_running, "the run finished before the backup did: nothing was in progress"
    assert f"RUN {run_id} True" in output, output[-3000:]
    archive = Path(backup.stdout.strip().splitlines()[-1])
    assert archive.parent == backups.resolve() and archive.name.endswith(".tar.gz")
    with tarfile.open(archive) as opened:
        names = opened.getnames()
        handle = opened.extractfile("manifest.json")
        assert handle is not None
        manifest = json.load(handle)
    assert names[0] == "manifest.json" and set(names[1:]) == set(manifest["files"])
    assert manifest["components"]["dagster"]["kind"] == "sqlite"

    # Nothing may still point at the source: move it away for the restore and its checks.
    moved = home.root.with_name("home.moved")
    home.root.rename(moved)
    try:
        target = EfficientAIHome(ops_home.root / "restored")
        restored = command("restore", target, str(archive), "--serve")
        assert restored.returncode == 0, restored.stdout + restored.stderr
        checks = lines_of(restored)
        assert checks["dagster-history"] == checks["dvc pull"] == "OK", restored.stdout
        assert checks[f"champion {MODEL}"] == checks[f"serve {MODEL}"] == "OK", restored.stdout
        assert "ready on http://127.0.0.1:" in restored.stdout
        instance = dg.DagsterInstance.from_config(str(target.dagster_home))
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.STARTED, (
            "the restored history holds the run as it was mid-flight"
        )
        health = command("health", target)
        assert health.returncode == 0, health.stdout
        for namespace, text in reports.items():
            restored_report = target.reports_for(namespace) / "2026-05-01" / "drift.json"
            assert restored_report.read_text() == text, namespace
        for namespace in trails:
            [line] = (target.reports_for(namespace) / AUDIT_FILE).read_text().splitlines()
            assert json.loads(line)["drift_reports"] == str(
                target.reports_for(namespace) / "2026-05-01" / "drift.html"
            ), f"{namespace}'s trail names the restored home's files"
    finally:
        moved.rename(home.root)


@pytest.fixture(scope="module")
def archive(ops_home: OpsHome) -> Path:
    result = command("backup", ops_home.home, BACKUP_DIR=str(ops_home.root / "backups"))
    assert result.returncode == 0, result.stdout + result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def _repacked(source: Path, target: Path, change: str) -> Path:
    """A well-formed archive with the member ``change`` altered (its manifest left as it was)."""
    with tarfile.open(source) as original, tarfile.open(target, "w:gz") as out:
        for member in original:
            handle = original.extractfile(member) if member.isfile() else None
            data = handle.read() if handle is not None else None
            if member.name == change and data is not None:
                data = data[:-1] + bytes([data[-1] ^ 1])
            out.addfile(member, io.BytesIO(data) if data is not None else None)
    return target


def _assert_refused(result: subprocess.CompletedProcess[str], target: Path, words: str) -> None:
    assert result.returncode == 1
    assert words in result.stderr, result.stderr
    assert not target.exists(), "nothing was written"
    leftovers = [p.name for p in target.parent.iterdir() if ".restoring-" in p.name]
    assert not leftovers, leftovers


def test_restore_refuses_truncated_corrupt_and_altered_archives_before_writing(
    ops_home: OpsHome, archive: Path
) -> None:
    scratch = ops_home.root / "bad-archives"
    scratch.mkdir()
    target = EfficientAIHome(scratch / "target")
    data = archive.read_bytes()

    truncated = scratch / "truncated.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    _assert_refused(command("restore", target, str(truncated)), target.root, "truncated or corrupt")

    corrupt = scratch / "corrupt.tar.gz"
    middle = len(data) // 2
    corrupt.write_bytes(
        data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :]
    )
    _assert_refused(command("restore", target, str(corrupt)), target.root, "nothing was written")

    altered = _repacked(archive, scratch / "altered.tar.gz", "mlflow/mlflow.db")
    _assert_refused(
        command("restore", target, str(altered)), target.root, "does not match its checksum"
    )

    not_a_backup = scratch / "other.tar.gz"
    not_a_backup.write_bytes(gzip.compress(b"hello"))
    _assert_refused(
        command("restore", target, str(not_a_backup)), target.root, "nothing was written"
    )


def test_restore_refuses_a_home_that_holds_anything(ops_home: OpsHome, archive: Path) -> None:
    target = EfficientAIHome(ops_home.root / "occupied")
    target.root.mkdir()
    (target.root / "notes.txt").write_text("mine")
    result = command("restore", target, str(archive))
    assert result.returncode == 1 and "is not empty" in result.stderr
    assert [p.name for p in target.root.iterdir()] == ["notes.txt"]


def test_backup_refuses_when_the_dvc_remote_lacks_a_version_the_registry_references(
    ops_home: OpsHome,
) -> None:
    objects = sorted(p for p in (ops_home.home.dvc_remote).rglob("*") if p.is_file())
    assert objects
    victim = objects[0]
    kept = ops_home.root / "kept-object"
    shutil.move(victim, kept)
    backups = ops_home.root / "backups-refused"
    try:
        result = command("backup", ops_home.home, BACKUP_DIR=str(backups))
    finally:
        shutil.move(kept, victim)
    assert result.returncode == 1
    assert "lacks" in result.stderr and "dvc push --all-commits" in result.stderr
    assert not (backups.exists() and any(backups.iterdir())), "no archive, no staging left"


# -- the team stack's databases -------------------------------------------------------------------


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """Four empty databases: Dagster's and MLflow's of a source home and of a restored one."""
    roles = ("dagster", "mlflow", "dagster_new", "mlflow_new")
    with throwaway_postgres_databases("efficientai_ops", *roles) as urls:
        yield urls


def test_postgres_stores_are_dumped_and_restored_into_empty_databases_only(
    databases: dict[str, str], tmp_path: Path
) -> None:
    home = EfficientAIHome(tmp_path / "home")
    home.dagster_home.mkdir(parents=True)
    home.dagster_yaml.write_text(
        "storage:\n  postgres:\n    postgres_url:\n      env: OPS_DAGSTER_URL\n"
    )
    source = {"OPS_DAGSTER_URL": databases["dagster"],
              "EFFICIENTAI_MLFLOW_TRACKING_URI": databases["mlflow"]}  # fmt: skip
    writer = textwrap.dedent(
        f"""
        import dagster as dg, mlflow
        @dg.asset
        def tiny() -> int:
            return 1
        instance = dg.DagsterInstance.from_config({str(home.dagster_home)!r})
        for _ in range(3):
            assert dg.materialize([tiny], instance=instance).success
        client = mlflow.MlflowClient(tracking_uri={databases["mlflow"]!r})
        client.create_experiment(
            "{NAMESPACE}/training", artifact_location="file://{home.root}/mlflow/artifacts/x"
        )
        """
    )
    wrote = subprocess.run(
        [sys.executable, "-c", writer], env=dashboard_env(home, **source),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert wrote.returncode == 0, wrote.stderr[-2000:]
    backup = command("backup", home, BACKUP_DIR=str(tmp_path / "backups"), **source)
    assert backup.returncode == 0, backup.stderr
    archive = backup.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as opened:
        assert {"dagster.pgdump", "mlflow.pgdump"} <= set(opened.getnames())

    target = EfficientAIHome(tmp_path / "restored")
    into = {"OPS_DAGSTER_URL": databases["dagster_new"],
            "EFFICIENTAI_MLFLOW_TRACKING_URI": databases["mlflow_new"]}  # fmt: skip
    restored = command("restore", target, archive, **into)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert lines_of(restored)["dagster-history"] == "OK" and "3 runs" in restored.stdout
    health = command("health", target, **into)
    assert health.returncode == 0, health.stdout
    import psycopg2

    with psycopg2.connect(databases["mlflow_new"]) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT artifact_location FROM experiments WHERE name = %s",
                       (f"{NAMESPACE}/training",))  # fmt: skip
        assert cursor.fetchone() == (f"file://{target.root}/mlflow/artifacts/x",)
    connection.close()

    again = command("restore", EfficientAIHome(tmp_path / "another"), archive, **into)
    assert again.returncode == 1 and "is not empty" in again.stderr
    assert "nothing was written" in again.stderr and not (tmp_path / "another").exists()
