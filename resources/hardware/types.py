"""The machine as heavy work sees it: the snapshot type and the scale its readings are judged on.

Every reading is optional. A source that is absent, slow or unreadable leaves its fields as
"unknown" (``None`` in Python, the string ``"unknown"`` in metadata and tags) and adds a note
saying why; nothing here guesses a value or raises. These types are shared by the resource, its
platform readers and the gate's policy, so they live apart from all of them (no import cycle) and
import nothing beyond the standard library.
"""

from __future__ import annotations

import math
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, Protocol, get_args

ThermalState = Literal["nominal", "fair", "serious", "critical", "unknown"]
MemoryPressure = Literal["normal", "warning", "critical", "unknown"]
GateThermalLimit = Literal["fair", "serious"]
"""The thermal states the gate may be told to hold at (``critical`` always holds)."""
GateUnknownBehaviour = Literal["allow", "hold"]
"""What the gate does with a reading whose thermal state is unknown."""


THERMAL_SCALE: tuple[ThermalState, ...] = ("nominal", "fair", "serious", "critical")
"""Known thermal states, coolest first (``unknown`` is deliberately off the scale)."""

UNKNOWN = "unknown"
MetadataValue = str | int | float | bool
Clock = Callable[[], float]
"""Seconds since the epoch; readers take one so tests can pin the time of a reading."""


def thermal_rank(state: ThermalState) -> int:
    """Position on the thermal scale; -1 for unknown so it never compares as hot or cool."""
    return THERMAL_SCALE.index(state) if state in THERMAL_SCALE else -1


def worst_thermal(states: Sequence[ThermalState]) -> ThermalState:
    """The hottest known state among ``states``, or unknown when none is known."""
    known = [s for s in states if s in THERMAL_SCALE]
    return max(known, key=thermal_rank) if known else "unknown"


@dataclass(frozen=True)
class Pressure:
    """One pressure-stall-information file (``/proc/pressure/*`` or a cgroup's ``*.pressure``).

    Percentages of wall time in which some (or all) runnable tasks were stalled.
    """

    some_avg10: float | None = None
    some_avg60: float | None = None
    full_avg10: float | None = None
    full_avg60: float | None = None

    @classmethod
    def parse(cls, text: str) -> Pressure | None:
        """Parse PSI text; None when it has no recognisable line."""
        values: dict[str, float] = {}
        for line in text.splitlines():
            parts = line.split()
            if not parts or parts[0] not in ("some", "full"):
                continue
            for item in parts[1:]:
                key, _, raw = item.partition("=")
                if key in ("avg10", "avg60"):
                    try:
                        values[f"{parts[0]}_{key}"] = float(raw)
                    except ValueError:
                        continue
        return cls(**values) if values else None


@dataclass(frozen=True)
class GpuReading:
    """One GPU as NVML reports it; temperatures in degrees Celsius."""

    index: int
    name: str | None = None
    temperature_c: float | None = None
    slowdown_c: float | None = None
    shutdown_c: float | None = None
    memory_total_bytes: int | None = None

    @property
    def slowdown_margin_c(self) -> float | None:
        """Degrees left before the GPU throttles itself (negative when already past it)."""
        if self.temperature_c is None or self.slowdown_c is None:
            return None
        return self.slowdown_c - self.temperature_c


_PRESSURE_FIELDS = (
    "psi_cpu",
    "psi_memory",
    "psi_io",
    "cgroup_cpu_pressure",
    "cgroup_memory_pressure",
)


