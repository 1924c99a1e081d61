"""Platform readers on recorded outputs: canned macOS commands and fake Linux trees."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from resources.hardware.recommend import recommend_training
from resources.hardware.resource import HardwareResource
from resources.hardware.sources.linux import parse_cpulist, thermal_from_trips
from resources.hardware.sources.macos import SubprocessRunner
from resources.hardware.types import HardwareSnapshot, Pressure

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hardware"


def macos(scenario: str) -> HardwareSnapshot:
    path = FIXTURES / "macos" / f"{scenario}.json"
    return HardwareResource(source="macos", macos_fixture_path=str(path)).snapshot()


def linux_tree(name: str) -> HardwareResource:
    root = FIXTURES / "linux" / name
    return HardwareResource(
        source="linux", proc_root=str(root / "proc"), sys_root=str(root / "sys")
    )


def test_macos_nominal_reads_chip_cores_memory_and_power() -> None:
    snap = macos("nominal")
    assert snap.platform == "darwin" and snap.machine == "arm64"
    assert snap.chip == "Apple M3 Pro"
    assert snap.memory_total_bytes == 36 * 2**30
    assert (snap.performance_cores, snap.efficiency_cores, snap.logical_cpus) == (6, 6, 12)
    assert snap.unified_memory is True
    assert snap.thermal_state == "nominal"
    assert snap.thermal_source == "NSProcessInfo+thermalpressurelevel"
    assert snap.memory_pressure == "normal"
    assert snap.low_power_mode is False and snap.on_battery is False
    assert snap.neural_engine is None, "not detectable through a public interface"


def test_macos_pressure_level_overrides_a_nominal_thermal_state() -> None:
    snap = macos("serious")
    assert snap.thermal_state == "serious"


def test_macos_critical_trapping_level_reads_critical() -> None:
    assert macos("critical").thermal_state == "critical"


def test_macos_low_power_mode_and_battery() -> None:
    snap = macos("low_power")
    assert snap.low_power_mode is True
    assert snap.on_battery is True
    assert snap.thermal_state == "fair"


def test_macos_memory_warning_level() -> None:
    snap = macos("memory_warning")
    assert snap.memory_pressure == "warning"
    assert snap.thermal_state == "fair"


def test_intel_mac_cpu_speed_limit_reads_as_throttled() -> None:
    snap = macos("intel_throttled")
    assert snap.machine == "x86_64" and snap.unified_memory is False
    assert snap.cpu_speed_limit_pct == 73
    assert snap.thermal_state == "serious"
    assert snap.thermal_source == "pmset_therm"
    assert snap.performance_cores is None, "no perf levels on Intel: unknown, not zero"


def test_macos_with_no_command_answering_is_all_unknown_with_reasons() -> None:
    snap = macos("nothing_answers")
    assert snap.thermal_state == "unknown" and snap.memory_pressure == "unknown"
    assert snap.chip is None and snap.memory_total_bytes is None
    metadata = snap.to_metadata()
    assert metadata["hardware.chip"] == "unknown"
    assert "sysctl: not available" in str(metadata["hardware.notes"])


def test_slow_command_is_cut_off_by_its_timeout() -> None:
    runner = SubprocessRunner(
        0.2, commands={"slow": (sys.executable, "-c", "import time; time.sleep(5)")}
    )
    started = time.perf_counter()
    output, note = runner.run("slow")
    assert time.perf_counter() - started < 2.0
    assert output is None and note is not None and "timed out" in note


def test_missing_command_reads_as_absent_not_a_crash() -> None:
    runner = SubprocessRunner(1.0, commands={"gone": ("/nonexistent/pmset", "-g")})
    output, note = runner.run("gone")
    assert output is None and note


def test_hot_linux_laptop_tree() -> None:
    snap = linux_tree("laptop_hot").snapshot()
    assert snap.chip == "12th Gen Intel(R) Core(TM) i7-1260P"
    assert snap.memory_total_bytes == 32646368 * 1024
    assert snap.memory_limit_bytes == 8 * 2**30
    assert snap.usable_memory_bytes == 8 * 2**30
    # zone0 is past its passive trip (the kernel throttles), zone1 is below its fan trip
    assert snap.thermal_state == "serious"
    assert snap.cpu_temperature_c == 92.0
    assert snap.cgroup_memory_pressure == Pressure(31.0, 15.5, 7.5, 3.75)
    assert snap.psi_cpu is not None and snap.psi_cpu.some_avg10 == 12.5
    assert snap.on_battery is True and snap.low_power_mode is True
    assert (snap.performance_cores, snap.efficiency_cores) == (2, 4)


def test_container_tree_has_psi_and_a_v1_limit_but_no_thermal_state() -> None:
    snap = linux_tree("container").snapshot()
    assert snap.thermal_state == "unknown"
    assert snap.thermal_source == "none"
    assert any("no thermal sensors" in n for n in snap.notes)
    assert snap.memory_limit_bytes == 4 * 2**30
    assert snap.cgroup_memory_pressure == Pressure(0.0, 0.0, 0.0, 0.0)
    assert snap.on_battery is None and snap.low_power_mode is None
    assert (snap.performance_cores, snap.efficiency_cores) == (None, None)


def test_thermal_zone_trip_mapping() -> None:
    trips = [("active", 60.0), ("passive", 90.0), ("critical", 105.0)]
    assert thermal_from_trips(50.0, trips) == "nominal"
    assert thermal_from_trips(65.0, trips) == "fair"
    assert thermal_from_trips(95.0, trips) == "serious"
    assert thermal_from_trips(106.0, trips) == "critical"
    assert thermal_from_trips(106.0, []) is None


def test_cpulist_parsing() -> None:
    assert parse_cpulist("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    assert parse_cpulist("") == set()


def test_broken_replay_trace_yields_unknown_snapshot_not_an_exception(tmp_path: Path) -> None:
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps({"readings": [{"at": 0, "thermal_sate": "serious"}]}))
    snap = HardwareResource(source="replay", replay_trace_path=str(trace)).snapshot()
    assert snap.thermal_state == "unknown"
    assert "thermal_sate" in snap.notes[0], "the note names the typo"


def test_replay_position_survives_fresh_resources(tmp_path: Path) -> None:
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps({"start": 100, "readings": [
        {"at": 0, "thermal_state": "fair"}, {"at": 5, "thermal_state": "critical"},
    ]}))  # fmt: skip
    states = [
        HardwareResource(source="replay", replay_trace_path=str(trace)).snapshot() for _ in range(3)
    ]
    assert [s.thermal_state for s in states] == ["fair", "critical", "critical"]
    assert [s.taken_at for s in states] == [100.0, 105.0, 105.0]


def test_snapshot_dict_round_trip() -> None:
    snap = macos("memory_warning")
    assert HardwareSnapshot.from_dict(snap.to_dict()) == snap


def test_recommendation_is_limited_by_memory_and_refuses_bad_input() -> None:
    small = HardwareSnapshot(taken_at=0, memory_available_bytes=64 * 2**20, mlx_gpu_available=False)
    rec = recommend_training(small, n_samples=100_000, n_features=10_000, hidden_units=4096)
    # 16 MiB budget / ((10000 + 8192) * 4 B * 4) per sample = 57 samples -> 32
    assert rec.batch_size == 32 and rec.device == "cpu"
    assert "memory budget 16 MiB" in rec.reason
    gpu = HardwareSnapshot(taken_at=0, memory_available_bytes=64 * 2**30, mlx_gpu_available=True)
    assert recommend_training(gpu, 100_000, 64, 128).batch_size == 1024
    with pytest.raises(ValueError, match="n_features must be a positive integer"):
        recommend_training(small, 10, 0, 8)
