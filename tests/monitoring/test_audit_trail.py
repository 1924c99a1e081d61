"""The retraining audit trail: one file per namespace, in the namespace's reports folder, each
line naming its namespace; a sensor audits only the runs of its namespace, and lines written
before lines named one still read. (The whole loop, drift to audited retraining:
tests/monitoring/test_drift_sensor.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from efficientai_assets.names import AUDIT_ASSET, TAG_RUN_NAMESPACE, TAG_TRIGGER, TRIGGER_DRIFT
from resources.evidently.resource import EvidentlyResource
from resources.home import DEFAULT_NAMESPACE, EfficientAIHome
from sensors.drift_audit import (
    AUDIT_FILE,
    append_audit_record,
    audit_finished_runs,
    read_audit_records,
)
from sensors.drift_cursor import Cursor


@dg.asset
def retrained() -> int:
    """Stands in for a retraining run: what the trail records is the run's tags and outcome."""
    return 1


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as opened:
        yield opened


def finished_run(instance: dg.DagsterInstance, namespace: str | None) -> str:
    """A finished drift-triggered run, its request naming ``namespace`` (None: a run requested
    before requests named one)."""
    tags = {TAG_TRIGGER: TRIGGER_DRIFT}
    if namespace is not None:
        tags[TAG_RUN_NAMESPACE] = namespace
    return dg.materialize([retrained], instance=instance, tags=tags).run_id


def test_each_namespace_audits_its_own_runs_into_its_own_reports_folder(
    instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EFFICIENTAI_HOME", str(tmp_path / "home"))
    home = EfficientAIHome((tmp_path / "home").resolve())
    older = finished_run(instance, None)
    alpha_run = finished_run(instance, "alpha")
    beta_run = finished_run(instance, "beta")
    unset = EvidentlyResource()  # the code location's wiring: the home's folder per namespace

    alpha = audit_finished_runs(instance, Cursor(), unset, "alpha")
    beta = audit_finished_runs(instance, Cursor(), unset, "beta")

    def audited(events: list[dg.AssetMaterialization]) -> list[tuple[str, str]]:
        assert all(e.asset_key == dg.AssetKey(AUDIT_ASSET) for e in events)
        return [
            (str(e.metadata["run_id"].value), str(e.metadata["namespace"].value)) for e in events
        ]

    assert audited(alpha) == [(older, "alpha"), (alpha_run, "alpha")]
    assert audited(beta) == [(older, "beta"), (beta_run, "beta")], "a run's tag decides"
    for namespace, runs in (("alpha", [older, alpha_run]), ("beta", [older, beta_run])):
        trail = home.reports_for(namespace) / AUDIT_FILE
        records = read_audit_records(trail)
        assert [(r["run_id"], r["namespace"]) for r in records] == [(r, namespace) for r in runs]
    assert not (home.reports / AUDIT_FILE).exists(), "no namespace writes the default's trail"

    default = audit_finished_runs(instance, Cursor(), unset, DEFAULT_NAMESPACE)
    assert audited(default) == [(older, DEFAULT_NAMESPACE)]
    [record] = read_audit_records(home.reports / AUDIT_FILE)
    assert record["namespace"] == DEFAULT_NAMESPACE

    configured = EvidentlyResource(reports_dir=str(tmp_path / "alpha-reports"))
    audit_finished_runs(instance, Cursor(), configured, "alpha")
    trail = (tmp_path / "alpha-reports" / AUDIT_FILE).resolve()
    assert [r["run_id"] for r in read_audit_records(trail)] == [older, alpha_run]


def test_lines_from_before_they_named_a_namespace_still_read_and_still_deduplicate(
    tmp_path: Path,
) -> None:
    trail = tmp_path / AUDIT_FILE
    old = {"run_id": "r-old", "outcome": "promoted"}
    trail.write_text(json.dumps(old) + "\n" + '{"run_id": "r-torn", "outc')  # a crash mid-line
    append_audit_record(trail, {"namespace": "alpha", "run_id": "r-new", "outcome": "failed"})
    append_audit_record(trail, {"namespace": "alpha", "run_id": "r-old", "outcome": "promoted"})

    records = read_audit_records(trail)
    assert [(r["run_id"], r["namespace"]) for r in records] == [("r-old", None), ("r-new", "alpha")]
    assert records[0]["outcome"] == "promoted", "the old line reads whole"
    assert read_audit_records(tmp_path / "nothing.jsonl") == []
