"""The MLX multilayer perceptron: the default model family (``model_family: mlp``).

Everything a model needs to be rebuilt lives in two files: ``weights.safetensors`` (the tensors) and
``config.json`` (family, architecture, feature names, standardisation statistics, class labels).
Loading never unpickles anything, so the training asset, the MLflow pyfunc wrapper and the bento
service all share this code. The training loop and inference are the families' shared ones
(``common.py``); this module owns the MLP's config and network. MLX is imported inside functions:
this module is cheap to import.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:  # inside the project
    from efficientai_assets.models.common import (
        Classifier,
        fit_standardisation,
        load_network,
        train_network,
    )
    from efficientai_assets.models.family import (
        CONFIG_FILENAME,
        FAMILY_KEY,
        WEIGHTS_FILENAME,
        EpochRecord,
        TrainingOutcome,
        TrainingParams,
        best_device_name,
        family_name_of,
        save,
    )
except ImportError:  # inside an MLflow model: the model modules travel as top-level code paths
    from common import (  # type: ignore[no-redef]
        Classifier,
        fit_standardisation,
        load_network,
        train_network,
    )
    from family import (  # type: ignore[no-redef]
        CONFIG_FILENAME,
        FAMILY_KEY,
        WEIGHTS_FILENAME,
        EpochRecord,
        TrainingOutcome,
        TrainingParams,
        best_device_name,
        family_name_of,
        save,
    )

if TYPE_CHECKING:
    import mlx.nn as nn
    import numpy as np

FAMILY_NAME = "mlp"

__all__ = [
    "CONFIG_FILENAME",
    "FAMILY",
    "WEIGHTS_FILENAME",
    "EpochRecord",
    "MLPConfig",
    "MLXClassifier",
    "TrainingOutcome",
    "TrainingParams",
    "best_device_name",
    "fit_config",
    "save",
    "train",
]


@dataclass(frozen=True)
class MLPConfig:
    """Architecture plus the preprocessing the network expects at inference."""

    feature_names: tuple[str, ...]
    classes: tuple[int, ...]
    hidden_units: tuple[int, ...]
    feature_mean: tuple[float, ...]
    feature_std: tuple[float, ...]

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def to_json(self) -> str:
        return json.dumps({FAMILY_KEY: FAMILY_NAME, **asdict(self)}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> MLPConfig:
        family = family_name_of(text)
        if family != FAMILY_NAME:
            raise ValueError(
                f"this {CONFIG_FILENAME} describes a {family!r} model, not an MLP: load it with "
                "efficientai_assets.models.families.load_classifier"
            )
        raw = json.loads(text)
        return cls(
            feature_names=tuple(raw["feature_names"]),
            classes=tuple(int(c) for c in raw["classes"]),
            hidden_units=tuple(int(h) for h in raw["hidden_units"]),
            feature_mean=tuple(float(v) for v in raw["feature_mean"]),
            feature_std=tuple(float(v) for v in raw["feature_std"]),
        )


def _build_network(config: MLPConfig) -> nn.Module:
    import mlx.nn as nn

    class MLP(nn.Module):
        def __init__(self, sizes: Sequence[int]) -> None:
            super().__init__()
            self.layers = [nn.Linear(i, o) for i, o in itertools.pairwise(sizes)]

        def __call__(self, x: Any) -> Any:
            for layer in self.layers[:-1]:
                x = nn.relu(layer(x))
            return self.layers[-1](x)

    return MLP([config.n_features, *config.hidden_units, config.n_classes])


def fit_config(
    features: np.ndarray,
    labels: np.ndarray,
    feature_names: Sequence[str],
    hidden_units: Sequence[int],
) -> MLPConfig:
    """Derive the standardisation statistics and class list from the training split."""
    fitted = fit_standardisation(features, labels, feature_names)
    return MLPConfig(
        feature_names=fitted.feature_names,
        classes=fitted.classes,
        hidden_units=tuple(int(h) for h in hidden_units),
        feature_mean=fitted.feature_mean,
        feature_std=fitted.feature_std,
    )


def train(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    feature_names: Sequence[str],
    params: TrainingParams,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> tuple[TrainingOutcome, nn.Module]:
    """Train with Adam and cross-entropy on the best device; the step function is ``mx.compile``d."""
    config = fit_config(train_x, train_y, feature_names, params.hidden_units)
    return train_network(config, _build_network, (train_x, train_y, val_x, val_y), params, on_epoch)


class MLPFamily:
    """The MLP as a ``family.ModelFamily``: ``hidden_units`` dense ReLU layers."""

    name = FAMILY_NAME

    def check(self, params: TrainingParams, n_features: int) -> None:
        if n_features < 1:
            raise ValueError("the mlp family needs at least one feature column")
        if not params.hidden_units or min(params.hidden_units) < 1:
            raise ValueError(
                f"hidden_units must be positive sizes, got {list(params.hidden_units)}"
            )

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
        return train(train_x, train_y, val_x, val_y, feature_names, params, on_epoch)

    def config_from_json(self, text: str) -> MLPConfig:
        return MLPConfig.from_json(text)

    def build(self, config: Any) -> nn.Module:
        return _build_network(config)


FAMILY = MLPFamily()


class MLXClassifier(Classifier):
    """An MLP loaded from its saved weights (``families.load_classifier`` loads any family)."""

    config: MLPConfig

    @classmethod
    def load(cls, weights_path: str | Path, config_path: str | Path) -> MLXClassifier:
        """Rebuild the network from its config and load the safetensors weights (no pickle)."""
        weights_path, config_path = Path(weights_path), Path(config_path)
        for path in (weights_path, config_path):
            if not path.is_file():
                raise FileNotFoundError(f"model file missing: {path}")
        config = MLPConfig.from_json(config_path.read_text())
        return cls(load_network(_build_network, config, str(weights_path)), config)

    @classmethod
    def load_dir(cls, directory: str | Path) -> MLXClassifier:
        directory = Path(directory)
        return cls.load(directory / WEIGHTS_FILENAME, directory / CONFIG_FILENAME)
