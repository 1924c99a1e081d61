"""A small MLX convolutional network on square images given as pixel columns (``model_family: cnn``).

The worked example of ``docs/bring_your_own_model.md``: the digits' 64 pixel columns are an 8×8
grey image, so the network reshapes each standardised row to 1×8×8 (MLX convolutions are
channels-last: ``(N, 8, 8, 1)``), applies ``conv_channels`` 3×3 convolutions with ReLU, one 2×2
max-pool, then ``hidden_units`` dense layers and one logit per class. Rows in, logits out — as
every family — so inference, the MLflow pyfunc, the bento and drift need nothing new. The
training loop and the standardisation are the families' shared ones (``common.py``).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

try:  # inside the project
    from efficientai_assets.models.common import fit_standardisation, train_network
    from efficientai_assets.models.family import (
        CONFIG_FILENAME,
        FAMILY_KEY,
        EpochRecord,
        TrainingOutcome,
        TrainingParams,
        family_name_of,
    )
except ImportError:  # inside an MLflow model: the model modules travel as top-level code paths
    from common import fit_standardisation, train_network  # type: ignore[no-redef]
    from family import (  # type: ignore[no-redef]
        CONFIG_FILENAME,
        FAMILY_KEY,
        EpochRecord,
        TrainingOutcome,
        TrainingParams,
        family_name_of,
    )

if TYPE_CHECKING:
    import mlx.nn as nn
    import numpy as np

FAMILY_NAME = "cnn"
KERNEL = 3
MAX_CHANNELS = 512


def image_side(n_features: int) -> int:
    """The side of the square image ``n_features`` pixel columns make (64 → 8), or a
    ``ValueError`` saying why they make none."""
    side = math.isqrt(max(n_features, 0))
    if side < 2 or side * side != n_features:
        raise ValueError(
            f"the cnn family reads each row as a square grey image, but {n_features} feature "
            "columns are not a square number of pixels (≥ 4); use model_family 'mlp' for this data"
        )
    return side


@dataclass(frozen=True)
class CNNConfig:
    """Architecture (image side, convolution channels, dense head) plus the preprocessing."""

    feature_names: tuple[str, ...]
    classes: tuple[int, ...]
    image_side: int
    conv_channels: tuple[int, ...]
    hidden_units: tuple[int, ...]
    feature_mean: tuple[float, ...]
    feature_std: tuple[float, ...]

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def pooled_side(self) -> int:
        """The image side after the 2×2 max-pool (none for an odd side)."""
        return self.image_side // 2 if self.image_side % 2 == 0 else self.image_side

    def to_json(self) -> str:
        return json.dumps({FAMILY_KEY: FAMILY_NAME, **asdict(self)}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> CNNConfig:
        family = family_name_of(text)
        if family != FAMILY_NAME:
            raise ValueError(f"this {CONFIG_FILENAME} describes a {family!r} model, not a cnn")
        raw = json.loads(text)
        return cls(
            feature_names=tuple(raw["feature_names"]),
            classes=tuple(int(c) for c in raw["classes"]),
            image_side=int(raw["image_side"]),
            conv_channels=tuple(int(c) for c in raw["conv_channels"]),
            hidden_units=tuple(int(h) for h in raw["hidden_units"]),
            feature_mean=tuple(float(v) for v in raw["feature_mean"]),
            feature_std=tuple(float(v) for v in raw["feature_std"]),
        )


def build_network(config: CNNConfig) -> nn.Module:
    """Rows of ``image_side²`` values → (N, side, side, 1) → convolutions → pool → dense → logits."""
    import mlx.nn as nn

    class SmallCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            channels = [1, *config.conv_channels]
            self.convs = [
                nn.Conv2d(i, o, KERNEL, padding=KERNEL // 2)
                for i, o in itertools.pairwise(channels)
            ]
            self.pool = nn.MaxPool2d(2) if config.image_side % 2 == 0 else None
            flat = config.pooled_side**2 * channels[-1]
            sizes = [flat, *config.hidden_units, config.n_classes]
            self.dense = [nn.Linear(i, o) for i, o in itertools.pairwise(sizes)]

        def __call__(self, x: Any) -> Any:
            side = config.image_side
            x = x.reshape(x.shape[0], side, side, 1)
            for conv in self.convs:
                x = nn.relu(conv(x))
            if self.pool is not None:
                x = self.pool(x)
            x = x.reshape(x.shape[0], -1)
            for layer in self.dense[:-1]:
                x = nn.relu(layer(x))
            return self.dense[-1](x)

    return SmallCNN()


def fit_config(
    features: np.ndarray, labels: np.ndarray, feature_names: Sequence[str], params: TrainingParams
) -> CNNConfig:
    """The CNN's config from the training split (standardisation, classes) and ``params``."""
    fitted = fit_standardisation(features, labels, feature_names)
    return CNNConfig(
        feature_names=fitted.feature_names,
        classes=fitted.classes,
        image_side=image_side(len(fitted.feature_names)),
        conv_channels=tuple(int(c) for c in params.conv_channels),
        hidden_units=tuple(int(h) for h in params.hidden_units),
        feature_mean=fitted.feature_mean,
        feature_std=fitted.feature_std,
    )


class CNNFamily:
    """The small CNN as a ``family.ModelFamily``."""

    name = FAMILY_NAME

    def check(self, params: TrainingParams, n_features: int) -> None:
        image_side(n_features)
        channels = list(params.conv_channels)
        if not channels or min(channels) < 1 or max(channels) > MAX_CHANNELS:
            raise ValueError(
                f"conv_channels must be 1 to {MAX_CHANNELS} channels per layer (at least one "
                f"layer), got {channels}"
            )
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
        self.check(params, len(feature_names))
        config = fit_config(train_x, train_y, feature_names, params)
        return train_network(
            config, build_network, (train_x, train_y, val_x, val_y), params, on_epoch
        )

    def config_from_json(self, text: str) -> CNNConfig:
        return CNNConfig.from_json(text)

    def build(self, config: Any) -> nn.Module:
        return build_network(config)


FAMILY = CNNFamily()
