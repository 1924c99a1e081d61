"""Shared setup of the seed-guide tests (``test_guide_*.py``): a working folder laid out as the
guide's snippets expect (relative ``data/`` and ``outputs/``, the home under it), a user's own
model saved with MLflow as code, and a served bento. No tests here; helpers only."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dvc.repo  # noqa: F401  (see below)
import pandas as pd
import pytest
from mlflow import MlflowClient

from resources.bentoml.servers import BentoServer
from resources.bentoml.store import BentoMLResource

# ``import dvc`` binds DVC's log handlers to the ``sys.stdout`` of that moment. Imported here, at
# collection, that is pytest's session-long stream; first imported inside a test that captures
# output (``capsys``), DVC would later write to the closed capture and fail every call.

# The model a guide user trains in their own code: it doubles "feature" (models-from-code: MLflow
# logs this file, not a pickle).
USER_MODEL_CODE = textwrap.dedent(
    """
    import pandas as pd
    from mlflow.models import set_model
    from mlflow.pyfunc import PythonModel


    class Doubler(PythonModel):
        def predict(self, context, model_input: pd.DataFrame, params=None):
            return model_input["feature"] * 2


    set_model(Doubler())
    """
)


def enter_guide_folder(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make ``root`` the working folder with ``data/`` and ``outputs/`` and the home at
    ``root/home`` (``EFFICIENTAI_HOME``), as a user following the guide would have it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "outputs").mkdir(exist_ok=True)
    monkeypatch.chdir(root)
    monkeypatch.setenv("EFFICIENTAI_HOME", str(root / "home"))
    for variable in ("EFFICIENTAI_PROJECT", "BENTOML_HOME", "EFFICIENTAI_MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MLFLOW_UV_AUTO_DETECT", "false")
    return root / "home"


def save_user_model(path: Path, with_signature: bool = True) -> Path:
    """A user's model saved as an MLflow model directory (models-from-code) at ``path``."""
    import mlflow
    from mlflow.models import infer_signature

    code = path.parent / f"{path.name}_code.py"
    code.write_text(USER_MODEL_CODE)
    example = pd.DataFrame({"feature": [1, 2, 3]})
    signature = infer_signature(example, pd.Series([2, 4, 6])) if with_signature else None
    mlflow.pyfunc.save_model(path=str(path), python_model=str(code), signature=signature)
    return path


def tracking(home: Path) -> MlflowClient:
    """MLflow's own client on the home's store: what the tests assert against."""
    uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextmanager
def served(home: Path, tag: str, env: dict[str, str] | None = None) -> Iterator[BentoServer]:
    """``bentoml serve <tag>`` from the home's store on a free loopback port, ready."""
    store = BentoMLResource(bentoml_home=str(home / "bentoml"), port=0)
    with store.serve(tag, env=env) as server:
        server.wait_until_ready(timeout=180)
        yield server


def predict(server: BentoServer, body: Any) -> Any:
    import httpx

    return httpx.post(server.url + "/predict", json=body, timeout=60)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("EFFICIENTAI_PROJECT", "BENTOML_HOME")}
