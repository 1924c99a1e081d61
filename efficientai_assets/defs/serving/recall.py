"""The serving steps answered from their last record when nothing they serve changed, without
loading MLflow or BentoML (``import mlflow`` and a ``bentoml get`` child cost seconds; a re-run
with nothing changed only needs to confirm what the last run recorded).

- ``model_bento``: a bento is a function of the champion version (number, run, provenance tags),
  the service code and its pinned requirements, and the store's serving settings. Their
  fingerprint is recorded with each bento; when the ``champion`` alias (read with the registry
  peek) still points at the recorded version, that version still names the recorded bento, the
  fingerprint is unchanged and the bento and its model are still in the store's folder, the
  bento is the one a build would reuse: no download, no build, no hardware gate.
- ``deployment``: a plain ``deploy`` (no canary, shadow, reason or requester given, BentoML
  backend) of the champion that the newest deployment record already serves alone, with the
  registry's deployment tags of that record in place, changes nothing: the record stands and no
  new one is written.

Any miss (no record, a tracking server, a moved alias, a changed tag, file or setting, a missing
bento) returns None and the step does its full work — a real change still builds and deploys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from efficientai_assets.defs.data.memo import INPUT_FINGERPRINT, MEMOIZED, recorded_metadata
from efficientai_assets.defs.serving.config import DeploymentConfig
from efficientai_assets.defs.serving.packaging import service_files, service_requirements
from efficientai_assets.defs.serving.rollout import MoveRequest
from efficientai_assets.defs.training.registry_peek import PeekedVersion, peek_aliases
from efficientai_assets.names import (
    BENTO_ASSET,
    CHAMPION_ALIAS,
    DEPLOYMENT_ASSET,
    MODEL_NAME,
    TAG_BENTO,
    TAG_DATA_MD5,
    TAG_DEPLOYMENT_ID,
    TAG_DEPLOYMENT_ROLE,
    TAG_GIT_SHA,
)
from efficientai_assets.provenance import stable_hash
from resources.bentoml.store import BentoMLResource
from resources.mlflow.resource import MlflowResource

# What a recalled bento materialization repeats from the record (the gate's readings are not
# repeated: no gate ran).
BENTO_KEYS = (
    "bento_tag",
    "bento_size_bytes",
    "bento_path",
    "bento_labels",
    "bento_models",
    "serve_command",
    "containerize_command",
    "model_name",
    "model_version",
    "data_md5",
    "git_sha",
)


def bento_fingerprint(
    bentoml: BentoMLResource,
    model_name: str,
    version: str,
    run_id: str,
    tags: Mapping[str, str],
    code_version: str,
) -> str:
    """Everything the champion's bento is built from, as a build would see it now: the version
    and its provenance, the service code's bytes, the pinned requirements and the store's
    settings (a changed limit or home gives another bento)."""
    code = {item.target: _sha256(item.source) for item in service_files()}
    return stable_hash(
        {
            "code_version": code_version,
            "model": [model_name, version, run_id],
            "provenance": [tags.get(TAG_DATA_MD5, ""), tags.get(TAG_GIT_SHA, "")],
            "service": code,
            "requirements": list(service_requirements()),
            "store": {
                "home": str(bentoml.resolved_home()),
                "max_rows": bentoml.max_rows,
                "max_body_bytes": bentoml.max_body_bytes,
                "max_batch_size": bentoml.max_batch_size,
                "max_latency_ms": bentoml.max_latency_ms,
                "token_env": bentoml.token_env,
                "python_version": bentoml.python_version,
            },
        }
    )


def bento_in_store(bentoml: BentoMLResource, tag: str, model_tags: list[str]) -> bool:
    """Whether the store's folder still holds bento ``tag`` and each of its models (the files
    ``bentoml get`` would read; no BentoML needed)."""
    home = bentoml.resolved_home()
    parts = [tag, *model_tags]
    if any(part.count(":") != 1 or "/" in part or ".." in part for part in parts):
        return False
    name, version = tag.split(":")
    if not (home / "bentos" / name / version / "bento.yaml").is_file():
        return False
    return all((home / "models" / Path(*m.split(":")) / "model.yaml").is_file() for m in model_tags)


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"


def _champion(mlflow: MlflowResource, name: str) -> PeekedVersion | None:
    peeked = peek_aliases(mlflow, name, (CHAMPION_ALIAS,))
    return peeked.get(CHAMPION_ALIAS) if peeked else None


def _model_tags(text: object) -> list[str]:
    return [part.strip() for part in str(text or "").split(",") if part.strip()]


def recall_bento(
    context: dg.AssetExecutionContext,
    mlflow: MlflowResource,
    bentoml: BentoMLResource,
    code_version: str,
) -> dg.MaterializeResult | None:
    """The bento step's answer when the champion's bento is already built (module docstring)."""
    record = recorded_metadata(context, BENTO_ASSET)
    if record is None or not record.get(INPUT_FINGERPRINT):
        return None
    name = mlflow.model_name(MODEL_NAME)
    champion = _champion(mlflow, name)
    tag = str(record.get("bento_tag", ""))
    if champion is None or champion.version != str(record.get("model_version")):
        return None
    if not tag or champion.tags.get(TAG_BENTO) != tag:
        return None
    fingerprint = bento_fingerprint(
        bentoml, name, champion.version, champion.run_id, champion.tags, code_version
    )
    if fingerprint != record.get(INPUT_FINGERPRINT):
        return None
    if not bento_in_store(bentoml, tag, _model_tags(record.get("bento_models"))):
        return None
    context.log.info(
        "bento %s still serves %s version %s (same version, code and settings): nothing loaded",
        tag,
        name,
        champion.version,
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(tag),
        metadata={
            **record.carry(BENTO_KEYS),
            "built": False,
            MEMOIZED: True,
            "reason": dg.MetadataValue.text(
                "the champion version, the service code and the store's settings are those of "
                "the recorded bento, which the store still holds"
            ),
            INPUT_FINGERPRINT: dg.MetadataValue.text(fingerprint),
        },
    )


def recall_deployment(
    context: dg.AssetExecutionContext,
    config: DeploymentConfig,
    mlflow: MlflowResource,
    bentoml: BentoMLResource,
) -> dg.MaterializeResult | None:
    """The deployment step's answer when a plain deploy would serve exactly what the newest
    record serves (module docstring)."""
    if config.to_request() != MoveRequest() or config.backend != "bentoml":
        return None  # a move asked for with its own who, why or traffic split is always made
    record = recorded_metadata(context, DEPLOYMENT_ASSET)
    if record is None:
        return None
    name = mlflow.model_name(MODEL_NAME)
    try:
        live = bentoml.current_deployment(name)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # an unreadable log: the full step reports it
    if live is None or record.get("deployment_id") != live.deployment_id:
        return None
    if live.mode != "single" or live.canary is not None or live.backend != "bentoml":
        return None
    champion = _champion(mlflow, name)
    if champion is None or champion.version != live.champion.model_version:
        return None
    expected = {
        TAG_BENTO: live.champion.bento_tag,
        TAG_DEPLOYMENT_ROLE: "champion",
        TAG_DEPLOYMENT_ID: str(live.deployment_id),
    }
    if any(champion.tags.get(key) != value for key, value in expected.items()):
        return None
    models = _bento_models(context, live.champion.bento_tag)
    if models is None or not bento_in_store(bentoml, live.champion.bento_tag, models):
        return None
    context.log.info("deployment %s already serves the champion: the record stands", live.summary())
    metadata: dict[str, Any] = {
        **record.metadata,
        MEMOIZED: True,
        "memo_reason": dg.MetadataValue.text(
            f"deployment {live.deployment_id} already serves version {champion.version} alone "
            f"with bento {live.champion.bento_tag}: no new record"
        ),
    }
    return dg.MaterializeResult(
        data_version=dg.DataVersion(str(live.deployment_id)), metadata=metadata
    )


def _bento_models(context: dg.AssetExecutionContext, tag: str) -> list[str] | None:
    """The models of bento ``tag`` as the bento step recorded them; None when its newest record
    names another bento."""
    record = recorded_metadata(context, BENTO_ASSET)
    if record is None or str(record.get("bento_tag", "")) != tag:
        return None
    return _model_tags(record.get("bento_models"))
