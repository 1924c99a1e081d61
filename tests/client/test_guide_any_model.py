"""Any model deployable: an MLflow model directory or a ``models:/`` URI is packaged and served
through its pyfunc behind a strict schema from its signature (real ``bentoml build`` and
``bentoml serve``); pickle-based models need MLflow's own opt-in; anything else is refused with
the accepted forms."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import bentoml_list
from test_guide_support import enter_guide_folder, predict, save_user_model, served, tracking

from efficientai_assets.client import MLOpsClient, MLOpsClientError
from efficientai_assets.client.errors import DeploymentError, PickleModelRefusedError
from efficientai_assets.client.packager import package_model
from resources.bentoml.store import BentoMLResource

PICKLE = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"

# A user's model whose weights are safetensors, loaded by its own code: no pickle anywhere.
SAFETENSORS_CODE = textwrap.dedent(
    """
    import numpy as np
    from mlflow.models import set_model
    from mlflow.pyfunc import PythonModel
    from safetensors.numpy import load_file


    class Linear(PythonModel):
        def load_context(self, context):
            self.weights = load_file(context.artifacts["weights"])["w"]

        def predict(self, context, model_input, params=None):
            return np.asarray(model_input, dtype=np.float32) @ self.weights


    set_model(Linear())
    """
)


@pytest.fixture
def guide_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(PICKLE, "false")
    return enter_guide_folder(tmp_path / "work", monkeypatch)


def register_user_model(home: Path, registered: str) -> str:
    """Log the user's model in the home's MLflow store and register it (alias ``champion``)."""
    import mlflow
    from mlflow.models import infer_signature

    uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    code = save_user_model(Path("outputs/model")).parent / "model_code.py"
    signature = infer_signature(pd.DataFrame({"feature": [1, 2]}), pd.Series([2, 4]))
    with mlflow.start_run(run_name="user-training"):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            signature=signature,
            registered_model_name=registered,
        )
    version = str(info.registered_model_version)
    store = tracking(home)
    store.set_registered_model_alias(registered, "champion", version)
    store.set_model_version_tag(registered, version, "efficientai.data_md5", "d41d8cd9")
    return version


def test_a_registered_model_deploys_by_alias_and_by_version_and_serves_strictly(
    guide_home: Path,
) -> None:
    client = MLOpsClient(project_namespace="my-project")
    version = register_user_model(guide_home, "my-project-doubler")

    by_alias = client.deploy_model("models:/my-project-doubler@champion", "doubler", "champion")
    by_version = package_model("models:/my-project-doubler/1", "doubler", project_name="my-project")

    assert by_alias["status"] == "success" and by_alias["serving"] == "mlflow-pyfunc"
    assert by_version["version"] == version == "1"  # the registry's version by default
    listed = bentoml_list(guide_home / "bentoml")
    for result in (by_alias, by_version):
        labels = listed[result["bento_tag"]]
        assert labels["model_name"] == "my-project-doubler"
        assert labels["data_md5"] == "d41d8cd9"  # provenance from the registry version's tags
        assert labels["model_framework"] == "pyfunc"

    with served(guide_home, by_version["bento_tag"]) as server:
        answer = predict(server, {"instances": [{"feature": 5}, {"feature": 7}]})
        assert (answer.status_code, answer.json()) == (200, [10, 14])
        for body, problem in (
            ({"instances": [{"feature": 1.5}]}, "valid integer"),
            ({"instances": [{"feature": 1, "extra": 2}]}, "Extra inputs"),
            ({"instances": [{}]}, "Field required"),
            ({"rows": [{"feature": 1}]}, "instances"),
        ):
            refused = predict(server, body)
            assert refused.status_code == 400 and problem in refused.text, body
        metadata = httpx.get(server.url + "/metadata", timeout=30).json()
        assert metadata["input"]["columns"] == [
            {"name": "feature", "type": "long", "required": True}
        ]
        assert (metadata["model_version"], metadata["pickle"]) == ("1", None)


def test_a_models_from_code_model_with_safetensors_weights_serves_its_tensor_schema(
    guide_home: Path,
) -> None:
    import mlflow
    from mlflow.models import infer_signature
    from safetensors.numpy import save_file

    weights = Path("outputs/weights.safetensors")
    save_file({"w": np.array([1.0, 2.0, 3.0], dtype=np.float32)}, str(weights))
    code = Path("outputs/linear.py")
    code.write_text(SAFETENSORS_CODE)
    example = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    mlflow.pyfunc.save_model(
        path="outputs/linear",
        python_model=str(code),
        artifacts={"weights": str(weights)},
        signature=infer_signature(example, np.array([1.0], dtype=np.float32)),
    )

    result = MLOpsClient(project_namespace="my-project").deploy_model(
        "outputs/linear", model_name="linear", version="1"
    )

    assert result["status"] == "success", result
    with served(guide_home, result["bento_tag"]) as server:
        answer = predict(server, {"instances": [[1.0, 1.0, 1.0], [0.5, 0.0, 2.0]]})
        assert answer.status_code == 200
        assert answer.json() == pytest.approx([6.0, 6.5])
        assert predict(server, {"instances": [[1.0, 2.0]]}).status_code == 400  # width 3
        not_finite = httpx.post(
            server.url + "/predict",
            content=b'{"instances": [[1.0, 2.0, NaN]]}',
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        assert not_finite.status_code == 400


def test_pickle_models_are_refused_unless_mlflows_own_switch_opts_in(
    guide_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    features = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    fitted = LogisticRegression().fit(features, [0, 0, 1, 1])
    mlflow.sklearn.save_model(
        fitted, "outputs/sk", signature=infer_signature(features, fitted.predict(features))
    )
    client = MLOpsClient(project_namespace="my-project")

    with pytest.raises(PickleModelRefusedError, match=f"sklearn flavour.*{PICKLE}=true") as no:
        client.deploy_model("outputs/sk", model_name="sk", version="1")
    assert isinstance(no.value, MLOpsClientError) and isinstance(no.value, PermissionError)
    assert bentoml_list(guide_home / "bentoml") == {}  # nothing was built

    monkeypatch.setenv(PICKLE, "true")
    allowed = client.deploy_model("outputs/sk", model_name="sk", version="1")
    assert allowed["status"] == "success" and allowed["model_framework"] == "sklearn"
    store = BentoMLResource(bentoml_home=str(guide_home / "bentoml"), port=0)
    with store.serve(allowed["bento_tag"], env={PICKLE: "false"}) as closed:
        closed.wait_until_listening(timeout=180)
        reason = ""
        for _ in range(240):  # the model is refused at load: up, never ready, saying why
            metadata = httpx.get(closed.url + "/metadata", timeout=30).json()
            reason = metadata["not_ready_reason"] or ""
            if "pickle" in reason:
                break
            time.sleep(0.5)
        assert f"{PICKLE}=true" in reason
        assert httpx.get(closed.url + "/readyz", timeout=30).status_code == 503
    with served(guide_home, allowed["bento_tag"]) as opened:  # this process opted in: inherited
        answer = predict(opened, {"instances": [{"a": 3.0, "b": 0.0}, {"a": 0.0, "b": 1.0}]})
        assert (answer.status_code, answer.json()) == (200, [1, 0])


def test_models_that_cannot_be_served_are_refused_naming_why(guide_home: Path) -> None:
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.pyfunc import PythonModel

    client = MLOpsClient(project_namespace="my-project")
    save_user_model(Path("outputs/unsigned"), with_signature=False)
    with pytest.raises(DeploymentError, match="has no signature"):
        client.deploy_model("outputs/unsigned", model_name="unsigned", version="1")

    class Echo(PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    mlflow.pyfunc.save_model(
        "outputs/pickled",
        python_model=Echo(),
        signature=infer_signature(pd.DataFrame({"x": [1.0]}), pd.DataFrame({"x": [1.0]})),
    )
    with pytest.raises(PickleModelRefusedError, match="cloudpickled PythonModel"):
        package_model("outputs/pickled", "echo", project_name="my-project")

    when = pd.DataFrame({"at": pd.to_datetime(["2026-01-01"])})
    save_path = Path("outputs/dated")
    code = save_user_model(Path("outputs/tmp-model")).parent / "tmp-model_code.py"
    mlflow.pyfunc.save_model(
        str(save_path), python_model=str(code), signature=infer_signature(when, [1])
    )
    with pytest.raises(DeploymentError, match="'at' has type 'datetime'; servable types"):
        client.deploy_model(save_path, model_name="dated", version="1")

    Path("outputs/notes").mkdir()
    (Path("outputs/notes") / "readme.txt").write_text("not a model")
    for bad in ("outputs/notes", "models:/no-such-form", "outputs/train.csv"):
        if bad.endswith(".csv"):
            Path(bad).write_text("a,b\n")
        with pytest.raises(MLOpsClientError, match="Accepted: an MLX model folder") as raised:
            client.deploy_model(bad, model_name="x", version="1")
        assert "models:/<name>/<version> or models:/<name>@<alias>" in str(raised.value)
        assert isinstance(raised.value, ValueError)
    with pytest.raises(MLOpsClientError, match=r"models:/my-project-ghost@champion"):
        client.deploy_model("models:/my-project-ghost@champion", model_name="ghost", version="1")
    assert bentoml_list(guide_home / "bentoml") == {}
