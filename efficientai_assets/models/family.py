"""The model-family interface: what a team implements to train its own MLX model in the pipeline.

A *family* is one architecture: it builds its network from a config, trains it on the splits
(returning one ``EpochRecord`` per epoch), saves and loads it as ``weights.safetensors`` +
``config.json`` (never pickle), and predicts. ``families.py`` maps the ``model_family`` run-config
value to a family; the candidate step, MLflow, the quality check, the champion, the bento and drift
use only what is declared here, so a new family goes through them unchanged.
``docs/bring_your_own_model.md`` walks through adding one.

This module imports nothing heavy: the code location loads it through the training config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import mlx.nn as nn
    import numpy as np

WEIGHTS_FILENAME = "weights.safetensors"
CONFIG_FILENAME = "config.json"
# The key of ``config.json`` that names the family; a config without it is an MLP (older versions).
FAMILY_KEY = "family"
DEFAULT_FAMILY = "mlp"


@dataclass(frozen=True)
class TrainingParams:
    """The hyperparameters a family trains with. ``hidden_units`` sizes the dense layers (the
    whole MLP, the CNN's head); ``conv_channels`` only concerns families with convolutions."""

    epochs: int
    batch_size: int
    learning_rate: float
    hidden_units: tuple[int, ...]
    seed: int
    family: str = DEFAULT_FAMILY
    conv_channels: tuple[int, ...] = (16, 32)


@dataclass
class EpochRecord:
    """One epoch as the candidate step logs it to MLflow (one metric row per epoch)."""

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    seconds: float
    samples_per_second: float


class ModelConfig(Protocol):
    """What every family's ``config.json`` holds at least: the inputs the model reads (the
    serving schema is derived from ``feature_names``), its classes and the standardisation it
    applies before the network."""

    @property
    def feature_names(self) -> tuple[str, ...]: ...

    @property
    def classes(self) -> tuple[int, ...]: ...

    @property
    def feature_mean(self) -> tuple[float, ...]: ...

    @property
    def feature_std(self) -> tuple[float, ...]: ...

    @property
    def n_features(self) -> int: ...

    @property
    def n_classes(self) -> int: ...

    def to_json(self) -> str:
        """The ``config.json`` text, including ``"family": <name>``."""
        ...


@dataclass
class TrainingOutcome:
    """What a family's ``train`` returns besides the network: its config and per-epoch history."""

    config: Any  # the family's ModelConfig
    history: list[EpochRecord] = field(default_factory=list)
    device: str = "cpu"

    @property
    def final(self) -> EpochRecord:
        return self.history[-1]


class ModelFamily(Protocol):
    """One architecture the pipeline can train, save, load and serve.

    The network takes rows of ``n_features`` float32 values (standardised by the config's
    statistics) and returns one logit per class: any reshaping (the CNN's 8×8 image) happens
    inside the network, so inference and serving stay the same for every family.
    """

    name: str

    def check(self, params: TrainingParams, n_features: int) -> None:
        """Raise ``ValueError`` naming the problem when this family cannot train ``params`` on rows
        of ``n_features`` values (called before any training)."""
        ...

    def train(
        self,
        train_x: np.ndarray,
        train_y: np.ndarray,
        val_x: np.ndarray,
        val_y: np.ndarray,
        feature_names: Sequence[str],
        params: TrainingParams,
        on_epoch: Callable[[EpochRecord], None] | None = None,
    ) -> tuple[TrainingOutcome, nn.Module]:
        """Train on the splits; one ``EpochRecord`` per epoch in the outcome's history."""
        ...

    def config_from_json(self, text: str) -> ModelConfig:
        """Read a ``config.json`` this family wrote."""
        ...

    def build(self, config: ModelConfig) -> nn.Module:
        """The untrained network of ``config`` (its weights are then loaded from safetensors)."""
        ...


def family_name_of(config_text: str) -> str:
    """The family a ``config.json`` names (an MLP when it names none: versions saved before
    families existed)."""
    import json

    raw = json.loads(config_text)
    if not isinstance(raw, dict):
        raise ValueError(f"{CONFIG_FILENAME} is not a JSON object")
    return str(raw.get(FAMILY_KEY, DEFAULT_FAMILY))


def best_device_name() -> str:
    """``gpu`` when MLX sees Metal or CUDA, else ``cpu``."""
    import mlx.core as mx

    return "gpu" if mx.is_available(mx.gpu) else "cpu"


def save(model: nn.Module, config: ModelConfig, directory: Path) -> tuple[Path, Path]:
    """Write ``weights.safetensors`` and ``config.json`` into ``directory`` (any family)."""
    directory.mkdir(parents=True, exist_ok=True)
    weights_path = directory / WEIGHTS_FILENAME
    config_path = directory / CONFIG_FILENAME
    model.save_weights(str(weights_path))
    config_path.write_text(config.to_json())
    return weights_path, config_path
