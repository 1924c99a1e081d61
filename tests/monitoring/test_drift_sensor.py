"""The drift → retrain sensor evaluated on an instance holding real drift-report materializations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from conftest import FAST_TRAINING, PipelineHome

from efficientai_assets.defs.monitoring.assets import drift_report, inference_batch
from efficientai_assets.defs.monitoring.retraining import (
    RetrainingRequest,
    assemble_retraining_data,
)
from efficientai_assets.names import (
    AUDIT_ASSET,
    TAG_DRIFT_PARTITIONS,
    TAG_REPLACED_CHAMPION,
    TAG_RUN_NAMESPACE,
    TAG_TRIGGER,
    TRIGGER_DRIFT,
)
from resources.hardware.resource import HardwareResource
from sensors.drift import build_drift_sensor
from sensors.drift_audit import audit_path, read_audit_records
from sensors.drift_cursor import CURSOR_VERSION, Cursor
from sensors.drift_guardrails import RetrainPolicy

HOUR = 3600.0


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _hardware(tmp_path: Path, thermal: str) -> HardwareResource:
    trace = tmp_path / f"trace-{thermal}.json"
    trace.write_text(
        json.dumps(
            {
                "start": 0,
                "readings": [{"at": 0, "thermal_state": thermal, "thermal_source": "replay"}],
            }
        )
    )
    return HardwareResource(source="replay", replay_trace_path=str(trace))


@pytest.fixture
def monitored(trained_pipeline: PipelineHome, tmp_path: Path) -> Iterator[PipelineHome]:
    """The trained home's stores with a fresh Dagster instance, so only this test's drift
    reports are in it."""
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield PipelineHome(trained_pipeline.home, dict(trained_pipeline.resources), instance)


def reports(pipeline: PipelineHome) -> Path:
    """The namespace's reports folder, as its resources wire it (``home.reports_for``)."""
    path: Path = pipeline.resources["evidently"].reports_root()
    assert path == pipeline.home.reports_for(pipeline.resources["mlflow"].project_namespace)
    return path


def trail(pipeline: PipelineHome) -> Path:
    """The namespace's retraining audit trail, beside its day folders."""
    return audit_path(
        pipeline.resources["evidently"], pipeline.resources["mlflow"].project_namespace
    )


def report_day(pipeline: PipelineHome, day: str, **batch: Any) -> None:
    dg.materialize(
        [inference_batch, drift_report],
        partition_key=day,
        resources=pipeline.resources,
        instance=pipeline.instance,
        run_config={"ops": {"inference_batch": {"config": batch}}},
    )


def tick(
    pipeline: PipelineHome, sensor: dg.SensorDefinition, cursor: str | None, hardware: Any
) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=pipeline.instance,
        cursor=cursor,
        resources={**pipeline.resources, "hardware": hardware},
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def skipped(result: dg.SensorResult) -> str:
    assert result.skip_reason is not None and result.skip_reason.skip_message is not None
    return result.skip_reason.skip_message


def requests(result: dg.SensorResult) -> list[dg.RunRequest]:
    return list(result.run_requests or [])


def _job() -> Any:
    from efficientai_assets.defs.jobs import training_job

    return training_job


def test_calm_day_skips_and_a_sudden_shift_requests_exactly_one_run(
    monitored: PipelineHome, tmp_path: Path
) -> None:
    clock = Clock()
    sensor = build_drift_sensor(_job(), policy=RetrainPolicy(min_new_rows=100), clock=clock)
    cool = _hardware(tmp_path, "nominal")

    report_day(monitored, "2026-04-01", shift="none")
    calm = tick(monitored, sensor, None, cool)
    assert not requests(calm)
    assert "no drift pending" in skipped(calm) and "2026-04-01: no drift" in skipped(calm)

    report_day(monitored, "2026-04-02", shift="sudden", shift_start="2026-04-02")
    drifted = tick(monitored, sensor, calm.cursor, cool)
    [request] = requests(drifted)
    assert request.tags[TAG_TRIGGER] == TRIGGER_DRIFT
    assert request.tags[TAG_DRIFT_PARTITIONS] == "2026-04-02"
    assert request.tags[TAG_REPLACED_CHAMPION]
    assert request.tags[TAG_RUN_NAMESPACE] == "test", "the run names the namespace it retrains"
    # The tick wrote no data: the run's tags say what raw_dataset assembles in its step.
    assert "raw_dataset" not in request.run_config.get("ops", {})
    assert not (reports(monitored) / "retraining").exists()
    plan = RetrainingRequest.from_tags(request.tags)
    assert plan is not None and plan.partitions == ("2026-04-02",)
    combined, new_rows = assemble_retraining_data(
        monitored.resources["dvc"], plan, tmp_path / "assembled"
    )
    assert (len(combined), new_rows) == (1797 + 500, 500)  # train + validation + the batch

    # The same cursor again (a retried tick) gives the same deterministic run key.
    replay = tick(monitored, sensor, calm.cursor, cool)
    assert [r.run_key for r in requests(replay)] == [request.run_key]

    # A new drift event inside the cooldown: no run, and the skip says why.
    report_day(monitored, "2026-04-03", shift="sudden", shift_start="2026-04-02")
    clock.now += 1 * HOUR
    cooling = tick(monitored, sensor, drifted.cursor, cool)
    assert not requests(cooling) and skipped(cooling).startswith("cooldown:")
    assert "2026-04-03" in skipped(cooling)

    clock.now += 6 * HOUR
    after = tick(monitored, sensor, cooling.cursor, cool)
    [second] = requests(after)
    assert second.tags[TAG_DRIFT_PARTITIONS] == "2026-04-03"
    assert second.run_key != request.run_key


