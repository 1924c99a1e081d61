"""Which models the client can deploy, and what each needs to be served.

Three forms are accepted (``ACCEPTED_FORMS``): the project's MLX folder (``weights.safetensors`` +
``config.json``, served by the MLX classifier service), an MLflow model directory (an ``MLmodel``
file) and a registry URI ``models:/<name>/<version>`` or ``models:/<name>@<alias>`` (downloaded
from the project's MLflow store); MLflow models are served through their pyfunc. Anything else is
an error listing the forms.

An MLflow model is inspected without loading it: its ``python_function`` flavour and signature
(the strict request schema, ``bento_service.pyfunc_settings.InputSpec``) and whether loading it
needs pickle. Only models-from-code (MLflow's ``code_model`` loader) with no pickle files load
without pickle; any other flavour (a cloudpickled ``PythonModel``, scikit-learn, PyTorch, ...) is
refused unless the user opts in through MLflow's own ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from efficientai_assets.bento_service.pyfunc_settings import (
    PICKLE_ENV,
    InputSpec,
    SchemaError,
    pickle_allowed,
)
from efficientai_assets.client.errors import (
    DeploymentError,
    InvalidArgumentError,
    PathNotFoundError,
    PickleModelRefusedError,
)
from efficientai_assets.client.guard import translate
from efficientai_assets.models.mlp import CONFIG_FILENAME, WEIGHTS_FILENAME
from efficientai_assets.names import TAG_DATA_MD5, TAG_GIT_SHA
from resources.mlflow.resource import MlflowResource

ACCEPTED_FORMS = (
    f"an MLX model folder ({WEIGHTS_FILENAME} + {CONFIG_FILENAME}, as "
    "efficientai_assets.models.mlp.save writes it)",
    "an MLflow model directory (holding an MLmodel file, e.g. from mlflow.pyfunc.save_model)",
    "a registry URI models:/<name>/<version> or models:/<name>@<alias>",
)
MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w.-]+))$")
CODE_LOADER = "mlflow.pyfunc.loaders.code_model"
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".cloudpickle", ".pt", ".pth"})


@dataclass(frozen=True)
class ModelSource:
    """A model to package: where its files are now, what form it has, where it came from."""

    kind: Literal["mlx", "mlflow"]
    path: Path
    given: str
    registered_name: str | None = None
    registered_version: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    def tag(self, key: str, default: str = "unknown") -> str:
        return dict(self.tags).get(key, default)

    @property
    def data_md5(self) -> str:
        return self.tag(TAG_DATA_MD5)

    @property
    def git_sha(self) -> str | None:
        return dict(self.tags).get(TAG_GIT_SHA)


@dataclass(frozen=True)
class MlflowModelSpec:
    """What serving an MLflow model needs, read from its MLmodel file."""

    input: InputSpec
    pickle_reason: str | None
    requirements: tuple[str, ...]
    flavours: tuple[str, ...]

    @property
    def framework(self) -> str:
        """The library flavour that made the model ("pyfunc" for a pure python_function)."""
        own = [flavour for flavour in self.flavours if flavour != "python_function"]
        return own[0] if own else "pyfunc"


def not_a_model(given: object, why: str) -> InvalidArgumentError:
    forms = "; ".join(ACCEPTED_FORMS)
    return InvalidArgumentError(f"cannot deploy {given!r}: {why}. Accepted: {forms}")


def resolve(model_path: object, mlflow: MlflowResource, scratch: Path) -> ModelSource:
    """The model ``model_path`` names; a registry URI is downloaded into ``scratch``."""
    if isinstance(model_path, str) and model_path.startswith("models:/"):
        return _from_registry(model_path, mlflow, scratch)
    if not isinstance(model_path, str | Path) or not str(model_path).strip():
        raise not_a_model(model_path, "it is not a path or a models:/ URI")
    folder = Path(model_path).expanduser()
    if not folder.exists():
        raise PathNotFoundError(f"cannot deploy: model folder {folder} does not exist")
    if not folder.is_dir():
        raise not_a_model(str(model_path), "it is a file, not a model folder")
    if (folder / "MLmodel").is_file():
        return ModelSource("mlflow", folder.resolve(), str(model_path))
    present = [name for name in (WEIGHTS_FILENAME, CONFIG_FILENAME) if (folder / name).is_file()]
    if len(present) == 2:
        return ModelSource("mlx", folder.resolve(), str(model_path))
    if present:
        missing = {WEIGHTS_FILENAME, CONFIG_FILENAME} - set(present)
        raise PathNotFoundError(f"cannot deploy {folder}: it lacks {', '.join(sorted(missing))}")
    raise not_a_model(str(model_path), "the folder holds neither an MLmodel file nor MLX weights")


def _from_registry(uri: str, mlflow: MlflowResource, scratch: Path) -> ModelSource:
    import mlflow as mlflow_lib

    match = MODELS_URI.match(uri)
    if match is None:
        raise not_a_model(uri, "it is not models:/<name>/<version> or models:/<name>@<alias>")
    name = match["name"]
    client = mlflow.client()
    try:
        version = (
            client.get_model_version(name, match["version"])
            if match["version"]
            else client.get_model_version_by_alias(name, match["alias"])
        )
        downloaded = mlflow_lib.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version.version}",
            dst_path=str(scratch / "registry"),
            tracking_uri=mlflow.resolved_tracking_uri(),
        )
    except Exception as error:
        raise translate(
            error,
            f"resolve {uri}",
            uri=mlflow.resolved_tracking_uri(),
            display_uri=mlflow.display_uri(),
            secrets=(mlflow.password,),
        ) from error
    path = Path(downloaded)
    if not (path / "MLmodel").is_file():
        raise DeploymentError(f"{uri} (version {version.version}) holds no MLmodel file")
    return ModelSource(
        "mlflow",
        path,
        uri,
        registered_name=name,
        registered_version=str(version.version),
        tags=tuple(sorted((str(k), str(v)) for k, v in (version.tags or {}).items())),
    )


def inspect_mlflow_model(source: ModelSource) -> MlflowModelSpec:
    """The request schema, pickle need and requirements of an MLflow model, without loading it.
    Raises when it cannot be served: no pyfunc, no signature, a signature not servable strictly,
    or pickle without the opt-in."""
    from mlflow.models import Model

    try:
        model = Model.load(str(source.path / "MLmodel"))
    except Exception as error:
        raise DeploymentError(f"cannot read {source.given}'s MLmodel file: {error}") from error
    pyfunc: dict[str, Any] = dict(model.flavors.get("python_function") or {})
    if not pyfunc:
        raise DeploymentError(
            f"{source.given} has no python_function flavour (flavours: {sorted(model.flavors)}): "
            "MLflow cannot load it as a pyfunc, so it cannot be served here"
        )
    if model.signature is None:
        raise DeploymentError(
            f"{source.given} has no signature, so no strict request schema can be built: save it "
            "with signature=mlflow.models.infer_signature(example_input, example_output)"
        )
    try:
        spec = InputSpec.from_signature_inputs(model.signature.inputs.to_dict())
    except SchemaError as error:
        raise DeploymentError(f"{source.given}: {error}") from error
    reason = pickle_reason(pyfunc, source.path)
    if reason is not None and not pickle_allowed():
        raise PickleModelRefusedError(
            f"refusing {source.given}: {reason}, and loading a pickle runs code from the file. "
            f"Set {PICKLE_ENV}=true (MLflow's own switch) to allow pickle-based models you "
            "trust, or save the model as code (mlflow models-from-code) with non-pickle weights "
            "(safetensors, ONNX)"
        )
    requirements_file = source.path / "requirements.txt"
    requirements = (
        tuple(
            line.strip()
            for line in requirements_file.read_text().splitlines()
            if line.strip() and not line.startswith(("#", "-"))
        )
        if requirements_file.is_file()
        else ()
    )
    return MlflowModelSpec(spec, reason, requirements, tuple(sorted(model.flavors)))


def pickle_reason(pyfunc: dict[str, Any], folder: Path) -> str | None:
    """Why loading this model needs pickle, or None when it is models-from-code without pickle
    files. Conservative: a flavour not shown to be pickle-free counts as pickle."""
    loader = str(pyfunc.get("loader_module", ""))
    if loader == "mlflow.pyfunc.model":
        return "its python_function flavour is a cloudpickled PythonModel"
    if loader != CODE_LOADER:
        flavour = loader.removeprefix("mlflow.") or "unknown"
        return f"its {flavour} flavour loads its model with pickle (or a format MLflow gates alike)"
    pickled = sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.suffix.lower() in PICKLE_SUFFIXES and path.is_file()
    )
    if pickled:
        return f"it holds pickle files {pickled[:5]} its code may load"
    return None
