"""The MLX multilayer perceptron: its config, training loop, and safetensors persistence.

Everything a model needs to be rebuilt lives in two files: ``weights.safetensors`` (the tensors) and
``config.json`` (architecture, feature names, standardisation statistics, class labels). Loading
never unpickles anything, so the training asset, the MLflow pyfunc wrapper and the bento service all
share this one module. MLX is imported inside functions: this module is cheap to import.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import mlx.nn as nn
    import numpy as np

WEIGHTS_FILENAME = "weights.safetensors"
CONFIG_FILENAME = "config.json"


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
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> MLPConfig:
        raw = json.loads(text)
        return cls(
            feature_names=tuple(raw["feature_names"]),
            classes=tuple(int(c) for c in raw["classes"]),
            hidden_units=tuple(int(h) for h in raw["hidden_units"]),
            feature_mean=tuple(float(v) for v in raw["feature_mean"]),
            feature_std=tuple(float(v) for v in raw["feature_std"]),
        )


@dataclass(frozen=True)
class TrainingParams:
    epochs: int
    batch_size: int
    learning_rate: float
    hidden_units: tuple[int, ...]
    seed: int


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    seconds: float
    samples_per_second: float


@dataclass
class TrainingOutcome:
    config: MLPConfig
    history: list[EpochRecord] = field(default_factory=list)
    device: str = "cpu"

    @property
    def final(self) -> EpochRecord:
        return self.history[-1]


def best_device_name() -> str:
    """``gpu`` when MLX sees Metal or CUDA, else ``cpu``."""
    import mlx.core as mx

    return "gpu" if mx.is_available(mx.gpu) else "cpu"


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
    import numpy as np

    mean = features.mean(axis=0)
    std = features.std(axis=0)
    std = np.where(std < 1e-8, 1.0, std)
    return MLPConfig(
        feature_names=tuple(feature_names),
        classes=tuple(int(c) for c in np.unique(labels)),
        hidden_units=tuple(int(h) for h in hidden_units),
        feature_mean=tuple(float(v) for v in mean),
        feature_std=tuple(float(v) for v in std),
    )


def _standardise(config: MLPConfig, features: np.ndarray) -> np.ndarray:
    import numpy as np

    mean = np.asarray(config.feature_mean, dtype=np.float32)
    std = np.asarray(config.feature_std, dtype=np.float32)
    return ((features.astype(np.float32) - mean) / std).astype(np.float32)


def _label_indices(config: MLPConfig, labels: np.ndarray) -> np.ndarray:
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
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    import numpy as np

    device = best_device_name()
    mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)
    mx.random.seed(params.seed)
    rng = np.random.default_rng(params.seed)

    config = fit_config(train_x, train_y, feature_names, params.hidden_units)
    model = _build_network(config)
    mx.eval(model.parameters())
    optimizer = optim.Adam(learning_rate=params.learning_rate)

    xs = mx.array(_standardise(config, train_x))
    ys = mx.array(_label_indices(config, train_y))
    vx = mx.array(_standardise(config, val_x))
    vy = mx.array(_label_indices(config, val_y))

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


def save(model: nn.Module, config: MLPConfig, directory: Path) -> tuple[Path, Path]:
    """Write ``weights.safetensors`` and ``config.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    weights_path = directory / WEIGHTS_FILENAME
    config_path = directory / CONFIG_FILENAME
    model.save_weights(str(weights_path))
    config_path.write_text(config.to_json())
    return weights_path, config_path


class MLXClassifier:
    """Inference on saved weights: standardise, forward pass, softmax."""

    def __init__(self, model: nn.Module, config: MLPConfig) -> None:
        self.model = model
        self.config = config

    @classmethod
    def load(cls, weights_path: str | Path, config_path: str | Path) -> MLXClassifier:
        """Rebuild the network from its config and load the safetensors weights (no pickle)."""
        import mlx.core as mx

        weights_path, config_path = Path(weights_path), Path(config_path)
        for path in (weights_path, config_path):
            if not path.is_file():
                raise FileNotFoundError(f"model file missing: {path}")
        config = MLPConfig.from_json(config_path.read_text())
        model = _build_network(config)
        model.load_weights(str(weights_path), strict=True)
        mx.eval(model.parameters())
        model.eval()
        return cls(model, config)

    @classmethod
    def load_dir(cls, directory: str | Path) -> MLXClassifier:
        directory = Path(directory)
        return cls.load(directory / WEIGHTS_FILENAME, directory / CONFIG_FILENAME)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        import mlx.core as mx
        import numpy as np

        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.config.n_features:
            raise ValueError(
                f"expected rows of {self.config.n_features} features, got shape {features.shape}"
            )
        logits = self.model(mx.array(_standardise(self.config, features)))
        return np.asarray(mx.softmax(logits, axis=1), dtype=np.float32)

    def predict(self, features: np.ndarray) -> np.ndarray:
        import numpy as np

        proba = self.predict_proba(features)
        return np.asarray(self.config.classes, dtype=np.int64)[proba.argmax(axis=1)]