def test_hot_machine_defers_and_too_few_new_rows_waits(
    monitored: PipelineHome, tmp_path: Path
) -> None:
    report_day(monitored, "2026-04-10", shift="sudden", shift_start="2026-04-10", rows=200)
    greedy = build_drift_sensor(_job(), policy=RetrainPolicy(min_new_rows=1000), clock=Clock())
    waiting = tick(monitored, greedy, None, _hardware(tmp_path, "nominal"))
    assert not requests(waiting)
    assert skipped(waiting).startswith("waiting for labelled rows: 200 of 1000")

    sensor = build_drift_sensor(_job(), policy=RetrainPolicy(min_new_rows=100), clock=Clock())
    hot = tick(monitored, sensor, None, _hardware(tmp_path, "serious"))
    assert not requests(hot)
    assert skipped(hot).startswith("deferred by the hardware gate")
    assert "thermal=serious" in skipped(hot) and "2026-04-10" in skipped(hot)
    cooled = tick(monitored, sensor, hot.cursor, _hardware(tmp_path, "nominal"))
    assert len(requests(cooled)) == 1, "the deferred drift is requested once the machine cools"


_EVENT = {
    "partition": "2026-04-01", "storage_id": 7, "drift_share": 0.5, "threshold": 0.3,
    "labelled_rows": 500, "batch_path": "/nowhere/batch.parquet", "report_path": "",
}  # fmt: skip
CORRUPT_CURSORS = {
    "not-json": "{not json",
    "after-not-int": json.dumps({"version": CURSOR_VERSION, "after_storage_id": "abc"}),
    "pending-not-list": json.dumps({"version": CURSOR_VERSION, "pending": {"a": 1}}),
    "event-missing-field": json.dumps(
        {"version": CURSOR_VERSION, "pending": [{"partition": "2026-04-01"}]}
    ),
    "event-not-object": json.dumps({"version": CURSOR_VERSION, "pending": [5]}),
    "event-bad-type": json.dumps(
        {"version": CURSOR_VERSION, "pending": [{**_EVENT, "storage_id": "7"}]}
    ),
    "audited-not-list": json.dumps({"version": CURSOR_VERSION, "audited": 5}),
    "last-request-not-number": json.dumps({"version": CURSOR_VERSION, "last_request_at": "x"}),
}


@pytest.mark.parametrize("text", CORRUPT_CURSORS.values(), ids=CORRUPT_CURSORS.keys())
def test_a_corrupt_cursor_starts_fresh_instead_of_failing_every_tick(
    monitored: PipelineHome, tmp_path: Path, text: str
) -> None:
    assert Cursor.decode(text) == Cursor(pending={}, audited=[])
    sensor = build_drift_sensor(_job(), policy=RetrainPolicy(min_new_rows=100), clock=Clock())
    result = tick(monitored, sensor, text, _hardware(tmp_path, "nominal"))
    assert not requests(result) and "no drift pending" in skipped(result)
    assert result.cursor is not None
    stored = json.loads(result.cursor)
    assert stored["version"] == CURSOR_VERSION and stored["pending"] == []
    assert Cursor.decode(result.cursor).encode() == result.cursor


def test_a_stored_event_survives_the_cursor_round_trip() -> None:
    cursor = Cursor.decode(json.dumps({"version": CURSOR_VERSION, "pending": [_EVENT]}))
    assert cursor.pending is not None and cursor.pending["2026-04-01"].to_json() == _EVENT


