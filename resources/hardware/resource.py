"""The machine as heavy work sees it: one snapshot type, read from pluggable sources.

Every reading is optional. A source that is absent, slow or unreadable leaves its fields as
"unknown" (``None`` in Python, the string ``"unknown"`` in metadata and tags) and adds a note
saying why; nothing here guesses a value or raises. The platform readers live in
``resources.hardware.sources`` so this module stays cheap to import.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

from dagster import ConfigurableResource
from pydantic import Field

if TYPE_CHECKING:
    from collections.abc import Callable

ThermalState = Literal["nominal", "fair", "serious", "critical", "unknown"]
MemoryPressure = Literal["normal", "warning", "critical", "unknown"]
Device = Literal["gpu", "cpu"]

THERMAL_SCALE: tuple[ThermalState, ...] = ("nominal", "fair", "serious", "critical")
"""Known thermal states, coolest first (``unknown`` is deliberately off the scale)."""

UNKNOWN = "unknown"
MetadataValue = str | int | float | bool


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


class ReplaySource:
    """Replays recorded readings, one per ``read()``; the last reading repeats forever.

    Time comes from the readings (``taken_at``), so a trace is also the clock. When
    ``position_path`` is given, the position survives across processes and fresh resource
    objects (a Dagster step retry or a sensor tick is a fresh call).
    """

    def __init__(
        self, readings: Sequence[HardwareSnapshot], position_path: Path | None = None
    ) -> None:
        if not readings:
            raise ValueError("a replay trace needs at least one reading")
        self._readings = list(readings)
        self._position_path = position_path
        self._position = 0

    @classmethod
    def from_trace_file(cls, path: str | os.PathLike[str]) -> ReplaySource:
        """Load a JSON trace: ``{"start": <epoch s>, "readings": [{"at": <s>, ...fields}]}``.

        Each reading is a partial snapshot; ``at`` is seconds after ``start`` (default 0).
        The position is kept next to the trace in ``<trace>.position``.
        """
        trace_path = Path(path)
        try:
            document = json.loads(trace_path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read hardware replay trace {trace_path}: {exc}") from exc
        return cls(
            parse_trace(document, str(trace_path)),
            trace_path.with_name(trace_path.name + ".position"),
        )

    def _load_position(self) -> int:
        if self._position_path is None:
            return self._position
        try:
            return int(self._position_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _store_position(self, position: int) -> None:
        if self._position_path is None:
            self._position = position
            return
        tmp = self._position_path.with_name(self._position_path.name + f".{os.getpid()}.tmp")
        tmp.write_text(str(position))
        os.replace(tmp, self._position_path)

    def read(self) -> HardwareSnapshot:
        position = self._load_position()
        reading = self._readings[min(position, len(self._readings) - 1)]
        self._store_position(position + 1)
        return reading


def parse_trace(document: Any, origin: str = "trace") -> list[HardwareSnapshot]:
    """Turn a trace document into snapshots; errors name the offending reading."""
    if not isinstance(document, Mapping) or not isinstance(document.get("readings"), list):
        raise ValueError(f"{origin}: a replay trace is an object with a 'readings' list")
    start = float(document.get("start", 0.0))
    snapshots = []
    for i, raw in enumerate(document["readings"]):
        if not isinstance(raw, Mapping):
            raise ValueError(f"{origin}: reading {i} is not an object")
        data = dict(raw)
        offset = data.pop("at", None)
        if offset is None and "taken_at" not in data:
            raise ValueError(f"{origin}: reading {i} needs 'at' (seconds after start)")
        if offset is not None:
            data["taken_at"] = start + float(offset)
        data.setdefault("source", "replay")
        if data.get("thermal_state", "unknown") != "unknown":
            data.setdefault("thermal_source", "replay")
        try:
            snapshots.append(HardwareSnapshot.from_dict(data))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{origin}: reading {i}: {exc}") from exc
    return snapshots


# ---- training recommendation ------------------------------------------------------------

_MIN_BATCH = 8
_CPU_BATCH_CAP = 256
_GPU_BATCH_CAP = 1024
_MEMORY_BUDGET_FRACTION = 0.25
_BYTES_PER_FLOAT = 4
# forward activations + their gradients + optimizer/temporary buffers per activation
_ACTIVATION_COPIES = 4


@dataclass(frozen=True)
class TrainingRecommendation:
    """Batch size and device the machine can carry, with the reason in words."""

    batch_size: int
    device: Device
    reason: str
    memory_budget_bytes: int | None = None
    inputs: dict[str, int] = field(default_factory=dict)

    def to_tags(self, prefix: str = "hardware.recommendation.") -> dict[str, str]:
        tags = {
            f"{prefix}batch_size": str(self.batch_size),
            f"{prefix}device": self.device,
            f"{prefix}reason": self.reason,
            f"{prefix}memory_budget_bytes": (
                UNKNOWN if self.memory_budget_bytes is None else str(self.memory_budget_bytes)
            ),
        }
        return tags

    def to_metadata(self, prefix: str = "hardware.recommendation.") -> dict[str, MetadataValue]:
        return {
            f"{prefix}batch_size": self.batch_size,
            f"{prefix}device": self.device,
            f"{prefix}reason": self.reason,
            f"{prefix}memory_budget_bytes": (
                UNKNOWN if self.memory_budget_bytes is None else self.memory_budget_bytes
            ),
        }


def recommend_training(
    snapshot: HardwareSnapshot, n_samples: int, n_features: int, hidden_units: int
) -> TrainingRecommendation:
    """Pick a device and a power-of-two batch size from the memory and accelerator seen.

    The batch is the largest power of two that (a) fits a quarter of usable memory for an
    MLP's activations and gradients, (b) stays under a cap that keeps small-core CPUs and
    GPUs busy without wasting steps, and (c) is not larger than the data set.
    """
    for name, value in (("n_samples", n_samples), ("n_features", n_features),
                        ("hidden_units", hidden_units)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    gpu = bool(snapshot.mlx_gpu_available)
    device: Device = "gpu" if gpu else "cpu"
    why_device = (
        "MLX sees a GPU"
        if gpu
        else "MLX sees no GPU"
        if snapshot.mlx_gpu_available is False
        else "MLX GPU availability unknown"
    )
    cap = _GPU_BATCH_CAP if gpu else _CPU_BATCH_CAP
    limits = [f"{device} cap {cap}"]
    per_sample = (n_features + 2 * hidden_units) * _BYTES_PER_FLOAT * _ACTIVATION_COPIES
    usable = snapshot.usable_memory_bytes
    budget = int(usable * _MEMORY_BUDGET_FRACTION) if usable else None
    if budget is not None:
        fits = max(1, budget // per_sample)
        cap = min(cap, fits)
        limits.append(f"memory budget {budget // 2**20} MiB fits {fits} samples")
    else:
        limits.append("usable memory unknown")
    data_cap = 1 << max(0, (n_samples - 1).bit_length())  # smallest power of two >= n_samples
    cap = min(cap, data_cap)
    limits.append(f"{n_samples} samples")
    batch = max(1, 1 << (max(cap, 1).bit_length() - 1))  # largest power of two <= cap
    batch = max(batch, min(_MIN_BATCH, data_cap))
    reason = f"device {device}: {why_device}; batch {batch}: " + ", ".join(limits)
    return TrainingRecommendation(
        batch_size=batch,
        device=device,
        reason=reason,
        memory_budget_bytes=budget,
        inputs={"n_samples": n_samples, "n_features": n_features, "hidden_units": hidden_units},
    )


# ---- the resource -----------------------------------------------------------------------

SourceName = Literal["auto", "macos", "linux", "replay"]
GateUnknownBehaviour = Literal["allow", "hold"]
GateThermalLimit = Literal["fair", "serious"]


class HardwareResource(ConfigurableResource):
    """Reads the machine for heavy assets, the thermal gate and training recommendations.

    Defaults read the real machine. ``source="replay"`` with ``replay_trace_path`` replays a
    recorded trace (tests, demos); ``macos_fixture_path`` feeds canned command outputs to the
    macOS reader; ``proc_root``/``sys_root`` point the Linux reader at a fake tree.
    The ``gate_*`` fields configure ``efficientai_assets.gate.policy`` (see docs/hardware-gate.md).
    """

    source: SourceName = Field(
        default="auto", description="auto picks macos on Darwin, linux elsewhere."
    )
    replay_trace_path: str | None = Field(
        default=None, description="JSON trace replayed one reading per snapshot (source=replay)."
    )
    macos_fixture_path: str | None = Field(
        default=None, description="JSON of canned macOS command outputs instead of running them."
    )
    proc_root: str = Field(default="/proc", description="procfs root for the Linux reader.")
    sys_root: str = Field(default="/sys", description="sysfs root for the Linux reader.")
    command_timeout_seconds: float = Field(
        default=1.0, gt=0, le=30, description="Timeout of each macOS command (run in parallel)."
    )
    probe_accelerators: bool = Field(
        default=True, description="Import mlx/pynvml to see Metal, MLX GPU and CUDA."
    )

    gate_bad_readings_to_hold: int = Field(
        default=3, ge=1, description="Consecutive bad readings that put the gate in hold."
    )
    gate_cooldown_seconds: float = Field(
        default=300.0, ge=0, description="Seconds of good readings needed to leave hold."
    )
    gate_hold_thermal_state: GateThermalLimit = Field(
        default="serious", description="Thermal state at or above which a reading is bad."
    )
    gate_unknown_behaviour: GateUnknownBehaviour = Field(
        default="allow", description="What an unknown thermal state does (recorded either way)."
    )
    gate_psi_memory_some_max: float = Field(
        default=20.0, ge=0, le=100, description="Memory PSI some avg10 (%) above which: bad."
    )
    gate_psi_memory_full_max: float = Field(
        default=5.0, ge=0, le=100, description="Memory PSI full avg10 (%) above which: bad."
    )
    gate_psi_cpu_some_max: float = Field(
        default=75.0, ge=0, le=100, description="CPU PSI some avg10 (%) above which: bad."
    )
    gate_gpu_slowdown_margin_c: float = Field(
        default=5.0, ge=0, description="A GPU this close (C) to its slowdown threshold: bad."
    )
    gate_hold_on_battery: bool = Field(default=False, description="Treat battery power as bad.")
    gate_hold_in_low_power_mode: bool = Field(
        default=False, description="Treat low-power mode as bad."
    )
    gate_retry_initial_seconds: float = Field(
        default=30.0, gt=0, description="First wait before the step re-checks the gate."
    )
    gate_retry_max_seconds: float = Field(
        default=600.0, gt=0, description="Longest single wait between re-checks."
    )
    gate_retry_jitter: float = Field(
        default=0.2, ge=0, lt=1, description="Relative jitter on each wait (0.2 = +/-20%)."
    )
    gate_max_wait_seconds: float = Field(
        default=7200.0, gt=0, description="Total time a step may be held before it fails."
    )
    gate_state_dir: str | None = Field(
        default=None,
        description="Where the in-step gate keeps its state; default: the Dagster instance's "
        "storage directory.",
    )

    def build_source(self) -> HardwareSource:
        """The source named by config; raises ValueError on inconsistent config."""
        from resources.hardware import sources as hardware_sources

        name = self.source
        if name == "auto":
            name = "macos" if sys.platform == "darwin" else "linux"
        if name == "replay":
            if not self.replay_trace_path:
                raise ValueError("source='replay' needs replay_trace_path")
            return ReplaySource.from_trace_file(self.replay_trace_path)
        if name == "macos":
            runner: hardware_sources.CommandRunner
            native: Callable[[], int | None] | None
            if self.macos_fixture_path:
                runner, native = hardware_sources.load_macos_fixture(self.macos_fixture_path)
            else:
                runner = hardware_sources.SubprocessRunner(self.command_timeout_seconds)
                native = hardware_sources.ns_process_info_thermal_state
            return hardware_sources.MacOSSource(
                runner,
                native_thermal=native,
                probe_accelerators=self.probe_accelerators and not self.macos_fixture_path,
            )
        real_tree = self.proc_root == "/proc" and self.sys_root == "/sys"
        return hardware_sources.LinuxSource(
            proc_root=Path(self.proc_root),
            sys_root=Path(self.sys_root),
            use_psutil=real_tree,
            probe_accelerators=self.probe_accelerators and real_tree,
        )

    def snapshot(self) -> HardwareSnapshot:
        """Read the machine now. Never raises: a broken source yields an unknown snapshot."""
        try:
            snap = self.build_source().read()
        except Exception as exc:  # a reader must never take a step or a sensor down
            return unknown_snapshot(f"hardware source {self.source!r} failed: {exc}")
        return snap

    def recommend_training(
        self, n_samples: int, n_features: int, hidden_units: int
    ) -> TrainingRecommendation:
        """Batch size and device for training on this machine now (see recommend_training)."""
        return recommend_training(self.snapshot(), n_samples, n_features, hidden_units)


def with_notes(snapshot: HardwareSnapshot, *notes: str) -> HardwareSnapshot:
    """The same snapshot with extra notes appended."""
    return replace(snapshot, notes=(*snapshot.notes, *notes))


__all__ = [
    "THERMAL_SCALE",
    "GpuReading",
    "HardwareResource",
    "HardwareSnapshot",
    "HardwareSource",
    "MemoryPressure",
    "Pressure",
    "ReplaySource",
    "ThermalState",
    "TrainingRecommendation",
    "parse_trace",
    "recommend_training",
    "thermal_rank",
    "unknown_snapshot",
    "worst_thermal",
]
