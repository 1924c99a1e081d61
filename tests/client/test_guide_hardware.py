"""The seed guide's Apple Silicon Optimization snippets as written (import path aside): Hardware
Detection, Metrics Collection and Thermal-Aware Scheduling, on this machine's real readings and on
replayed Apple readings; the scheduler's decisions are the project's gate policy's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from efficientai_assets.client import MLOpsClientError
from efficientai_assets.gate.policy import GatePolicy, GateState, evaluate
from resources.hardware.resource import HardwareResource

M2_PRO = {
    "chip": "Apple M2 Pro",
    "platform": "darwin",
    "machine": "arm64",
    "memory_total_bytes": 32 * 2**30,
    "unified_memory": True,
    "metal_available": True,
    "performance_cores": 8,
    "efficiency_cores": 4,
    "low_power_mode": False,
    "memory_pressure": "normal",
}


def replayed(tmp_path: Path, *states: str, **fields: Any) -> HardwareResource:
    """A hardware resource replaying an M2 Pro at the given thermal states, a minute apart."""
    trace = tmp_path / f"trace-{'-'.join(states)}.json"
    readings = [
        {"at": 60 * i, **M2_PRO, "thermal_state": state, **fields} for i, state in enumerate(states)
    ]
    trace.write_text(json.dumps({"start": 1_700_000_000, "readings": readings}))
    return HardwareResource(source="replay", replay_trace_path=str(trace))


def test_hardware_detection_as_written_reports_this_machine_and_unknown_stays_unknown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # -- the guide, Hardware Detection ----------------------------------------------------------
    from efficientai_assets.client.silicon import AppleSiliconDetector

    detector = AppleSiliconDetector()
    info = detector.detect()

    print(f"Chip: {info['chip_type']}")
    print(f"Memory: {info['unified_memory_gb']} GB")
    print(f"MPS Available: {info['mps_available']}")
    print(f"ANE Available: {info['ane_available']}")
    # -----------------------------------------------------------------------------------------

    snap = HardwareResource().snapshot()
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"Chip: {snap.chip or 'unknown'}"
    assert None not in info.values()
    json.dumps(info)
    if snap.platform != "darwin":  # this machine is no Mac: nothing Apple-specific is guessed
        assert info["is_apple_silicon"] is False
        assert info["unified_memory_gb"] == "unknown" and printed[1] == "Memory: unknown GB"
    unknown = "unknown"
    assert info["ane_available"] == (unknown if snap.neural_engine is None else snap.neural_engine)
    assert info["mps_available"] == (
        unknown if snap.metal_available is None else snap.metal_available
    )


def test_hardware_detection_of_a_replayed_apple_machine(tmp_path: Path) -> None:
    from efficientai_assets.client.silicon import AppleSiliconDetector

    info = AppleSiliconDetector(replayed(tmp_path, "nominal")).detect()
    assert info["chip_type"] == "Apple M2 Pro" and info["is_apple_silicon"] is True
    assert (info["unified_memory_gb"], info["mps_available"]) == (32.0, True)
    assert (info["performance_cores"], info["efficiency_cores"]) == (8, 4)
    assert info["ane_available"] == "unknown"  # the reading does not say: never a guess


def test_metrics_collection_as_written_has_the_nine_metrics(tmp_path: Path) -> None:
    # -- the guide, Metrics Collection ----------------------------------------------------------
    from efficientai_assets.client.silicon import AppleSiliconMonitor

    monitor = AppleSiliconMonitor()
    metrics = monitor.get_metrics()
    # -----------------------------------------------------------------------------------------

    nine = [
        "chip_type", "unified_memory_gb", "mps_available", "ane_available", "performance_cores",
        "efficiency_cores", "thermal_state", "power_mode", "memory_pressure",
    ]  # fmt: skip
    assert list(metrics)[:9] == nine
    assert None not in metrics.values()
    assert metrics["thermal_state"] in ("nominal", "fair", "serious", "critical", "unknown")
    json.dumps(metrics)
    apple = AppleSiliconMonitor(replayed(tmp_path, "fair", low_power_mode=True)).get_metrics()
    assert {key: apple[key] for key in nine} == {
        "chip_type": "Apple M2 Pro", "unified_memory_gb": 32.0, "mps_available": True,
        "ane_available": "unknown", "performance_cores": 8, "efficiency_cores": 4,
        "thermal_state": "fair", "power_mode": "low_power", "memory_pressure": "normal",
    }  # fmt: skip


def test_thermal_aware_scheduling_as_written_is_the_gate_policy_on_a_real_reading(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # -- the guide, Thermal-Aware Scheduling ----------------------------------------------------
    from efficientai_assets.client.thermal_scheduler import ThermalAwareScheduler

    scheduler = ThermalAwareScheduler()

    # Check if task should run
    decision = scheduler.should_run_task(
        task_type="training", priority="high", estimated_duration_minutes=60
    )

    if decision.should_run:
        # Run task
        pass
    else:
        # Wait or reschedule
        print(f"Reason: {decision.reason}")
    # -----------------------------------------------------------------------------------------

    assert decision.snapshot is not None
    expected = evaluate(
        GatePolicy.from_resource(HardwareResource()), GateState(), decision.snapshot, "high"
    )
    assert decision.should_run == (expected.verdict == "go")
    assert decision.reason.endswith(expected.reason)
    assert decision.thermal_state == decision.snapshot.thermal_state
    if decision.thermal_state == "unknown":  # no thermal source here: said so, not guessed
        assert decision.level in ("unknown", "bad", "critical")
        if decision.level == "unknown":
            assert "thermal state unknown" in decision.reason
    if not decision.should_run:
        assert capsys.readouterr().out.strip() == f"Reason: {decision.reason}"
        assert decision.retry_after_seconds is not None


def test_the_scheduler_holds_hot_machines_with_the_gates_hysteresis(tmp_path: Path) -> None:
    from efficientai_assets.client.thermal_scheduler import ThermalAwareScheduler

    critical = ThermalAwareScheduler(replayed(tmp_path, "critical"))
    decision = critical.should_run_task("training", priority="high", estimated_duration_minutes=5)
    assert decision.should_run is False and decision.level == "critical"
    assert "critical" in decision.reason and decision.retry_after_seconds is not None

    # serious, three times: waiting, waiting, then hold; a good reading still cools down.
    scheduler = ThermalAwareScheduler(replayed(tmp_path, "serious", "serious", "serious", "fair"))
    seen = [scheduler.should_run_task("fine_tuning", priority="normal") for _ in range(4)]
    assert [d.should_run for d in seen] == [False, False, False, False]
    assert "bad reading 1 of 3" in seen[0].reason
    assert "hold entered after 3 consecutive bad readings" in seen[2].reason
    assert "cooling down" in seen[3].reason
    assert scheduler.state.phase == "hold"

    fair = ThermalAwareScheduler(replayed(tmp_path, "fair"))
    go = fair.should_run_task("inference", priority="low", estimated_duration_minutes=1)
    assert go.should_run is True and go.retry_after_seconds is None
    assert go.reason == "run inference, about 1 min: readings within limits"
    assert go.to_dict()["thermal_state"] == "fair"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"task_type": "", "priority": "high"}, "task_type"),
        ({"task_type": "training", "priority": "urgent"}, "priority must be one of"),
        ({"task_type": "training", "estimated_duration_minutes": -5}, "positive number"),
        ({"task_type": "training", "estimated_duration_minutes": "60"}, "positive number"),
    ],
)
def test_the_scheduler_refuses_arguments_that_cannot_be_right(
    tmp_path: Path, arguments: dict[str, Any], message: str
) -> None:
    from efficientai_assets.client.thermal_scheduler import ThermalAwareScheduler

    scheduler = ThermalAwareScheduler(replayed(tmp_path, "nominal"))
    with pytest.raises(MLOpsClientError, match=message) as raised:
        scheduler.should_run_task(**arguments)
    assert isinstance(raised.value, ValueError)
