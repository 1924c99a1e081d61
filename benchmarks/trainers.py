"""The training loops the MLX benchmark compares against: the same MLP in numpy and in torch, on the
same digits data, so each configuration differs only in the framework doing the arithmetic."""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import pairwise
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

HIDDEN = (256, 256)
LEARNING_RATE = 1e-3
SEED = 7


def training_data(scale: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits (1,797 × 64) repeated ``scale`` times, copies jittered; 200 rows held out."""
    import numpy as np
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    rng = np.random.default_rng(seed)
    copies = [x] + [x + rng.normal(0, 0.5, x.shape).astype(np.float32) for _ in range(scale - 1)]
    train_x = np.concatenate(copies)
    train_y = np.tile(y, scale)
    return train_x, train_y.astype(np.int64), x[:200], y[:200].astype(np.int64)


def standardise(train_x: np.ndarray) -> np.ndarray:
    import numpy as np

    std = train_x.std(axis=0)
    return ((train_x - train_x.mean(axis=0)) / np.where(std < 1e-8, 1.0, std)).astype(np.float32)


def numpy_trainer(x: np.ndarray, y: np.ndarray, batch: int) -> Callable[[], float]:
    """One epoch of the numpy MLP per call; returns its seconds."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    sizes = [x.shape[1], *HIDDEN, 10]
    weights = [
        (rng.standard_normal((i, o)) * np.sqrt(2.0 / i)).astype(np.float32)
        for i, o in pairwise(sizes)
    ]
    biases = [np.zeros(o, dtype=np.float32) for o in sizes[1:]]
    params = weights + biases
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    n = len(y)

    def epoch() -> float:
        started = time.perf_counter()
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            xb, yb = x[idx], y[idx]
            activations = [xb]
            for w, b in zip(weights[:-1], biases[:-1], strict=True):
                activations.append(np.maximum(activations[-1] @ w + b, 0.0))
            logits = activations[-1] @ weights[-1] + biases[-1]
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
            total += float(-np.log(probs[np.arange(len(yb)), yb] + 1e-12).mean()) * len(yb)
            grad = probs
            grad[np.arange(len(yb)), yb] -= 1.0
            grad /= len(yb)
            grads_w, grads_b = [], []
            for layer in range(len(weights) - 1, -1, -1):
                grads_w.append(activations[layer].T @ grad)
                grads_b.append(grad.sum(axis=0))
                if layer:
                    grad = (grad @ weights[layer].T) * (activations[layer] > 0)
            grads = grads_w[::-1] + grads_b[::-1]
            for p, g, m, v in zip(params, grads, first, second, strict=True):
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                p -= LEARNING_RATE * m / (np.sqrt(v) + eps)
        return time.perf_counter() - started

    return epoch


def torch_trainer(x: np.ndarray, y: np.ndarray, batch: int) -> Callable[[], float]:
    """One epoch of the torch MLP per call; returns its seconds."""
    import torch

    torch.manual_seed(SEED)
    sizes = [x.shape[1], *HIDDEN, 10]
    layers: list[torch.nn.Module] = []
    for i, o in pairwise(sizes):
        layers += [torch.nn.Linear(i, o), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.CrossEntropyLoss()
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    n = len(y)

    def epoch() -> float:
        started = time.perf_counter()
        order = torch.randperm(n)
        total = 0.0
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xs[idx]), ys[idx])
            loss.backward()
            optimizer.step()
            total += float(loss.item()) * len(idx)
        return time.perf_counter() - started

    return epoch