def test_a_missing_batch_fails_the_retraining_step_and_the_audit_records_it_once(
    monitored: PipelineHome, tmp_path: Path
) -> None:
    from efficientai_assets.defs.data.assets import raw_dataset

    report_day(monitored, "2026-04-20", shift="sudden", shift_start="2026-04-20")
    batch = reports(monitored) / "2026-04-20" / "batch.parquet"
    batch.unlink()
    audit_file = trail(monitored)
    assert audit_file == monitored.home.reports_for("test") / "retraining_audit.jsonl"
    policy = RetrainPolicy(min_new_rows=100, cooldown_seconds=0)
    sensor = build_drift_sensor(_job(), policy=policy, clock=Clock())
    cool = _hardware(tmp_path, "nominal")

    first = tick(monitored, sensor, None, cool)
    [request] = requests(first)  # the tick reads nothing but metadata: it cannot know
    run = dg.materialize(
        [raw_dataset],
        resources=monitored.resources,
        instance=monitored.instance,
        tags={**request.tags, "dagster/run_key": request.run_key or ""},
        raise_on_error=False,
    )
    assert not run.success
    failure = run.failure_data_for_node("raw_dataset")
    assert failure is not None
    assert f"drifted batch of 2026-04-20 ({batch}) is missing" in str(failure.error)

    def audit_lines() -> list[str]:
        lines = audit_file.read_text().splitlines() if audit_file.is_file() else []
        return [line for line in lines if json.loads(line)["run_id"] == run.run_id]

    second = tick(monitored, sensor, first.cursor, cool)
    [audit] = [e for e in second.asset_events if e.asset_key == dg.AssetKey(AUDIT_ASSET)]
    record = {k: str(v.value) for k, v in audit.metadata.items()}
    assert record["run_id"] == run.run_id and record["outcome"] == "failed"
    assert record["reason"].startswith("raw_dataset: ") and "is missing" in record["reason"]
    assert record["drift_partitions"] == "2026-04-20" and record["training_data"] == ""
    assert len(audit_lines()) == 1
    assert json.loads(audit_lines()[0])["namespace"] == "test" == record["namespace"]

    third = tick(monitored, sensor, second.cursor, cool)
    assert not third.asset_events, "the advanced cursor remembers the audited run"
    # Even a tick whose cursor was lost re-audits without a second line in the trail.
    tick(monitored, sensor, None, cool)
    assert len(audit_lines()) == 1


def test_without_a_champion_to_retrain_from_the_drift_stays_pending(
    monitored: PipelineHome, tmp_path: Path
) -> None:
    report_day(monitored, "2026-04-25", shift="sudden", shift_start="2026-04-25")
    mlflow = monitored.resources["mlflow"]
    name = mlflow.model_name("digits-classifier")
    sensor = build_drift_sensor(_job(), policy=RetrainPolicy(min_new_rows=100), clock=Clock())
    cool = _hardware(tmp_path, "nominal")
    with _no_champion(mlflow, name):
        held = tick(monitored, sensor, None, cool)
    assert not requests(held)
    assert skipped(held).startswith("no reference window to retrain from: ")
    assert "no 'champion' version" in skipped(held) and "2026-04-25" in skipped(held)
    assert len(requests(tick(monitored, sensor, held.cursor, cool))) == 1


@contextmanager
def _no_champion(mlflow: Any, name: str) -> Iterator[None]:
    """The champion alias removed for the block, then put back where it was."""
    client = mlflow.client()
    version = mlflow.version_for_alias(name, "champion").version
    client.delete_registered_model_alias(name, "champion")
    try:
        yield
    finally:
        client.set_registered_model_alias(name, "champion", version)


@pytest.mark.slow
def test_shifted_batch_leads_through_the_sensor_to_a_retrained_champion(
    home_factory: Any, tmp_path: Path
) -> None:
    from conftest import training_run_config

    from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
    from efficientai_assets.defs.serving.assets import model_bento
    from efficientai_assets.defs.training.assets import candidate_model, champion_model

    pipeline = home_factory("e2e")
    training_assets = [raw_dataset, dataset_splits, candidate_model, champion_model]
    pipeline.materialize(training_assets, run_config=training_run_config())
    mlflow = pipeline.resources["mlflow"]
    name = mlflow.model_name("digits-classifier")
    first = mlflow.version_for_alias(name, "champion").version

    report_day(pipeline, "2026-05-01", shift="sudden", shift_start="2026-05-01", rows=600)
    sensor = build_drift_sensor(
        _job(),
        policy=RetrainPolicy(min_new_rows=100),
        extra_run_config=training_run_config(),
        clock=Clock(),
    )
    cool = _hardware(tmp_path, "nominal")
    requested = tick(pipeline, sensor, None, cool)
    [request] = requests(requested)
    assert (
        request.run_config["ops"]["candidate_model"]["config"]["epochs"] == FAST_TRAINING["epochs"]
    )

    run = dg.materialize(
        [*training_assets, model_bento],
        resources=pipeline.resources,
        instance=pipeline.instance,
        run_config=request.run_config,
        tags={**request.tags, "dagster/run_key": request.run_key or ""},
    )
    assert run.success
    second = mlflow.version_for_alias(name, "champion").version
    assert int(second) > int(first), "the candidate trained on the new data became champion"

    audited = tick(pipeline, sensor, requested.cursor, cool)
    [audit] = [e for e in audited.asset_events if e.asset_key == dg.AssetKey(AUDIT_ASSET)]
    record = {k: str(v.value) for k, v in audit.metadata.items()}
    assert record["outcome"] == "promoted" and record["replaced_champion"] == str(first)
    assert record["new_champion"] == str(second) and record["drift_partitions"] == "2026-05-01"
    assert record["new_rows"] == "600" and record["training_data"], "the step's data version"
    bento = pipeline.resources["bentoml"].get_bento(record["bento"])
    assert bento is not None, "the retraining run built the new champion's bento"
    assert bento.labels["model_version"] == str(second)
    last = read_audit_records(trail(pipeline))[-1]
    assert last["run_id"] == run.run_id and last["namespace"] == "test"
    again = tick(pipeline, sensor, audited.cursor, cool)
    assert not again.asset_events, "each retraining is audited once"
