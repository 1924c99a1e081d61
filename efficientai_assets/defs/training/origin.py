"""A registered version read as files, never run as code: its origin for ``promotion.origin_refusal``
and its weights loaded by the project's own loader.

``mlflow.pyfunc.load_model`` executes whatever code a version carries (a models-from-code file,
a cloudpickle), so a version planted in the registry would run inside the Dagster process the
moment it is scored. Here a version is downloaded as plain files; its origin is read from the
registry, its run and its ``MLmodel`` (YAML); only once ``origin_refusal`` accepts it are its two
model files — safetensors weights and a JSON config — loaded with ``families.load_classifier``
(the family named in the config), exactly as the served bento loads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from efficientai_assets.defs.training.promotion import MODEL_FILES, Origin, origin_refusal
from efficientai_assets.names import LABEL_COLUMN
from resources.mlflow.resource import MlflowResource

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion


@dataclass(frozen=True)
class FetchedModel:
    """A version's files downloaded into ``folder`` and what the registry says of its origin."""

    origin: Origin
    folder: Path


def fetch_registered(mlflow: MlflowResource, version: ModelVersion, folder: Path) -> FetchedModel:
    """Download ``version``'s files into ``folder`` and read its origin (nothing is executed)."""
    import mlflow as mlflow_lib
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    client = mlflow.client()  # also points the fluent API at this store
    run_id = str(version.run_id or "")
    run_tags: dict[str, str] | None = None
    run_status = ""
    if run_id:
        try:
            run = client.get_run(run_id)
            run_tags, run_status = dict(run.data.tags), str(run.info.status)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
    downloaded = Path(
        mlflow_lib.artifacts.download_artifacts(
            artifact_uri=f"models:/{version.name}/{version.version}", dst_path=str(folder)
        )
    )
    model = Model.load(str(downloaded))
    signature = model.signature
    origin = Origin(
        version=str(version.version),
        version_tags=dict(version.tags),
        run_id=run_id,
        run_tags=run_tags,
        run_status=run_status,
        model_run_id=str(model.run_id or ""),
        flavour=model.flavors.get("python_function"),
        input_columns=tuple(signature.inputs.input_names()) if signature is not None else None,
    )
    return FetchedModel(origin=origin, folder=downloaded)


def require_pipeline_model(model_name: str, role: str, fetched: FetchedModel) -> None:
    """Fail the step, naming the version and why, unless the pipeline produced it."""
    refusal = origin_refusal(model_name, role, fetched.origin)
    if refusal is not None:
        raise dg.Failure(refusal)


def predict_labels(fetched: FetchedModel, features: pd.DataFrame) -> np.ndarray:
    """Class labels for rows of ``features``, from the version's weights and config loaded by the
    project's loader (call ``require_pipeline_model`` first). Fails naming missing columns."""
    import numpy as np

    from efficientai_assets.models.families import load_classifier

    classifier = load_classifier(
        fetched.folder / MODEL_FILES["weights"], fetched.folder / MODEL_FILES["config"]
    )
    names = list(classifier.config.feature_names)
    missing = [name for name in names if name not in features.columns]
    if missing:
        raise dg.Failure(
            f"version {fetched.origin.version} takes columns this data lacks: {missing[:10]}"
        )
    return classifier.predict(features[names].to_numpy(dtype=np.float32))


def accuracy_on(fetched: FetchedModel, frame: pd.DataFrame) -> float:
    """Accuracy of the version on the labelled rows of ``frame`` (its label column)."""
    predicted = predict_labels(fetched, frame.drop(columns=[LABEL_COLUMN]))
    return float((predicted == frame[LABEL_COLUMN].to_numpy()).mean())
