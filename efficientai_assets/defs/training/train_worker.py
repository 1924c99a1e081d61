"""The MLX training process: ``python -m efficientai_assets.defs.training.train_worker REQUEST.json``.

Training runs in its own child process so that its environment (a preloaded fast BLAS on Linux)
stays confined to it, and so a crash in native code fails the step instead of the run process. The
request names the splits, the model family (``models/families.py``) and its hyperparameters; the
worker writes the weights, the config and the per-epoch history into the request's output folder,
and nothing else.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from efficientai_assets.defs.data.datasets import split_features
from efficientai_assets.defs.training.blas import describe_blas
from efficientai_assets.models.families import get_family
from efficientai_assets.models.family import CONFIG_FILENAME, EpochRecord, TrainingParams, save
from resources.lifetime import bind_to_parent, child_environment

HISTORY_FILENAME = "history.json"
RESULT_FILENAME = "result.json"


class TrainingWorkerError(RuntimeError):
    """The training process failed; the message carries its last error lines."""


@dataclass(frozen=True)
class TrainingRequest:
    train_path: str
    validation_path: str
    label_column: str
    output_dir: str
    params: TrainingParams

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrainingRequest:
        raw = json.loads(text)
        params = raw.pop("params")
        params["hidden_units"] = tuple(params["hidden_units"])
        if "conv_channels" in params:
            params["conv_channels"] = tuple(params["conv_channels"])
        return cls(params=TrainingParams(**params), **raw)


@dataclass(frozen=True)
class TrainingResult:
    output_dir: Path
    device: str
    history: list[EpochRecord]
    blas_tags: dict[
        str, str
    ]  # the BLAS this process really loaded (efficientai_assets.defs.training.blas)

    @property
    def config_path(self) -> Path:
        return self.output_dir / CONFIG_FILENAME


def run_training_process(
    request: TrainingRequest, env: dict[str, str] | None = None, timeout_seconds: float = 3600
) -> TrainingResult:
    """Run the worker as a child process and read back what it wrote."""
    out = Path(request.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    request_path = out / "request.json"
    request_path.write_text(request.to_json())
    try:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "efficientai_assets.defs.training.train_worker",
                str(request_path),
            ],
            capture_output=True,
            text=True,
            # The worker dies with this process, even when this one is killed outright.
            env=child_environment(env),
            timeout=timeout_seconds,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise TrainingWorkerError(
            f"training process exceeded its {timeout_seconds:g} s limit and was stopped"
        ) from error
    if completed.returncode != 0:
        tail = "\n".join(completed.stderr.strip().splitlines()[-5:])
        raise TrainingWorkerError(f"training process exited with {completed.returncode}: {tail}")
    result = json.loads((out / RESULT_FILENAME).read_text())
    history = [EpochRecord(**row) for row in json.loads((out / HISTORY_FILENAME).read_text())]
    return TrainingResult(
        output_dir=out, device=result["device"], history=history, blas_tags=result["blas"]
    )


def main(request_path: str) -> None:
    import pandas as pd

    request = TrainingRequest.from_json(Path(request_path).read_text())
    family = get_family(request.params.family)
    train_x, train_y, feature_names = split_features(
        pd.read_parquet(request.train_path), request.label_column
    )
    val_x, val_y, _ = split_features(pd.read_parquet(request.validation_path), request.label_column)
    # Before any training: the family refuses data or parameters it cannot train on.
    family.check(request.params, len(feature_names))
    outcome, model = family.train(train_x, train_y, val_x, val_y, feature_names, request.params)
    out = Path(request.output_dir)
    save(model, outcome.config, out)
    (out / HISTORY_FILENAME).write_text(json.dumps([asdict(r) for r in outcome.history]))
    (out / RESULT_FILENAME).write_text(
        json.dumps({"device": outcome.device, "blas": describe_blas().to_tags()})
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m efficientai_assets.defs.training.train_worker REQUEST.json")
    bind_to_parent()  # never outlive the run process (resources/lifetime.py)
    main(sys.argv[1])
