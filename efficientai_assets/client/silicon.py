"""The seed guide's hardware entry points, on the project's ``HardwareResource``:
``AppleSiliconDetector().detect()`` (what the machine is) and ``AppleSiliconMonitor().get_metrics()``
(how it is doing now), in the guide's terms.

Both read one ``HardwareSnapshot`` (``resources.hardware``) and translate it here, in one place
(``guide_metrics``), which ``MLOpsClient.collect_apple_silicon_metrics`` uses too. A reading the
machine does not give is the string ``"unknown"``: never a guess, never an error (in a Linux
container most Apple-specific readings are unknown, and the snapshot's ``notes`` say why).
"""

from __future__ import annotations

from typing import Any

from resources.hardware.resource import HardwareResource
from resources.hardware.types import HardwareSnapshot

UNKNOWN = "unknown"
GIB = 2**30

# The nine metrics the guide's "Metrics Collection" lists, in its order.
GUIDE_METRICS = (
    "chip_type",
    "unified_memory_gb",
    "mps_available",
    "ane_available",
    "performance_cores",
    "efficiency_cores",
    "thermal_state",
    "power_mode",
    "memory_pressure",
)
# What "Hardware Detection" reports: the machine, not its state.
DETECTED = (
    "chip_type",
    "is_apple_silicon",
    "unified_memory_gb",
    "memory_total_gb",
    "mps_available",
    "mlx_gpu_available",
    "ane_available",
    "performance_cores",
    "efficiency_cores",
    "logical_cpus",
    "platform",
    "machine",
    "source",
    "notes",
)


def _or_unknown(readings: dict[str, Any]) -> dict[str, Any]:
    return {key: UNKNOWN if value is None else value for key, value in readings.items()}


def is_apple_silicon(snap: HardwareSnapshot) -> bool | None:
    """True on macOS/arm64, False where the platform is known to be another, else None."""
    if snap.platform == UNKNOWN or snap.machine == UNKNOWN:
        return None
    return snap.platform == "darwin" and snap.machine in ("arm64", "aarch64")


def guide_metrics(snap: HardwareSnapshot) -> dict[str, Any]:
    """The snapshot in the guide's terms (its nine metrics first, then the rest we know)."""
    total_gb = round(snap.memory_total_bytes / GIB, 2) if snap.memory_total_bytes else None
    power_mode = {True: "low_power", False: "normal", None: None}[snap.low_power_mode]
    readings: dict[str, Any] = {
        "chip_type": snap.chip,
        "unified_memory_gb": total_gb if snap.unified_memory else None,
        "mps_available": snap.metal_available,
        "ane_available": snap.neural_engine,
        "performance_cores": snap.performance_cores,
        "efficiency_cores": snap.efficiency_cores,
        "thermal_state": snap.thermal_state,
        "power_mode": power_mode,
        "memory_pressure": snap.memory_pressure,
        "memory_total_gb": total_gb,
        "mlx_gpu_available": snap.mlx_gpu_available,
        "logical_cpus": snap.logical_cpus,
        "on_battery": snap.on_battery,
        "is_apple_silicon": is_apple_silicon(snap),
        "platform": snap.platform,
        "machine": snap.machine,
        "source": snap.source,
        "taken_at": snap.taken_at,
        "notes": list(snap.notes),
    }
    return _or_unknown(readings)


class AppleSiliconDetector:
    """What the machine is: chip, memory, accelerators, cores (``detect()``)."""

    def __init__(self, hardware: HardwareResource | None = None) -> None:
        self.hardware = hardware or HardwareResource()

    def detect(self) -> dict[str, Any]:
        """One reading, reduced to the machine's fixed facts; ``"unknown"`` where unread."""
        metrics = guide_metrics(self.hardware.snapshot())
        return {key: metrics[key] for key in DETECTED}


class AppleSiliconMonitor:
    """How the machine is doing now (``get_metrics()``): the guide's nine metrics and more."""

    def __init__(self, hardware: HardwareResource | None = None) -> None:
        self.hardware = hardware or HardwareResource()

    def get_metrics(self) -> dict[str, Any]:
        """A fresh reading: the nine metrics of the guide first, then memory, battery, platform,
        source, time and notes; ``"unknown"`` where the machine does not say."""
        return guide_metrics(self.hardware.snapshot())