@dataclass(frozen=True)
class HardwareSnapshot:
    """What the machine reads at one moment. ``None`` means unknown, never zero or false."""

    taken_at: float
    platform: str = UNKNOWN
    machine: str = UNKNOWN
    chip: str | None = None
    memory_total_bytes: int | None = None
    memory_available_bytes: int | None = None
    memory_limit_bytes: int | None = None
    unified_memory: bool | None = None
    logical_cpus: int | None = None
    performance_cores: int | None = None
    efficiency_cores: int | None = None
    metal_available: bool | None = None
    mlx_gpu_available: bool | None = None
    neural_engine: bool | None = None
    cuda_available: bool | None = None
    gpus: tuple[GpuReading, ...] = ()
    thermal_state: ThermalState = "unknown"
    thermal_source: str = "none"
    cpu_temperature_c: float | None = None
    cpu_speed_limit_pct: int | None = None
    low_power_mode: bool | None = None
    on_battery: bool | None = None
    memory_pressure: MemoryPressure = "unknown"
    psi_cpu: Pressure | None = None
    psi_memory: Pressure | None = None
    psi_io: Pressure | None = None
    cgroup_cpu_pressure: Pressure | None = None
    cgroup_memory_pressure: Pressure | None = None
    source: str = UNKNOWN
    notes: tuple[str, ...] = ()

    # ---- derived readings -------------------------------------------------------------
    @property
    def usable_memory_bytes(self) -> int | None:
        """Memory this process may use: available memory, capped by a cgroup limit."""
        candidates = [v for v in (self.memory_available_bytes, self.memory_limit_bytes) if v]
        if not candidates and self.memory_total_bytes:
            return self.memory_total_bytes
        return min(candidates) if candidates else None

    @property
    def gpu_slowdown_margin_c(self) -> float | None:
        """The smallest margin to a slowdown threshold over all GPUs, or None."""
        margins = [g.slowdown_margin_c for g in self.gpus if g.slowdown_margin_c is not None]
        return min(margins) if margins else None

    # ---- serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe nested dict; inverse of :meth:`from_dict`."""
        data = asdict(self)
        data["gpus"] = [asdict(g) for g in self.gpus]
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HardwareSnapshot:
        """Build from a (possibly partial) dict, as written in replay traces and cursors.

        Unknown keys are refused so a typo in a trace cannot silently read as "unknown".
        """
        names = {f.name for f in fields(cls)}
        extra = sorted(set(data) - names)
        if extra:
            raise ValueError(f"unknown hardware snapshot field(s): {', '.join(extra)}")
        if "taken_at" not in data:
            raise ValueError("a hardware snapshot needs 'taken_at' (seconds since the epoch)")
        kwargs: dict[str, Any] = dict(data)
        for name in _PRESSURE_FIELDS:
            if kwargs.get(name) is not None:
                kwargs[name] = Pressure(**kwargs[name])
        kwargs["gpus"] = tuple(GpuReading(**g) for g in kwargs.get("gpus") or ())
        kwargs["notes"] = tuple(kwargs.get("notes") or ())
        if kwargs.get("thermal_state", "unknown") not in get_args(ThermalState):
            raise ValueError(f"thermal_state must be one of {get_args(ThermalState)}")
        if kwargs.get("memory_pressure", "unknown") not in get_args(MemoryPressure):
            raise ValueError(f"memory_pressure must be one of {get_args(MemoryPressure)}")
        return cls(**kwargs)

    def to_metadata(self, prefix: str = "hardware.") -> dict[str, MetadataValue]:
        """Flat, JSON-safe readings for Dagster metadata; ``"unknown"`` stands for missing."""
        out: dict[str, MetadataValue] = {}

        def put(key: str, value: object) -> None:
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                out[prefix + key] = UNKNOWN
            elif isinstance(value, bool | int | str):
                out[prefix + key] = value
            elif isinstance(value, float):
                out[prefix + key] = round(value, 3)
            else:
                out[prefix + key] = str(value)

        for name in (
            "platform", "machine", "chip", "memory_total_bytes", "memory_available_bytes",
            "memory_limit_bytes", "unified_memory", "logical_cpus", "performance_cores",
            "efficiency_cores", "metal_available", "mlx_gpu_available", "neural_engine",
            "cuda_available", "thermal_state", "thermal_source", "cpu_temperature_c",
            "cpu_speed_limit_pct", "low_power_mode", "on_battery", "memory_pressure", "source",
        ):  # fmt: skip
            put(name, getattr(self, name))
        put("taken_at", self.taken_at)
        for name in _PRESSURE_FIELDS:
            reading: Pressure | None = getattr(self, name)
            for attr in ("some_avg10", "some_avg60", "full_avg10", "full_avg60"):
                put(f"{name}.{attr}", getattr(reading, attr) if reading else None)
        put("gpu_count", len(self.gpus) if self.cuda_available is not None else None)
        for gpu in self.gpus:
            for attr in ("name", "temperature_c", "slowdown_c", "shutdown_c", "memory_total_bytes"):
                put(f"gpu{gpu.index}.{attr}", getattr(gpu, attr))
        put("notes", "; ".join(self.notes) if self.notes else "")
        return out

    def to_tags(self, prefix: str = "hardware.") -> dict[str, str]:
        """Flat str -> str for MLflow run tags (MLflow tag values are strings)."""
        return {k: _tag_value(v) for k, v in self.to_metadata(prefix).items()}

    def summary(self) -> str:
        """One line of the readings that matter to the gate, for logs and skip reasons."""
        parts = [f"thermal={self.thermal_state} ({self.thermal_source})"]
        if self.cpu_temperature_c is not None:
            parts.append(f"cpu={self.cpu_temperature_c:.0f}C")
        parts.append(f"memory_pressure={self.memory_pressure}")
        for label, reading in (
            ("psi.cpu", self.psi_cpu),
            ("psi.mem", self.psi_memory),
            ("cgroup.mem", self.cgroup_memory_pressure),
        ):
            if reading is not None:
                parts.append(
                    f"{label} some={_fmt(reading.some_avg10)}% full={_fmt(reading.full_avg10)}%"
                )
        margin = self.gpu_slowdown_margin_c
        if margin is not None:
            parts.append(f"gpu slowdown margin={margin:.0f}C")
        if self.low_power_mode is not None:
            parts.append(f"low_power={self.low_power_mode}")
        if self.on_battery is not None:
            parts.append(f"on_battery={self.on_battery}")
        return ", ".join(parts)


def _fmt(value: float | None) -> str:
    return UNKNOWN if value is None else f"{value:.1f}"


def _tag_value(value: MetadataValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def unknown_snapshot(note: str, taken_at: float | None = None) -> HardwareSnapshot:
    """A snapshot that knows nothing except why."""
    return HardwareSnapshot(
        taken_at=time.time() if taken_at is None else taken_at,
        platform=sys.platform,
        machine=platform.machine() or UNKNOWN,
        notes=(note,),
    )


class HardwareSource(Protocol):
    """Anything that can read the machine once. Implementations must not raise."""

    def read(self) -> HardwareSnapshot: ...
