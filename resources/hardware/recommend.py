"""The training settings the machine can carry: a pure decision from one hardware snapshot.

A function of plain values (a snapshot and the model's shape) so it is unit-tested on canned
snapshots; the resource only reads the machine and calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from resources.hardware.types import UNKNOWN, HardwareSnapshot, MetadataValue

Device = Literal["gpu", "cpu"]

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
