"""Run config of the candidate model: hyperparameters and the quality floor."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class TrainingConfig(dg.Config):
    """Hyperparameters of the MLX MLP, plus the quality floor of its blocking check."""

    epochs: int = Field(default=20, ge=1, le=10_000)
    batch_size: int = Field(
        default=0, ge=0, description="0 takes the hardware resource's recommendation."
    )
    learning_rate: float = Field(default=1e-3, gt=0.0, le=1.0)
    hidden_units: list[int] = Field(default=[256, 128], min_length=1)
    seed: int = 0
    min_validation_accuracy: float = Field(
        default=0.9, ge=0.0, le=1.0, description="Floor of the blocking quality check."
    )
    priority: str = Field(
        default="normal",
        pattern="^(normal|high)$",
        description="Gate priority: 'normal', or 'high' (may run at 'fair').",
    )
    timeout_seconds: float = Field(
        default=3600.0, gt=0, description="Wall-clock limit of the training process."
    )
    force_retrain: bool = Field(
        default=False, description="Train even when an identical registered version exists."
    )

    def training_fingerprint_fields(self) -> dict[str, object]:
        """What decides the trained weights (and so the memoization key)."""
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "hidden_units": list(self.hidden_units),
            "seed": self.seed,
        }
