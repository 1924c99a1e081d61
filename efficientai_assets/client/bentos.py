"""A client model (``model_sources.ModelSource``) into the BentoML store and a bento around it.

The project's MLX folder goes through the serving capability's one build path
(``defs/serving/packaging.build_service_bento``, the MLX classifier service). An MLflow model is
imported whole (every file of its directory) and built with the same service package files
(``packaging.service_files``) but the pyfunc service (``bento_service/pyfunc_service``), its
``pyfunc_serving.json`` (signature schema, pickle need, the store's limits) and requirements
pinned to what is installed here plus the model's own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from typing import Any

from efficientai_assets.bento_service.pyfunc_settings import (
    PYFUNC_SETTINGS_FILENAME,
    PyfuncSettings,
)
from efficientai_assets.client.model_sources import MlflowModelSpec, ModelSource
from efficientai_assets.defs.serving.packaging import (
    MARKERS,
    PACKAGE,
    build_service_bento,
    service_files,
    service_requirements,
)
from resources.bentoml.store import BentoMLResource
from resources.bentoml.types import BentoInfo, ImportedModel, ModelProvenance, ServicePackage

PYFUNC_SERVICE = f"{PACKAGE}.bento_service.pyfunc_service:PyfuncModelService"
PYFUNC_SETTINGS_PATH = f"{PACKAGE}/bento_service/{PYFUNC_SETTINGS_FILENAME}"
# What the pyfunc service imports besides the MLX service's requirements.
PYFUNC_REQUIREMENTS = ("mlflow", "pandas")
SERVING_LABEL = "serving"


@dataclass(frozen=True)
class BuiltBento:
    """The imported model, its bento, and which service serves it."""

    imported: ImportedModel
    bento: BentoInfo
    serving: str  # "mlx-classifier" or "mlflow-pyfunc"


def _distribution(line: str) -> str:
    return re.split(r"[\s=<>!~;\[]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyfunc_requirements(spec: MlflowModelSpec) -> tuple[str, ...]:
    """The service's pins, then the model's own requirements for anything not pinned already."""
    pins = [*service_requirements()]
    pins += [f"{dist}=={importlib_metadata.version(dist)}" for dist in PYFUNC_REQUIREMENTS]
    pinned = {_distribution(line) for line in pins}
    extra = [line for line in spec.requirements if _distribution(line) not in pinned]
    return (*pins, *extra)


def pyfunc_readme(settings: PyfuncSettings) -> str:
    return (
        f"# {settings.model_name} version {settings.model_version}\n\n"
        f"An MLflow model ({settings.model_framework}) served through its pyfunc by BentoML. "
        f'`POST /predict` with `{{"instances": [{settings.input.describe()}, ...]}}` (at most '
        f"{settings.max_rows} instances, {settings.max_body_bytes} bytes; the schema is the "
        "model's signature, strictly) returns the model's output for each instance. "
        "`GET /metadata` names the model and its input schema; `/readyz` is 503 until the model "
        f"is loaded.\n\nPackaged from `{settings.source}`.\n"
    )


def pyfunc_package(
    store: BentoMLResource,
    imported: ImportedModel,
    provenance: ModelProvenance,
    spec: MlflowModelSpec,
    model_framework: str,
    source: ModelSource,
) -> ServicePackage:
    """Everything the bento of an MLflow model carries besides the model itself."""
    settings = PyfuncSettings(
        bento_model_tag=imported.tag,
        **provenance.labels(),
        input=spec.input,
        model_framework=model_framework,
        pickle_reason=spec.pickle_reason,
        max_rows=store.max_rows,
        max_body_bytes=store.max_body_bytes,
        token_env=store.token_env,
        source=source.given,
    )
    return ServicePackage(
        service=PYFUNC_SERVICE,
        files=service_files(),
        settings_path=PYFUNC_SETTINGS_PATH,
        settings=json.loads(settings.to_json()),
        requirements=pyfunc_requirements(spec),
        include=(f"{PACKAGE}/**/*.py", PYFUNC_SETTINGS_PATH, "README.md"),
        markers=MARKERS,
        readme=pyfunc_readme(settings),
    )


def build_model_bento(
    store: BentoMLResource,
    source: ModelSource,
    spec: MlflowModelSpec | None,
    provenance: ModelProvenance,
    model_framework: str,
    labels: Mapping[str, str],
    metadata: Mapping[str, Any],
) -> BuiltBento:
    """Import ``source`` and build (or reuse) its bento; ``spec`` is required for MLflow models
    (``model_sources.inspect_mlflow_model``, checked before anything is written)."""
    if source.kind == "mlx":
        imported, bento = build_service_bento(
            store, source.path, provenance, metadata=metadata, extra_labels=labels
        )
        return BuiltBento(imported, bento, "mlx-classifier")
    if spec is None:
        raise ValueError("an MLflow model needs its inspected spec to be packaged")
    files = sorted(
        path.relative_to(source.path).as_posix()
        for path in source.path.rglob("*")
        if path.is_file() and not path.is_symlink()
    )
    imported = store.import_model(
        source.path, provenance, metadata={**metadata, "files": files}, files=files
    )
    package = pyfunc_package(store, imported, provenance, spec, model_framework, source)
    extra = {**labels, SERVING_LABEL: "mlflow-pyfunc", "model_framework": model_framework}
    bento = store.build_bento(imported, provenance, package, extra_labels=extra)
    return BuiltBento(imported, bento, "mlflow-pyfunc")
