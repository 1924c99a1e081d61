"""Platform readers behind ``HardwareResource``: Linux procfs/sysfs, macOS commands, NVML, MLX.

Each reader collects what it can and notes what it could not; none of them raises, runs
anything with sudo, or waits on a command without a timeout.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from resources.hardware.resource import (
    GpuReading,
    HardwareSnapshot,
    MemoryPressure,
    Pressure,
    ThermalState,
    worst_thermal,
)

Clock = Callable[[], float]

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


# ---- accelerators (shared by both platforms) --------------------------------------------


def probe_mlx() -> tuple[bool | None, bool | None, str | None]:
    """(metal available, MLX GPU available, note). Imported lazily: mlx is optional."""
    try:
        import mlx.core as mx
    except Exception as exc:  # ImportError, or a broken native library
        return None, None, f"mlx not importable ({type(exc).__name__})"
    metal: bool | None
    try:
        metal = bool(mx.metal.is_available())
    except Exception:
        metal = None
    try:
        gpu: bool | None = bool(mx.is_available(mx.gpu))
    except Exception:
        gpu = None
    return metal, gpu, None


def probe_nvml() -> tuple[bool | None, tuple[GpuReading, ...], str | None]:
    """(CUDA GPU present, readings, note) via NVML; unknown when pynvml is not installed."""
    try:
        import pynvml
    except Exception:
        return None, (), "pynvml not installed: CUDA unknown"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        # No driver library means no NVIDIA GPU is usable by this process.
        return False, (), f"NVML unavailable: {exc}"
    except Exception as exc:
        return None, (), f"NVML failed: {exc}"
    try:
        count = pynvml.nvmlDeviceGetCount()
        gpus = tuple(_nvml_device(pynvml, i) for i in range(count))
        return count > 0, gpus, None
    except Exception as exc:
        return None, (), f"NVML read failed: {exc}"
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def _nvml_device(pynvml: Any, index: int) -> GpuReading:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)

    def attempt(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception:
            return None

    name = attempt(lambda: pynvml.nvmlDeviceGetName(handle))
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    memory = attempt(lambda: pynvml.nvmlDeviceGetMemoryInfo(handle))
    temp = attempt(lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))
    slowdown = attempt(
        lambda: pynvml.nvmlDeviceGetTemperatureThreshold(
            handle, pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
        )
    )
    shutdown = attempt(
        lambda: pynvml.nvmlDeviceGetTemperatureThreshold(
            handle, pynvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN
        )
    )
    return GpuReading(
        index=index,
        name=name,
        temperature_c=float(temp) if temp is not None else None,
        slowdown_c=float(slowdown) if slowdown is not None else None,
        shutdown_c=float(shutdown) if shutdown is not None else None,
        memory_total_bytes=int(memory.total) if memory is not None else None,
    )


# ---- Linux --------------------------------------------------------------------------------


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


# ---- macOS -------------------------------------------------------------------------------

SYSCTL_KEYS = (
    "machdep.cpu.brand_string",
    "hw.memsize",
    "hw.logicalcpu",
    "hw.nperflevels",
    "hw.perflevel0.physicalcpu",
    "hw.perflevel1.physicalcpu",
    "hw.optional.arm64",
    "kern.memorystatus_vm_pressure_level",
)
NOTIFY_THERMAL = "notifyutil -g com.apple.system.thermalpressurelevel"
MACOS_COMMANDS: dict[str, tuple[str, ...]] = {
    "sysctl": ("/usr/sbin/sysctl", *SYSCTL_KEYS),
    "pmset -g": ("/usr/bin/pmset", "-g"),
    "pmset -g batt": ("/usr/bin/pmset", "-g", "batt"),
    "pmset -g therm": ("/usr/bin/pmset", "-g", "therm"),
    NOTIFY_THERMAL: (
        "/usr/bin/notifyutil",
        "-g",
        "com.apple.system.thermalpressurelevel",
    ),
}
"""Every command the macOS reader runs, by the name used in fixture files."""

# NSProcessInfo.thermalState: 0 nominal, 1 fair, 2 serious, 3 critical.
_NS_THERMAL: tuple[ThermalState, ...] = ("nominal", "fair", "serious", "critical")
# com.apple.system.thermalpressurelevel: nominal, moderate, heavy, trapping, sleeping.
_PRESSURE_LEVEL: tuple[ThermalState, ...] = ("nominal", "fair", "serious", "critical", "critical")
# kern.memorystatus_vm_pressure_level: 1 normal, 2 warning, 4 critical.
_VM_PRESSURE: dict[int, MemoryPressure] = {1: "normal", 2: "warning", 4: "critical"}


class CommandRunner(Protocol):
    """Runs one named macOS command; returns stdout, or None (and why) when it could not."""

    def run(self, name: str) -> tuple[str | None, str | None]: ...


class SubprocessRunner:
    """Runs the real commands: absolute paths, C locale, a timeout each, never a shell."""

    def __init__(
        self,
        timeout_seconds: float,
        commands: Mapping[str, tuple[str, ...]] = MACOS_COMMANDS,
    ) -> None:
        self.timeout = timeout_seconds
        self.commands = commands

    def run(self, name: str) -> tuple[str | None, str | None]:
        argv = self.commands[name]
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
                env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            )
        except subprocess.TimeoutExpired:
            return None, f"{name}: timed out after {self.timeout:g}s"
        except OSError as exc:
            return None, f"{name}: {exc.strerror or exc}"
        # sysctl exits non-zero when one key is missing but still prints the others.
        if done.stdout.strip():
            return done.stdout, None
        return None, f"{name}: exit {done.returncode}, no output"


class FixtureRunner:
    """Canned outputs by command name; a missing or null entry reads as an absent command."""

    def __init__(self, outputs: Mapping[str, str | None]) -> None:
        unknown = sorted(set(outputs) - set(MACOS_COMMANDS))
        if unknown:
            raise ValueError(f"unknown macOS command name(s) in fixture: {', '.join(unknown)}")
        self.outputs = dict(outputs)

    def run(self, name: str) -> tuple[str | None, str | None]:
        output = self.outputs.get(name)
        return (output, None) if output is not None else (None, f"{name}: not available")


def load_macos_fixture(
    path: str | os.PathLike[str],
) -> tuple[FixtureRunner, Callable[[], int | None]]:
    """Load ``{"commands": {name: output}, "ns_thermal_state": 0-3 | null}``."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read macOS fixture {path}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("commands"), dict):
        raise ValueError(f"{path}: a macOS fixture is an object with a 'commands' object")
    native = document.get("ns_thermal_state")
    return FixtureRunner(document["commands"]), lambda: native


