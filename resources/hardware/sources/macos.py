"""The macOS reader: sysctl, pmset, the thermal-pressure notification and NSProcessInfo.

Every command runs by absolute path with the C locale, no shell, no sudo and a timeout; a
fixture runner replays canned outputs so the reader is tested on any platform.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from resources.hardware.sources.accelerators import probe_mlx
from resources.hardware.types import (
    Clock,
    HardwareSnapshot,
    MemoryPressure,
    ThermalState,
    worst_thermal,
)

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
