"""MLflow pyfunc model logged *as code*: it rebuilds the MLX network from safetensors, no pickle.

Logged with ``mlflow.pyfunc.log_model(python_model=<this file>, artifacts={"weights", "config"})``;
MLflow runs this file at load time and takes the model given to ``set_model``. The family the
weights belong to (MLP, CNN, ...) is read from ``config.json`` by ``families.load_classifier``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

try:  # inside the project
    from efficientai_assets.models.families import load_classifier
except ImportError:  # loaded elsewhere: the model modules travel with the model as code paths
    from families import load_classifier  # type: ignore[no-redef]


class MLXPyfuncModel(PythonModel):
    """Predicts the class and its probabilities for rows of features."""

    def load_context(self, context: Any) -> None:
        self.classifier = load_classifier(context.artifacts["weights"], context.artifacts["config"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        names = list(self.classifier.config.feature_names)
        missing = [name for name in names if name not in model_input.columns]
        if missing:
            raise ValueError(f"input lacks feature columns {missing[:10]}")
        proba = self.classifier.predict_proba(model_input[names].to_numpy(dtype=np.float32))
        classes = np.asarray(self.classifier.config.classes)
        frame = pd.DataFrame(proba, columns=[f"proba_{c}" for c in classes])
        frame.insert(0, "label", classes[proba.argmax(axis=1)])
        return frame


set_model(MLXPyfuncModel())