def ns_process_info_thermal_state() -> int | None:
    """``[[NSProcessInfo processInfo] thermalState]`` through the Objective-C runtime (ctypes).

    In-process and fast; None off macOS or on any failure.
    """
    if sys.platform != "darwin":
        return None
    try:
        import ctypes
        import ctypes.util

        objc_path = ctypes.util.find_library("objc")
        if objc_path is None:
            return None
        objc = ctypes.cdll.LoadLibrary(objc_path)
        ctypes.cdll.LoadLibrary("/System/Library/Frameworks/Foundation.framework/Foundation")
        objc.objc_getClass.restype = ctypes.c_void_p
        objc.objc_getClass.argtypes = [ctypes.c_char_p]
        objc.sel_registerName.restype = ctypes.c_void_p
        objc.sel_registerName.argtypes = [ctypes.c_char_p]
        send_ptr = ctypes.cast(objc.objc_msgSend, ctypes.c_void_p).value
        as_object = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(send_ptr)
        as_long = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p)(send_ptr)
        info = as_object(
            objc.objc_getClass(b"NSProcessInfo"), objc.sel_registerName(b"processInfo")
        )
        if not info:
            return None
        state = int(as_long(info, objc.sel_registerName(b"thermalState")))
        return state if 0 <= state <= 3 else None
    except Exception:
        return None


