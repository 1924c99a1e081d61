"""The MLX mechanics the built-in families share: standardisation fitted on the training split,
class indices, the compiled Adam + cross-entropy loop, and inference on saved weights.

A family supplies its config and its network; this module does the rest, so the MLP and the CNN
differ only in the network they build. MLX and numpy are imported inside functions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

try:  # inside the project
    from efficientai_assets.models.family import (
        EpochRecord,
        ModelConfig,
        TrainingOutcome,
        TrainingParams,
        best_device_name,
    )
except ImportError:  # inside an MLflow model: the model modules travel as top-level code paths
    from family import (  # type: ignore[no-redef]
        EpochRecord,
        ModelConfig,
        TrainingOutcome,
        TrainingParams,
        best_device_name,
    )

if TYPE_CHECKING:
    import mlx.nn as nn
    import numpy as np


@dataclass(frozen=True)
class Standardisation:
    """Per-column mean and standard deviation of the training split (a constant column: std 1)."""

    feature_names: tuple[str, ...]
    classes: tuple[int, ...]
    feature_mean: tuple[float, ...]
    feature_std: tuple[float, ...]


def fit_standardisation(
    features: np.ndarray, labels: np.ndarray, feature_names: Sequence[str]
) -> Standardisation:
    """Derive the standardisation statistics and class list from the training split."""
    import numpy as np

    mean = features.mean(axis=0)
    std = features.std(axis=0)
    std = np.where(std < 1e-8, 1.0, std)
    return Standardisation(
        feature_names=tuple(feature_names),
        classes=tuple(int(c) for c in np.unique(labels)),
        feature_mean=tuple(float(v) for v in mean),
        feature_std=tuple(float(v) for v in std),
    )


def standardise(config: ModelConfig, features: np.ndarray) -> np.ndarray:
    import numpy as np

    mean = np.asarray(config.feature_mean, dtype=np.float32)
    std = np.asarray(config.feature_std, dtype=np.float32)
    return ((features.astype(np.float32) - mean) / std).astype(np.float32)


def label_indices(config: ModelConfig, labels: np.ndarray) -> np.ndarray:
    import numpy as np

    index = {c: i for i, c in enumerate(config.classes)}
    unknown = sorted({int(v) for v in labels} - index.keys())
    if unknown:
        raise ValueError(
            f"labels {unknown} are not among the training classes {list(config.classes)}"
        )
    return np.asarray([index[int(v)] for v in labels], dtype=np.int32)


def _scalar(value: Any) -> float:
    import numpy as np

    return float(np.asarray(value))


def train_network(
    config: ModelConfig,
    build: Callable[[Any], nn.Module],
    splits: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    params: TrainingParams,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> tuple[TrainingOutcome, nn.Module]:
    """Train ``build(config)`` with Adam and cross-entropy on the best device (the step function
    is ``mx.compile``d); ``splits`` is (train_x, train_y, val_x, val_y). Seeded: the same inputs
    give the same weights."""
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    import numpy as np

    train_x, train_y, val_x, val_y = splits
    device = best_device_name()
    mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)
    mx.random.seed(params.seed)
    rng = np.random.default_rng(params.seed)

    model = build(config)
    mx.eval(model.parameters())
    optimizer = optim.Adam(learning_rate=params.learning_rate)

    xs = mx.array(standardise(config, train_x))
    ys = mx.array(label_indices(config, train_y))
    vx = mx.array(standardise(config, val_x))
    vy = mx.array(label_indices(config, val_y))

    def loss_fn(x: Any, y: Any) -> Any:
        return nn.losses.cross_entropy(model(x), y, reduction="mean")

    loss_and_grad = nn.value_and_grad(model, loss_fn)
    state = [model.state, optimizer.state]

    def step(x: Any, y: Any) -> Any:
        loss, grads = loss_and_grad(x, y)
        optimizer.update(model, grads)
        return loss

    compiled_step = mx.compile(step, inputs=state, outputs=state)

    outcome = TrainingOutcome(config=config, device=device)
    n = len(train_y)
    for epoch in range(1, params.epochs + 1):
        started = time.perf_counter()
        order = mx.array(rng.permutation(n))
        batch_losses = []
        for start in range(0, n, params.batch_size):
            idx = order[start : start + params.batch_size]
            batch_losses.append(compiled_step(xs[idx], ys[idx]) * idx.shape[0])
            mx.eval(state)
        train_loss = _scalar(mx.sum(mx.stack(batch_losses))) / n
        elapsed = time.perf_counter() - started
        logits = model(vx)
        val_loss = _scalar(nn.losses.cross_entropy(logits, vy, reduction="mean"))
        val_accuracy = _scalar(mx.mean(mx.argmax(logits, axis=1) == vy))
        record = EpochRecord(
            epoch=epoch,
            train_loss=train_loss,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            seconds=elapsed,
            samples_per_second=n / elapsed if elapsed > 0 else math.inf,
        )
        outcome.history.append(record)
        if on_epoch is not None:
            on_epoch(record)
    return outcome, model


class Classifier:
    """Inference on a loaded network of any family: standardise, forward pass, softmax.

    Built by ``families.load_classifier`` (any family) or a family's own loader; ``config`` is
    the family's config (``feature_names``, ``classes``, ``n_features`` for every family)."""

    def __init__(self, model: nn.Module, config: Any) -> None:
        self.model = model
        self.config = config

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        import mlx.core as mx
        import numpy as np

        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.config.n_features:
            raise ValueError(
                f"expected rows of {self.config.n_features} features, got shape {features.shape}"
            )
        logits = self.model(mx.array(standardise(self.config, features)))
        return np.asarray(mx.softmax(logits, axis=1), dtype=np.float32)

    def predict(self, features: np.ndarray) -> np.ndarray:
        import numpy as np

        proba = self.predict_proba(features)
        return np.asarray(self.config.classes, dtype=np.int64)[proba.argmax(axis=1)]


def load_network(
    build: Callable[[Any], nn.Module], config: ModelConfig, weights_path: str
) -> nn.Module:
    """``build(config)`` with the safetensors weights loaded strictly (every tensor, right
    shapes), evaluated and in inference mode."""
    import mlx.core as mx

    model = build(config)
    model.load_weights(weights_path, strict=True)
    mx.eval(model.parameters())
    model.eval()
    return model
