"""The real resource on the machine running the tests: honest readings, fast, never raising."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from resources.hardware.resource import HardwareResource
from resources.hardware.types import HardwareSnapshot

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="reads Linux procfs")


def test_default_resource_reads_this_machine_quickly_and_flat() -> None:
    hw = HardwareResource()
    started = time.perf_counter()
    snap = hw.snapshot()
    elapsed = time.perf_counter() - started
    assert isinstance(snap, HardwareSnapshot)
    assert elapsed < 5.0, f"a snapshot must be cheap enough for a sensor tick, took {elapsed:.2f}s"
    metadata = snap.to_metadata()
    assert all(isinstance(v, str | int | float | bool) for v in metadata.values())
    assert None not in metadata.values()
    json.dumps(metadata)  # JSON-safe
    tags = snap.to_tags()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
    assert tags["hardware.thermal_state"] == snap.thermal_state


@linux_only
@pytest.mark.skipif(not Path("/proc/pressure/cpu").exists(), reason="kernel without PSI")
def test_linux_machine_reports_psi_and_does_not_invent_a_thermal_state() -> None:
    snap = HardwareResource().snapshot()
    assert snap.platform == "linux"
    assert snap.psi_cpu is not None and snap.psi_cpu.some_avg10 is not None
    assert snap.psi_memory is not None
    assert snap.memory_total_bytes and snap.memory_total_bytes > 0
    has_sensor = any(Path("/sys/class/thermal").glob("thermal_zone*/temp")) or any(
        Path("/sys/class/hwmon").glob("hwmon*/temp*_input")
    )
    if not has_sensor:
        assert snap.thermal_state == "unknown"
        assert snap.to_metadata()["hardware.thermal_state"] == "unknown"
        assert "no thermal sensors" in str(snap.to_metadata()["hardware.notes"])


def test_training_recommendation_is_tagged_and_bounded_by_the_data() -> None:
    rec = HardwareResource().recommend_training(n_samples=100, n_features=64, hidden_units=128)
    assert rec.device in ("gpu", "cpu")
    assert 1 <= rec.batch_size <= 128
    assert rec.batch_size & (rec.batch_size - 1) == 0, "power of two"
    tags = rec.to_tags()
    assert tags["hardware.recommendation.batch_size"] == str(rec.batch_size)
    assert rec.reason and tags["hardware.recommendation.reason"] == rec.reason
