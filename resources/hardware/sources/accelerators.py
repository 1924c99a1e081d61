"""Accelerator probes shared by the Linux and macOS readers: MLX (Metal, GPU) and NVML (CUDA).

Both libraries are optional and imported inside the probes: a missing or broken one leaves its
readings unknown with a note, and loading the code location never pays for them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from resources.hardware.types import GpuReading


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
