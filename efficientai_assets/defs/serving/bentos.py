"""From a registered MLflow version to its bento: download, verify, import, build or reuse.

The bento tag is recorded on the model version (``efficientai.bento_tag``), so a later move that
serves the same version — a canary, a rollback — finds the bento that served before instead of
building another.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from efficientai_assets.defs.serving.packaging import build_service_bento
from efficientai_assets.models.mlp import CONFIG_FILENAME, WEIGHTS_FILENAME
from efficientai_assets.names import TAG_BENTO, TAG_DATA_MD5, TAG_GIT_SHA
from resources.bentoml.store import BentoMLResource
from resources.bentoml.types import BentoInfo, ModelProvenance, ServedModel
from resources.mlflow.resource import MlflowResource

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion


def provenance_of(version: ModelVersion) -> ModelProvenance:
    """The version's name, number, data md5 and git sha (``unknown`` where a tag is missing)."""
    return ModelProvenance(
        model_name=str(version.name),
        model_version=str(version.version),
        data_md5=version.tags.get(TAG_DATA_MD5, "unknown"),
        git_sha=version.tags.get(TAG_GIT_SHA, "unknown"),
    )


def download_model_files(mlflow: MlflowResource, version: ModelVersion, target: Path) -> Path:
    """The version's safetensors weights and JSON config, copied into ``target`` and verified
    by loading them (so a corrupt artifact fails here, before anything is built)."""
    import mlflow as mlflow_lib
    import yaml

    from efficientai_assets.models.families import load_classifier_dir

    mlflow.client()  # points the fluent API at this store
    downloaded = Path(
        mlflow_lib.artifacts.download_artifacts(
            artifact_uri=f"models:/{version.name}/{version.version}",
            dst_path=str(target / "mlflow"),
        )
    )
    mlmodel = yaml.safe_load((downloaded / "MLmodel").read_text())
    artifacts = mlmodel.get("flavors", {}).get("python_function", {}).get("artifacts", {})
    missing = [key for key in ("weights", "config") if key not in artifacts]
    if missing:
        raise dg.Failure(
            f"{version.name} version {version.version} is not an efficientai MLX model: "
            f"its MLmodel lacks the artifacts {missing}"
        )
    model_dir = target / "model"
    model_dir.mkdir(parents=True)
    shutil.copyfile(downloaded / artifacts["weights"]["path"], model_dir / WEIGHTS_FILENAME)
    shutil.copyfile(downloaded / artifacts["config"]["path"], model_dir / CONFIG_FILENAME)
    try:
        load_classifier_dir(model_dir)
    except Exception as error:
        raise dg.Failure(
            f"{version.name} version {version.version}: its weights do not load: {error}"
        ) from error
    return model_dir


def build_bento_for_version(
    mlflow: MlflowResource, bentoml: BentoMLResource, version: ModelVersion
) -> BentoInfo:
    """Import the version's weights into the BentoML store and build its bento (or reuse the
    identical one); the bento tag is recorded on the model version."""
    provenance = provenance_of(version)
    run_id = str(version.run_id or "")
    with tempfile.TemporaryDirectory(prefix="efficientai-serving-") as scratch:
        model_dir = download_model_files(mlflow, version, Path(scratch))
        _, info = build_service_bento(
            bentoml,
            model_dir,
            provenance,
            metadata={"mlflow_run_id": run_id, "mlflow_source": str(version.source)},
            extra_labels={"mlflow_run_id": run_id},
        )
    mlflow.client().set_model_version_tag(version.name, version.version, TAG_BENTO, info.tag)
    return info


def bento_for_version(
    mlflow: MlflowResource, bentoml: BentoMLResource, version: ModelVersion
) -> BentoInfo:
    """The bento last built for this version when the store still holds it, else a new build."""
    recorded = version.tags.get(TAG_BENTO)
    if recorded:
        info = bentoml.get_bento(recorded)
        if info is not None and info.labels.get("model_version") == str(version.version):
            return info
    return build_bento_for_version(mlflow, bentoml, version)


def served_model(version: ModelVersion, info: BentoInfo) -> ServedModel:
    """The version as a deployment record names it: number, bento and provenance."""
    return ServedModel(
        model_version=str(version.version),
        bento_tag=info.tag,
        data_md5=info.labels.get("data_md5", ""),
        git_sha=info.labels.get("git_sha", ""),
    )


def bento_metadata(info: BentoInfo) -> dict[str, Any]:
    """The Dagster metadata of a bento: tag, size, path, labels, and how to serve it."""
    return {
        "bento_tag": dg.MetadataValue.text(info.tag),
        "bento_size_bytes": info.size_bytes,
        "bento_path": dg.MetadataValue.path(str(info.path)),
        "bento_labels": dg.MetadataValue.json(info.labels),
        "bento_models": dg.MetadataValue.text(", ".join(info.model_tags)),
        "built": info.built,
        "serve_command": dg.MetadataValue.md(f"`bentoml serve {info.tag}` (BENTOML_HOME set)"),
        "containerize_command": dg.MetadataValue.md(f"`bentoml containerize {info.tag}`"),
    }
