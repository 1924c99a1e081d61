"""The Linux reader: procfs and sysfs (or a fake tree of them), psutil, and the accelerator probes.

In containers there are usually no thermal zones and no hwmon, but PSI (``/proc/pressure``) and
the cgroup's own pressure files are there, so the reader takes pressure as seriously as heat.
"""

from __future__ import annotations

import os
import platform
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from resources.hardware.sources.accelerators import probe_mlx, probe_nvml
from resources.hardware.types import Clock, HardwareSnapshot, Pressure, ThermalState, worst_thermal

# A cgroup limit this large means "no limit" (v1 reports PAGE_COUNTER_MAX * page size).
_NO_LIMIT_BYTES = 1 << 60


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _read_int(path: Path) -> int | None:
    text = _read_text(path)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def parse_cpulist(text: str) -> set[int]:
    """Parse a kernel cpulist such as ``0-3,8,10-11``."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            cpus.update(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            return set()
    return cpus


def thermal_from_trips(temp_c: float, trips: Iterable[tuple[str, float]]) -> ThermalState | None:
    """Map a zone temperature onto the scale using its own trip points.

    active (fans) -> fair, passive (the kernel throttles) -> serious, hot/critical -> critical.
    None when the zone has no trip points to compare with.
    """
    rank = {"active": "fair", "passive": "serious", "hot": "critical", "critical": "critical"}
    reached: list[ThermalState] = ["nominal"]
    seen = False
    for kind, trip_c in trips:
        if kind not in rank:
            continue
        seen = True
        if temp_c >= trip_c:
            reached.append(rank[kind])  # type: ignore[arg-type]
    return worst_thermal(reached) if seen else None


def thermal_from_limits(
    temp_c: float, high_c: float | None, crit_c: float | None
) -> ThermalState | None:
    """Map an hwmon reading (psutil) onto the scale: >= critical -> critical, >= high -> serious."""
    if crit_c is None and high_c is None:
        return None
    if crit_c is not None and crit_c > 0 and temp_c >= crit_c:
        return "critical"
    if high_c is not None and high_c > 0 and temp_c >= high_c:
        return "serious"
    return "nominal"


class LinuxSource:
    """Reads procfs and sysfs (optionally a fake tree), psutil, NVML and MLX."""

    def __init__(
        self,
        proc_root: Path = Path("/proc"),
        sys_root: Path = Path("/sys"),
        *,
        use_psutil: bool = True,
        probe_accelerators: bool = True,
        clock: Clock = time.time,
    ) -> None:
        self.proc = proc_root
        self.sys = sys_root
        self.use_psutil = use_psutil
        self.probe_accelerators = probe_accelerators
        self.clock = clock

    def read(self) -> HardwareSnapshot:
        notes: list[str] = []
        values: dict[str, Any] = {"taken_at": self.clock(), "source": "linux"}
        values["platform"] = "linux"
        values["machine"] = platform.machine() or "unknown"
        values["chip"] = self._chip()
        total, available = self._meminfo()
        values["memory_total_bytes"] = total
        values["memory_available_bytes"] = available
        values["unified_memory"] = None
        values.update(self._cgroup(notes))
        values["logical_cpus"] = self._logical_cpus()
        values["performance_cores"], values["efficiency_cores"] = self._hybrid_cores()
        for name in ("cpu", "memory", "io"):
            reading = _read_text(self.proc / "pressure" / name)
            values[f"psi_{name}"] = Pressure.parse(reading) if reading else None
        if values["psi_cpu"] is None:
            notes.append("PSI not available (/proc/pressure)")
        state, source, temp = self._thermal(notes)
        values.update(thermal_state=state, thermal_source=source, cpu_temperature_c=temp)
        values["on_battery"], values["low_power_mode"] = self._power()
        values["memory_pressure"] = "unknown"
        if self.probe_accelerators:
            metal, gpu, note = probe_mlx()
            values["metal_available"], values["mlx_gpu_available"] = metal, gpu
            cuda, gpus, nvml_note = probe_nvml()
            values["cuda_available"], values["gpus"] = cuda, gpus
            notes.extend(n for n in (note, nvml_note) if n)
        else:
            notes.append("accelerators not probed")
        values["neural_engine"] = False if values["machine"] in ("x86_64", "AMD64") else None
        values["notes"] = tuple(notes)
        return HardwareSnapshot(**values)

    def _chip(self) -> str | None:
        text = _read_text(self.proc / "cpuinfo") or ""
        for key in ("model name", "Model", "Hardware", "cpu model"):
            match = re.search(rf"^{re.escape(key)}\s*:\s*(.+)$", text, re.MULTILINE)
            if match:
                return match.group(1).strip()
        return None

    def _meminfo(self) -> tuple[int | None, int | None]:
        text = _read_text(self.proc / "meminfo") or ""
        found: dict[str, int] = {}
        for key in ("MemTotal", "MemAvailable"):
            match = re.search(rf"^{key}:\s*(\d+)\s*kB", text, re.MULTILINE)
            if match:
                found[key] = int(match.group(1)) * 1024
        return found.get("MemTotal"), found.get("MemAvailable")

    def _cgroup(self, notes: list[str]) -> dict[str, Any]:
        """cgroup v2 pressure and memory limit; v1 memory limit as a fallback."""
        out: dict[str, Any] = {
            "cgroup_cpu_pressure": None,
            "cgroup_memory_pressure": None,
            "memory_limit_bytes": None,
        }
        membership = _read_text(self.proc / "self" / "cgroup") or ""
        v2_path: str | None = None
        v1_memory: str | None = None
        for line in membership.splitlines():
            hid, _, rest = line.partition(":")
            controllers, _, path = rest.partition(":")
            if hid == "0" and controllers == "":
                v2_path = path
            elif "memory" in controllers.split(","):
                v1_memory = path
        base = self.sys / "fs" / "cgroup"
        if v2_path is not None:
            mount = base if (base / "cgroup.controllers").exists() else base / "unified"
            directory = self._existing(mount, v2_path)
            if directory is not None:
                for name, key in (
                    ("memory", "cgroup_memory_pressure"),
                    ("cpu", "cgroup_cpu_pressure"),
                ):
                    text = _read_text(directory / f"{name}.pressure")
                    out[key] = Pressure.parse(text) if text else None
                limit_text = (_read_text(directory / "memory.max") or "").strip()
                if limit_text.isdigit() and int(limit_text) < _NO_LIMIT_BYTES:
                    out["memory_limit_bytes"] = int(limit_text)
        if out["memory_limit_bytes"] is None and v1_memory is not None:
            directory = self._existing(base / "memory", v1_memory)
            if directory is not None:
                limit = _read_int(directory / "memory.limit_in_bytes")
                if limit is not None and limit < _NO_LIMIT_BYTES:
                    out["memory_limit_bytes"] = limit
        if out["cgroup_memory_pressure"] is None:
            notes.append("cgroup v2 memory.pressure not available")
        return out

    @staticmethod
    def _existing(mount: Path, cgroup_path: str) -> Path | None:
        """The cgroup's directory, or the nearest ancestor visible in this mount namespace."""
        candidate = mount / cgroup_path.lstrip("/")
        while True:
            if candidate.is_dir():
                return candidate
            if candidate == mount or mount not in candidate.parents:
                return mount if mount.is_dir() else None
            candidate = candidate.parent

    def _logical_cpus(self) -> int | None:
        try:
            return len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            return os.cpu_count()

    def _hybrid_cores(self) -> tuple[int | None, int | None]:
        """Physical P- and E-cores on hybrid x86 (sysfs cpu_core / cpu_atom); else unknown."""
        counts: list[int | None] = []
        for pmu in ("cpu_core", "cpu_atom"):
            text = _read_text(self.sys / "devices" / pmu / "cpus")
            if text is None:
                return None, None
            cores: set[tuple[int | None, int]] = set()
            for cpu in parse_cpulist(text):
                topo = self.sys / "devices" / "system" / "cpu" / f"cpu{cpu}" / "topology"
                core_id = _read_int(topo / "core_id")
                # Without topology each logical CPU counts as its own core.
                cores.add(
                    (_read_int(topo / "physical_package_id"), cpu if core_id is None else core_id)
                )
            counts.append(len(cores))
        return counts[0], counts[1]

    def _thermal(self, notes: list[str]) -> tuple[ThermalState, str, float | None]:
        states: list[ThermalState] = []
        temps: list[float] = []
        sources: list[str] = []
        zones = sorted((self.sys / "class" / "thermal").glob("thermal_zone*"))
        for zone in zones:
            milli = _read_int(zone / "temp")
            if milli is None:
                continue
            temp_c = milli / 1000.0
            temps.append(temp_c)
            trips: list[tuple[str, float]] = []
            for trip_type in zone.glob("trip_point_*_type"):
                kind = (_read_text(trip_type) or "").strip()
                trip_milli = _read_int(zone / trip_type.name.replace("_type", "_temp"))
                if kind and trip_milli is not None and trip_milli > 0:
                    trips.append((kind, trip_milli / 1000.0))
            state = thermal_from_trips(temp_c, trips)
            if state is not None:
                states.append(state)
        if zones:
            sources.append("thermal_zones")
        if self.use_psutil:
            try:
                import psutil

                readings = psutil.sensors_temperatures()
            except Exception:
                readings = {}
            for entries in readings.values():
                for entry in entries:
                    temps.append(float(entry.current))
                    state = thermal_from_limits(float(entry.current), entry.high, entry.critical)
                    if state is not None:
                        states.append(state)
            if readings:
                sources.append("psutil")
        temp = max(temps) if temps else None
        state = worst_thermal(states)
        if state == "unknown":
            if temps:
                notes.append("temperatures found but no trip points or limits to judge them")
            else:
                notes.append("no thermal sensors (no /sys/class/thermal zones, no hwmon)")
        return state, "+".join(sources) if state != "unknown" else "none", temp

    def _power(self) -> tuple[bool | None, bool | None]:
        on_battery: bool | None = None
        supplies = self.sys / "class" / "power_supply"
        for supply in sorted(supplies.glob("*")):
            kind = (_read_text(supply / "type") or "").strip()
            if kind == "Mains":
                online = _read_int(supply / "online")
                if online is not None:
                    on_battery = not online if on_battery is None else on_battery and not online
            elif kind == "Battery" and on_battery is None:
                status = (_read_text(supply / "status") or "").strip()
                if status:
                    on_battery = status == "Discharging"
        profile = _read_text(self.sys / "firmware" / "acpi" / "platform_profile")
        low_power = None if profile is None else profile.strip() in ("low-power", "quiet", "cool")
        return on_battery, low_power
