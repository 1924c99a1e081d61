"""The in-step gate in real Dagster runs: hold -> RetryRequested, then go once the trace clears."""

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster import AssetExecutionContext

from efficientai_assets.gate.step import enforce_heavy_gate
from resources.hardware.gate_settings import GateSettings
from resources.hardware.resource import HardwareResource

FAST: dict[str, Any] = {"retry_initial_seconds": 0.02, "retry_max_seconds": 0.05}


def replayed(trace: Path, **gate: Any) -> HardwareResource:
    """A resource replaying ``trace``, with the gate's settings and fast re-checks."""
    return HardwareResource(
        source="replay", replay_trace_path=str(trace), gate=GateSettings(**{**FAST, **gate})
    )


def write_trace(path: Path, *readings: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"start": 1_000_000, "readings": list(readings)}))
    return path


@dg.asset(pool="heavy")
def heavy_model(context: AssetExecutionContext, hardware: HardwareResource) -> dg.MaterializeResult:
    decision = enforce_heavy_gate(context, hardware)
    return dg.MaterializeResult(metadata=decision.to_metadata())


@dg.asset(pool="heavy")
def urgent_model(
    context: AssetExecutionContext, hardware: HardwareResource
) -> dg.MaterializeResult:
    decision = enforce_heavy_gate(context, hardware, priority="high")
    return dg.MaterializeResult(metadata=decision.to_metadata())


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    """One persistent test instance for the module: creating one costs seconds."""
    with dg.instance_for_test() as shared:
        yield shared


def retry_cause(event: dg.DagsterEvent) -> str:
    """The gate's message attached to a STEP_UP_FOR_RETRY event."""
    cause = event.step_retry_data.error.cause if event.step_retry_data.error else None
    assert cause is not None
    return cause.message


def events_of(
    result: dg.ExecuteInProcessResult, kind: dg.DagsterEventType
) -> list[dg.DagsterEvent]:
    return [e for e in result.all_events if e.event_type == kind]


def test_held_step_requests_retries_and_succeeds_once_the_trace_clears(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    trace = write_trace(
        tmp_path / "trace.json",
        {"at": 0, "thermal_state": "serious"},
        {"at": 60, "thermal_state": "serious"},
        {"at": 120, "thermal_state": "nominal"},  # cool-down starts
        {"at": 180, "thermal_state": "nominal"},  # 60 s of good readings: released
    )
    hw = replayed(trace, bad_readings_to_hold=2, cooldown_seconds=60)
    result = dg.materialize([heavy_model], resources={"hardware": hw}, instance=instance)
    assert result.success
    retries = events_of(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert len(retries) == 3
    # the reason travels with the retry event, visible in the UI
    causes = [retry_cause(e) for e in retries]
    assert "bad reading 1 of 2" in causes[0]
    assert "hold entered after 2 consecutive bad readings" in causes[1]
    assert "cooling down: 0s of 60s" in causes[2]
    assert all("Readings: thermal=" in c for c in causes)
    mat = instance.get_latest_materialization_event(dg.AssetKey("heavy_model"))
    assert mat is not None and mat.asset_materialization is not None
    metadata = {k: v.value for k, v in mat.asset_materialization.metadata.items()}
    assert metadata["gate.decision"] == "go"
    assert metadata["gate.held_seconds"] == 180.0
    assert metadata["gate.checks"] == 4
    # the decision names the machine it judged; an in-process step runs on no Celery worker
    assert metadata["gate.host"] == socket.gethostname() and metadata["gate.worker"] == "none"
    assert metadata["hardware.start.thermal_state"] == "nominal"
    # every hold is in the asset's history with its reason and readings
    observations = instance.fetch_observations(dg.AssetKey("heavy_model"), limit=10).records
    held = [
        o.asset_observation
        for o in observations
        if o.asset_observation and o.event_log_entry.run_id == result.run_id
    ]
    assert sorted(str(o.metadata["gate.state"].value) for o in held) == ["hold", "hold", "suspect"]
    assert all(o.metadata["gate.decision"].value == "hold" for o in held)
    assert all(
        o.metadata["hardware.start.thermal_state"].value in ("serious", "nominal") for o in held
    )
    # a finished step leaves no gate state behind
    assert not list(Path(instance.storage_directory()).glob("hardware-gate/*/*.json"))


def test_clear_machine_goes_on_the_first_check(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    trace = write_trace(tmp_path / "t.json", {"at": 0, "thermal_state": "nominal"})
    hw = replayed(trace)
    result = dg.materialize([heavy_model], resources={"hardware": hw}, instance=instance)
    assert result.success
    assert not events_of(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)


def test_critical_blocks_even_a_high_priority_step(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    trace = write_trace(
        tmp_path / "t.json",
        {"at": 0, "thermal_state": "critical"},
        {"at": 30, "thermal_state": "fair"},
    )
    hw = replayed(trace, cooldown_seconds=600)
    result = dg.materialize([urgent_model], resources={"hardware": hw}, instance=instance)
    assert result.success
    retries = events_of(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert len(retries) == 1, "held at critical, then high priority goes at fair mid cool-down"
    assert "nothing heavy runs at critical" in retry_cause(retries[0])


def test_step_fails_with_the_readings_after_the_maximum_wait(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    trace = write_trace(
        tmp_path / "t.json",
        *(
            {"at": 100 * i, "thermal_state": "serious", "psi_memory": {"some_avg10": 55.0}}
            for i in range(6)
        ),
    )
    hw = replayed(trace, bad_readings_to_hold=1, max_wait_seconds=250)
    result = dg.materialize(
        [heavy_model], resources={"hardware": hw}, instance=instance, raise_on_error=False
    )
    assert not result.success
    assert len(events_of(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)) == 3
    failure = events_of(result, dg.DagsterEventType.STEP_FAILURE)[0]
    assert failure.step_failure_data.error is not None
    message = failure.step_failure_data.error.message
    assert "held this step for 300s, longer than gate.max_wait_seconds=250s" in message
    assert "raise gate.max_wait_seconds" in message, "the message names the next action"
    assert "thermal=serious" in message and "psi.mem some=55.0%" in message
    assert not list(Path(instance.storage_directory()).glob("hardware-gate/*/*.json"))


def test_gate_refuses_an_unknown_priority(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    @dg.asset
    def odd(context: AssetExecutionContext, hardware: HardwareResource) -> None:
        enforce_heavy_gate(context, hardware, priority="urgent")  # type: ignore[arg-type]

    trace = write_trace(tmp_path / "t.json", {"at": 0, "thermal_state": "nominal"})
    hw = HardwareResource(source="replay", replay_trace_path=str(trace))
    with pytest.raises(ValueError, match="priority must be one of"):
        dg.materialize([odd], resources={"hardware": hw}, instance=instance)


def test_unwritable_state_dir_still_holds_and_then_goes(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    not_a_dir = tmp_path / "state"
    not_a_dir.write_text("a file where the state directory should be")
    trace = write_trace(
        tmp_path / "t.json",
        {"at": 0, "thermal_state": "critical"},
        {"at": 30, "thermal_state": "nominal"},
    )
    hw = replayed(trace, state_dir=str(not_a_dir), cooldown_seconds=0)
    result = dg.materialize([heavy_model], resources={"hardware": hw}, instance=instance)
    assert result.success
    assert len(events_of(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)) == 1
    logs = [r.user_message for r in instance.all_logs(result.run_id) if r.user_message]
    assert any("cannot keep state in" in m for m in logs)
