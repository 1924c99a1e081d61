"""Run config of the candidate model: the model family, its hyperparameters and the quality floor."""

from __future__ import annotations

import dagster as dg
from pydantic import Field, field_validator

from efficientai_assets.models.families import FamilyName

DEFAULT_CONV_CHANNELS = [16, 32]
MAX_CONV_CHANNELS = 512


class TrainingConfig(dg.Config):
    """The model family and its hyperparameters, plus the quality floor of its blocking check."""

    model_family: FamilyName = Field(
        default="mlp",
        description=(
            "Which architecture to train (efficientai_assets/models/families.py): 'mlp', or "
            "'cnn' (a small convolutional network on square images, e.g. the digits' 8×8)."
        ),
    )
    epochs: int = Field(default=20, ge=1, le=10_000)
    batch_size: int = Field(
        default=0, ge=0, description="0 takes the hardware resource's recommendation."
    )
    learning_rate: float = Field(default=1e-3, gt=0.0, le=1.0)
    hidden_units: list[int] = Field(
        default=[256, 128], min_length=1, description="Dense layers: the MLP, the CNN's head."
    )
    conv_channels: list[int] = Field(
        default=DEFAULT_CONV_CHANNELS,
        min_length=1,
        max_length=8,
        description="Channels of each 3×3 convolution (model_family 'cnn' only).",
    )
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

    @field_validator("conv_channels")
    @classmethod
    def _channels_in_range(cls, channels: list[int]) -> list[int]:
        bad = [c for c in channels if not 1 <= c <= MAX_CONV_CHANNELS]
        if bad:
            raise ValueError(
                f"conv_channels {bad} out of range: each layer has 1 to {MAX_CONV_CHANNELS} channels"
            )
        return channels

    def training_fingerprint_fields(self) -> dict[str, object]:
        """What decides the trained weights (and so the memoization key). The family and its own
        fields enter only for a family other than the default MLP, so every MLP trained before
        families existed keeps its fingerprint (and is reused)."""
        fields: dict[str, object] = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "hidden_units": list(self.hidden_units),
            "seed": self.seed,
        }
        if self.model_family != "mlp":
            fields["model_family"] = self.model_family
            if self.model_family == "cnn":
                fields["conv_channels"] = list(self.conv_channels)
        return fields
