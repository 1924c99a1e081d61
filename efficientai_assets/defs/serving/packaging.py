"""What the project's bentos carry, handed to the BentoML resource (which knows only BentoML).

A bento holds a copy of ``efficientai_assets/bento_service/`` and of the model-family modules
(``efficientai_assets/models/``, ``families.code_files``) at the same import paths as in this tree
(so the service's imports work unchanged inside it), the ``serving.json`` the service reads (model tag, provenance, limits), pinned requirements and a
README. ``build_service_bento`` is the one way an MLX model folder becomes a served bento: the
``model_bento`` asset, the deployment move and the client all go through it. The router of a
canary or shadow deployment is the service package's ``router`` module, run from this tree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from efficientai_assets.bento_service.settings import SETTINGS_FILENAME
from efficientai_assets.models.families import code_files
from efficientai_assets.models.mlp import CONFIG_FILENAME, WEIGHTS_FILENAME
from resources.bentoml.store import BentoMLResource
from resources.bentoml.types import (
    BentoInfo,
    ImportedModel,
    ModelProvenance,
    PackageFile,
    RouterProgram,
    ServicePackage,
)

PACKAGE_DIR = Path(__file__).resolve().parents[2]  # efficientai_assets/
PROJECT_ROOT = PACKAGE_DIR.parent
PACKAGE = PACKAGE_DIR.name
SERVICE_DIR = PACKAGE_DIR / "bento_service"
SERVICE_IMPORT = f"{PACKAGE}.bento_service.service:MLXClassifierService"
ROUTER_MODULE = f"{PACKAGE}.bento_service.router"
SETTINGS_PATH = f"{PACKAGE}/bento_service/{SETTINGS_FILENAME}"

# The files of a model folder the service loads, in the order their digest is taken.
MODEL_FILES = (WEIGHTS_FILENAME, CONFIG_FILENAME)

# Distributions the service imports, pinned to the versions installed here (mlx apart: its
# Linux wheel is the CPU build).
SERVICE_REQUIREMENTS = ("bentoml", "numpy", "pydantic", "starlette", "annotated-types")

# Package markers: the bento's copy is a regular package, so it wins over any installed one.
MARKERS = {
    f"{PACKAGE}/__init__.py": '"""The parts of efficientai that serve a model."""\n',
    f"{PACKAGE}/models/__init__.py": "",
}


def router_program() -> RouterProgram:
    """The canary/shadow router, started from this tree (it is not part of any bento's API)."""
    return RouterProgram(module=ROUTER_MODULE, cwd=PROJECT_ROOT)


def service_files() -> tuple[PackageFile, ...]:
    """The model-family modules and every module of the service package, at their import paths."""
    return (
        *(PackageFile(source, f"{PACKAGE}/models/{source.name}") for source in code_files()),
        *(
            PackageFile(source, f"{PACKAGE}/bento_service/{source.name}")
            for source in sorted(SERVICE_DIR.glob("*.py"))
        ),
    )


def service_requirements() -> tuple[str, ...]:
    """Requirement lines pinned to what is installed here."""
    pins = [f"{dist}=={importlib_metadata.version(dist)}" for dist in SERVICE_REQUIREMENTS]
    mlx = importlib_metadata.version("mlx")
    pins += [
        f'mlx[cpu]=={mlx}; sys_platform == "linux"',
        f'mlx=={mlx}; sys_platform == "darwin"',
    ]
    return tuple(pins)


def serving_settings(
    store: BentoMLResource,
    model_tag: str,
    provenance: ModelProvenance,
    model_config: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``serving.json`` a bento is built with: the model, its provenance, the store's limits."""
    return {
        "bento_model_tag": model_tag,
        **provenance.labels(),
        "n_features": len(model_config["feature_names"]),
        "feature_names": list(model_config["feature_names"]),
        "classes": [int(c) for c in model_config["classes"]],
        "max_rows": store.max_rows,
        "max_body_bytes": store.max_body_bytes,
        "max_batch_size": store.max_batch_size,
        "max_latency_ms": store.max_latency_ms,
        "token_env": store.token_env,
    }


def bento_readme(settings: Mapping[str, Any]) -> str:
    """The bento's description (``bentoml get``): what to send and what comes back."""
    return (
        f"# {settings['model_name']} version {settings['model_version']}\n\n"
        "An MLX classifier served by BentoML. `POST /predict` with "
        f'`{{"instances": [[...{settings["n_features"]} numbers...], ...]}}` (at most '
        f"{settings['max_rows']} rows, {settings['max_body_bytes']} bytes) returns a label and the "
        "class probabilities for each row. `GET /metadata` names the model version, data md5 and "
        "git sha; `/readyz` is 503 until the weights are loaded.\n\n"
        f"Data md5: `{settings['data_md5']}`. Git sha: `{settings['git_sha']}`.\n"
    )


def service_package(
    store: BentoMLResource, model: ImportedModel, provenance: ModelProvenance
) -> ServicePackage:
    """Everything the bento of ``model`` carries besides the model itself."""
    model_config = json.loads((model.path / CONFIG_FILENAME).read_text())
    missing = [key for key in ("feature_names", "classes") if key not in model_config]
    if missing:
        raise ValueError(
            f"{model.tag}: its {CONFIG_FILENAME} lacks {missing}; save the model with "
            "efficientai_assets.models.mlp.save"
        )
    settings = serving_settings(store, model.tag, provenance, model_config)
    return ServicePackage(
        service=SERVICE_IMPORT,
        files=service_files(),
        settings_path=SETTINGS_PATH,
        settings=settings,
        requirements=service_requirements(),
        include=(f"{PACKAGE}/**/*.py", SETTINGS_PATH, "README.md"),
        markers=MARKERS,
        readme=bento_readme(settings),
    )


def build_service_bento(
    store: BentoMLResource,
    model_dir: Path,
    provenance: ModelProvenance,
    metadata: Mapping[str, Any] | None = None,
    extra_labels: Mapping[str, str] | None = None,
) -> tuple[ImportedModel, BentoInfo]:
    """Import the MLX model folder's weights and config into the BentoML store and build the
    service's bento around them (or reuse the identical one)."""
    imported = store.import_model(model_dir, provenance, metadata=metadata, files=MODEL_FILES)
    package = service_package(store, imported, provenance)
    return imported, store.build_bento(imported, provenance, package, extra_labels=extra_labels)
