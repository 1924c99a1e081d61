"""The five examples the seed guide's Examples section names exist in ``docs/examples/`` and run
as written, each in a fresh home; the tests read back what they left in the stores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import bentoml_list, dvc_cloud_status
from test_guide_support import clean_env, tracking

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
GUIDE_EXAMPLES = (
    "training_workflow.py",
    "deployment_workflow.py",
    "monitoring_workflow.py",
    "data_versioning.py",
    "hyperparameter_tuning.py",
)


def run_example(script: str, root: Path) -> str:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=root,
        env={**clean_env(), "EFFICIENTAI_HOME": str(root / "home")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "Traceback" not in completed.stderr
    return completed.stdout


def runs_by_experiment(home: Path) -> dict[str, list[Any]]:
    store = tracking(home)
    return {
        experiment.name: list(store.search_runs([experiment.experiment_id]))
        for experiment in store.search_experiments()
    }


def test_every_example_the_guide_names_exists() -> None:
    assert [name for name in GUIDE_EXAMPLES if not (EXAMPLES / name).is_file()] == []


@pytest.mark.slow
def test_training_workflow_example_tracks_a_finished_run(tmp_path: Path) -> None:
    out = run_example("training_workflow.py", tmp_path)
    assert "finished: val_accuracy=" in out
    (run,) = runs_by_experiment(tmp_path / "home")["efficientai/script-training"]
    assert run.info.status == "FINISHED" and "val_accuracy" in run.data.metrics


@pytest.mark.slow
def test_deployment_workflow_example_packages_checks_the_canary_and_rolls_out(
    tmp_path: Path,
) -> None:
    out = run_example("deployment_workflow.py", tmp_path)
    assert "Bento: efficientai-digits-rollout" in out
    assert "Docker: " in out
    listed = bentoml_list(tmp_path / "home" / "bentoml")
    versions = {labels["model_version"] for labels in listed.values()}
    assert {"unversioned", "canary", "v1.0"} <= versions
    (run,) = runs_by_experiment(tmp_path / "home")["efficientai/deployments"]
    assert run.info.status == "FINISHED" and run.data.metrics["canary_accuracy"] >= 0.5
    assert "rolled out: efficientai-digits-rollout:vv1.0-" in out


@pytest.mark.slow
def test_monitoring_workflow_example_reports_drift_and_the_machine(tmp_path: Path) -> None:
    out = run_example("monitoring_workflow.py", tmp_path)
    assert "five rows apart:    drift_detected=True" in out and "warning: small sample" in out
    assert "same distribution:  drift_detected=False" in out
    assert "brighter pixels:    drift_detected=True" in out
    reports = list((tmp_path / "home" / "reports" / "efficientai").glob("*/drift.json"))
    assert len(reports) == 3
    (run,) = runs_by_experiment(tmp_path / "home")["efficientai/monitoring"]
    assert run.data.metrics["drift_score_brighter"] > run.data.metrics["drift_score_same"]
    assert "hardware.thermal_state" in run.data.params


@pytest.mark.slow
def test_data_versioning_example_leaves_the_registry_in_sync(tmp_path: Path) -> None:
    out = run_example("data_versioning.py", tmp_path)
    assert "dvc status against the remote: in sync" in out
    assert dvc_cloud_status(tmp_path / "home" / "data") == {}


@pytest.mark.slow
def test_hyperparameter_tuning_example_runs_the_sweep_job_and_registers_the_best(
    tmp_path: Path,
) -> None:
    out = run_example("hyperparameter_tuning.py", tmp_path)
    assert out.count(": trained, val_accuracy=") == 4 and "has the highest validation" in out
    runs = runs_by_experiment(tmp_path / "home")["efficientai/training"]
    (sweep,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == sweep.info.run_id]
    assert len(trials) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    best = max(r.data.metrics["val_accuracy"] for r in trials)
    assert sweep.data.metrics["best_val_accuracy"] == pytest.approx(best)
    store = tracking(tmp_path / "home")
    champion = store.get_model_version_by_alias("efficientai-digits-classifier", "champion")
    assert f"champion v{champion.version}" in out
    assert sweep.data.tags["sweep.best_model_version"] == str(champion.version)
    again = run_example("hyperparameter_tuning.py", tmp_path)  # memoized: nothing new
    assert again.count(": reused, val_accuracy=") == 4
    assert len(runs_by_experiment(tmp_path / "home")["efficientai/training"]) == 5
