"""``make run``'s command: the pipeline job, the monitoring job for the latest day and the summary,
in one supervised process; run again with nothing changed, every step answers from its record
and nothing new is deployed. Real processes on a fresh home (MLflow SQLite, DVC with a local
remote, MLX training, ``bentoml build``).
"""

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
import pytest
from conftest import home_env, make_home

from efficientai_assets.names import MONITORING_JOB, PIPELINE_JOB
from efficientai_assets.summary import latest_day
from resources.home import EfficientAIHome

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The hardware gate must not hold the steps under test on a busy test machine.
RELAXED_GATE = {
    "resources": {
        "hardware": {
            "config": {
                "gate": {
                    "psi_cpu_some_max": 100.0,
                    "psi_memory_some_max": 100.0,
                    "psi_memory_full_max": 100.0,
                }
            }
        }
    }
}
RUN = [sys.executable, "-m", "resources.supervise", "--command-recovers", "--"]
LAUNCH = [sys.executable, "-m", "efficientai_assets.launch"]


def make_run(
    home: EfficientAIHome, config: Mapping[str, object]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RUN, *LAUNCH, "--config-json", json.dumps(config)],
        env=home_env(home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )


def runs(home: EfficientAIHome) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        return [record.dagster_run for record in instance.get_run_records(ascending=True)]


def memoized_steps(home: EfficientAIHome, run_id: str) -> dict[str, bool]:
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        found = {}
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            materialization = entry.asset_materialization
            assert materialization is not None
            memo = materialization.metadata.get("memoized")
            found[materialization.asset_key.to_user_string()] = bool(memo and memo.value)
        return found


def test_the_makefile_runs_make_runs_work_in_one_supervised_process() -> None:
    shown = subprocess.run(
        ["make", "--no-print-directory", "-n", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "-m resources.supervise --command-recovers -- " in shown
    assert shown.rstrip().endswith("-m efficientai_assets.launch")


def test_make_run_runs_the_pipeline_then_the_latest_day_then_summarizes_and_reruns_from_records(
    tmp_path: Path,
) -> None:
    home = make_home(tmp_path / "home")
    first = make_run(home, RELAXED_GATE)
    assert first.returncode == 0, first.stderr[-3000:]
    [pipeline, monitoring] = runs(home)
    assert (pipeline.job_name, monitoring.job_name) == (PIPELINE_JOB, MONITORING_JOB)
    assert monitoring.tags["dagster/partition"] == latest_day()
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in (pipeline, monitoring))
    assert f"efficientai home: {home.root}" in first.stdout
    for asset in ("raw_dataset", "candidate_model", "model_bento", "deployment", "drift_report"):
        assert f"  {asset}: " in first.stdout

    second = make_run(home, RELAXED_GATE)
    assert second.returncode == 0, second.stderr[-3000:]
    again = runs(home)[2:]
    assert [run.job_name for run in again] == [PIPELINE_JOB, MONITORING_JOB]
    steps = {**memoized_steps(home, again[0].run_id), **memoized_steps(home, again[1].run_id)}
    assert steps == dict.fromkeys(
        [
            "raw_dataset",
            "dataset_splits",
            "candidate_model",
            "champion_model",
            "model_bento",
            "deployment",
            "inference_batch",
            "drift_report",
        ],
        True,
    )
    deployments = list((home.bentoml_home / "deployments").rglob("[0-9]*.json"))
    assert [path.name for path in deployments] == ["000001.json"]


def test_a_failed_pipeline_stops_make_run_before_the_monitoring_job(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    bad = {"ops": {"candidate_model": {"config": {"no_such_field": 1}}}}
    done = make_run(home, bad)
    assert done.returncode != 0
    assert "no_such_field" in done.stderr
    assert [run.job_name for run in runs(home)] == []  # refused before any run was created
    assert "efficientai home:" not in done.stdout
