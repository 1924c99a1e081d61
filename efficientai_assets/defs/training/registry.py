"""Model I/O of the training steps: the versioned splits, logging an MLX model to MLflow without
pickle, registering it as ``challenger``, and scoring registered versions as they are served
(``origin.py`` reads them as files; no code from the registry runs).
MLflow, pandas and the model code are imported inside the functions (the code location loads
this module)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from efficientai_assets.models.mlp import CONFIG_FILENAME, WEIGHTS_FILENAME
from efficientai_assets.names import (
    CHALLENGER_ALIAS,
    MODEL_NAME,
    SPLITS_DIR,
    VALIDATION_SPLIT_FILE,
)
from resources.dvc.resource import DvcResource, DvcVersion
from resources.mlflow.resource import MlflowResource

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion

    from efficientai_assets.defs.training.train_worker import TrainingResult

MODEL_ARTIFACT_NAME = "model"


def splits_version(dvc: DvcResource) -> DvcVersion:
    """The splits' current DVC version: what training reads and the memo key is built from."""
    version = dvc.current_version(dvc.project_path(SPLITS_DIR))
    if version is None:
        raise dg.Failure(f"no versioned splits in {dvc.root()}: materialize dataset_splits first")
    return version


def log_mlx_model(result: TrainingResult, signature_columns: list[str]) -> str:
    """Log weights + config as a models-from-code pyfunc into the active run; returns its URI."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from efficientai_assets.models import pyfunc_model
    from efficientai_assets.models.families import code_files

    signature = ModelSignature(
        inputs=Schema([ColSpec("float", name) for name in signature_columns]),
        outputs=Schema([ColSpec("long", "label")]),
    )
    info = mlflow.pyfunc.log_model(
        name=MODEL_ARTIFACT_NAME,
        python_model=pyfunc_model.__file__,
        artifacts={
            "weights": str(result.output_dir / WEIGHTS_FILENAME),
            "config": str(result.output_dir / CONFIG_FILENAME),
        },
        code_paths=[str(path) for path in code_files()],
        signature=signature,
        pip_requirements=["mlx", "numpy", "pandas", "mlflow"],
    )
    return str(info.model_uri)


def register_challenger(
    mlflow_resource: MlflowResource, model_uri: str, tags: dict[str, str]
) -> ModelVersion:
    """Register and point ``challenger`` at the version; undo the registration if aliasing fails."""
    import mlflow

    name = mlflow_resource.model_name(MODEL_NAME)
    client = mlflow_resource.client()
    version = mlflow.register_model(model_uri, name, tags=tags)
    try:
        client.set_registered_model_alias(name, CHALLENGER_ALIAS, version.version)
    except Exception:
        client.delete_model_version(name, version.version)
        raise
    return version


def current_validation(dvc: DvcResource) -> pd.DataFrame:
    """The current validation split, read from an exact private snapshot."""
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="efficientai-validation-") as scratch:
        folder = dvc.snapshot(splits_version(dvc), Path(scratch) / "splits")
        return pd.read_parquet(folder / VALIDATION_SPLIT_FILE)


def evaluate_on_validation(
    mlflow: MlflowResource, version: ModelVersion, validation: pd.DataFrame
) -> float:
    """Accuracy of a registered version on ``validation``: its weights and config loaded by the
    project's own loader, as the bento serves them (no code from the registry runs). The
    champion step also checks the version's origin first (``origin.require_pipeline_model``)."""
    from efficientai_assets.defs.training.origin import accuracy_on, fetch_registered

    with tempfile.TemporaryDirectory(prefix="efficientai-evaluate-") as scratch:
        return accuracy_on(fetch_registered(mlflow, version, Path(scratch)), validation)