def parse_sysctl(text: str) -> dict[str, str]:
    """``name: value`` lines (``sysctl`` without ``-n``) into a dict."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in SYSCTL_KEYS:
            values[key.strip()] = value.strip()
    return values


def parse_pmset_low_power(text: str) -> bool | None:
    """``lowpowermode 1`` (or ``powermode 1`` on newer systems) in ``pmset -g``."""
    match = re.search(r"^\s*lowpowermode\s+(\d+)", text, re.MULTILINE)
    if match:
        return match.group(1) == "1"
    match = re.search(r"^\s*powermode\s+(\d+)", text, re.MULTILINE)
    if match:
        return match.group(1) == "1"
    return None


def parse_pmset_battery(text: str) -> bool | None:
    """``Now drawing from 'Battery Power'`` vs ``'AC Power'`` in ``pmset -g batt``."""
    match = re.search(r"drawing from '([^']+)'", text)
    if not match:
        return None
    return "battery" in match.group(1).lower()


def parse_pmset_therm(text: str) -> tuple[int | None, int | None]:
    """(CPU speed limit %, thermal warning level) from ``pmset -g therm``."""
    limit = re.search(r"CPU_Speed_Limit\s*=\s*(\d+)", text)
    warning = re.search(r"thermal warning level\s*(?:=|:|is)?\s*(\d+)", text, re.IGNORECASE)
    return (
        int(limit.group(1)) if limit else None,
        int(warning.group(1)) if warning else None,
    )


def parse_notify_level(text: str) -> int | None:
    """``com.apple.system.thermalpressurelevel 2`` -> 2."""
    match = re.search(r"thermalpressurelevel\s+(\d+)", text)
    return int(match.group(1)) if match else None


class MacOSSource:
    """Reads sysctl, pmset, the thermal-pressure notification and NSProcessInfo.

    Commands run in parallel, so a snapshot costs one command's time, bounded by the timeout.
    The thermal state is the worst of NSProcessInfo.thermalState, the thermal pressure level
    and a CPU speed limit below 100% (thermalState alone can read nominal while throttling).
    """

    def __init__(
        self,
        runner: CommandRunner,
        *,
        native_thermal: Callable[[], int | None] | None = ns_process_info_thermal_state,
        probe_accelerators: bool = True,
        clock: Clock = time.time,
    ) -> None:
        self.runner = runner
        self.native_thermal = native_thermal
        self.probe_accelerators = probe_accelerators
        self.clock = clock

    def read(self) -> HardwareSnapshot:
        taken_at = self.clock()
        notes: list[str] = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(MACOS_COMMANDS)) as pool:
            futures = {name: pool.submit(self.runner.run, name) for name in MACOS_COMMANDS}
            outputs: dict[str, str | None] = {}
            for name, future in futures.items():
                output, note = future.result()
                outputs[name] = output
                if note:
                    notes.append(note)

        sysctl = parse_sysctl(outputs["sysctl"] or "")

        def sysctl_int(key: str) -> int | None:
            raw = sysctl.get(key)
            return int(raw) if raw is not None and raw.isdigit() else None

        arm64 = sysctl_int("hw.optional.arm64")
        nperflevels = sysctl_int("hw.nperflevels")
        perf = sysctl_int("hw.perflevel0.physicalcpu")
        eff = sysctl_int("hw.perflevel1.physicalcpu")
        if nperflevels == 1 and perf is not None:
            eff = 0  # one performance level: every core is a performance core
        vm_level = sysctl_int("kern.memorystatus_vm_pressure_level")

        thermal: list[ThermalState] = []
        sources: list[str] = []
        native = self.native_thermal() if self.native_thermal else None
        if native is not None and 0 <= native < len(_NS_THERMAL):
            thermal.append(_NS_THERMAL[native])
            sources.append("NSProcessInfo")
        level = parse_notify_level(outputs[NOTIFY_THERMAL] or "")
        if level is not None and 0 <= level < len(_PRESSURE_LEVEL):
            thermal.append(_PRESSURE_LEVEL[level])
            sources.append("thermalpressurelevel")
        speed_limit, _warning = parse_pmset_therm(outputs["pmset -g therm"] or "")
        if speed_limit is not None:
            thermal.append("serious" if speed_limit < 100 else "nominal")
            sources.append("pmset_therm")
        state = worst_thermal(thermal)
        if state == "unknown":
            notes.append("no macOS thermal source answered")

        metal: bool | None = None
        mlx_gpu: bool | None = None
        if self.probe_accelerators:
            metal, mlx_gpu, note = probe_mlx()
            if note:
                notes.append(note)
        else:
            notes.append("accelerators not probed")
        memory_available: int | None = None
        if self.probe_accelerators:
            try:
                import psutil

                memory_available = int(psutil.virtual_memory().available)
            except Exception:
                notes.append("psutil unavailable: available memory unknown")

        return HardwareSnapshot(
            taken_at=taken_at,
            platform="darwin",
            machine="arm64" if arm64 == 1 else "x86_64" if arm64 == 0 else platform.machine(),
            chip=sysctl.get("machdep.cpu.brand_string"),
            memory_total_bytes=sysctl_int("hw.memsize"),
            memory_available_bytes=memory_available,
            unified_memory=None if arm64 is None else arm64 == 1,
            logical_cpus=sysctl_int("hw.logicalcpu"),
            performance_cores=perf,
            efficiency_cores=eff,
            metal_available=metal,
            mlx_gpu_available=mlx_gpu,
            neural_engine=None,  # no public interface reports it without private frameworks
            cuda_available=False if arm64 == 1 else None,
            thermal_state=state,
            thermal_source="+".join(sources) if sources else "none",
            cpu_speed_limit_pct=speed_limit,
            low_power_mode=parse_pmset_low_power(outputs["pmset -g"] or ""),
            on_battery=parse_pmset_battery(outputs["pmset -g batt"] or ""),
            memory_pressure=_VM_PRESSURE.get(vm_level, "unknown") if vm_level else "unknown",
            source="macos",
            notes=tuple(notes),
        )
