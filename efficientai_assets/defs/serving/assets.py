"""Serving assets: the champion's bento, and the deployment record of what is live.

``model_bento`` builds (or reuses) a bento around the MLflow version the ``champion`` alias points
at. ``deployment`` records what is live — the champion bento, optionally a canary bento of the
challenger with a traffic share, or the challenger in shadow — and performs the two moves of a
rollout: ``promote`` (alias ``champion`` → the challenger) and ``rollback`` (alias ``champion`` →
the previous champion, reusing its bento). Every move is a numbered deployment record under
``<BENTOML_HOME>/deployments/``, an MLflow run in the ``deployments`` experiment, tags on the
registered model and its versions, and this asset's Dagster metadata.
"""

import getpass
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from pydantic import Field

from efficientai_assets.gate.policy import enforce_heavy_gate
from efficientai_assets.models.mlp import CONFIG_FILENAME, WEIGHTS_FILENAME
from efficientai_assets.names import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    HEAVY_POOL,
    MODEL_NAME,
    TAG_DAGSTER_ASSET_KEY,
    TAG_DAGSTER_RUN_ID,
    TAG_DATA_MD5,
    TAG_GIT_SHA,
    TAG_QUALITY,
    TAG_ROLLED_BACK,
)
from resources.bentoml.store import (
    BentoInfo,
    BentoMLResource,
    BentoStoreError,
    DeploymentRecord,
    ModelProvenance,
    ServedModel,
)
from resources.hardware.resource import HardwareResource
from resources.mlflow.resource import MlflowResource

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

# Bump when a change to the serving assets should rebuild bentos (the bento version also hashes
# the service code itself, so code changes rebuild anyway).
SERVING_CODE_VERSION = "1"
DEPLOYMENTS_EXPERIMENT = "deployments"

TAG_BENTO = "efficientai.bento_tag"
TAG_DEPLOYMENT_ROLE = "efficientai.deployment.role"
TAG_DEPLOYMENT_ID = "efficientai.deployment.id"
TAG_DEPLOYMENT_LIVE = "efficientai.deployment.live"
TAG_PROMOTED_BY = "efficientai.promoted_by"
TAG_PROMOTION_REASON = "efficientai.promotion_reason"


# -- the champion's bento -----------------------------------------------------------------------


def provenance_of(version: "ModelVersion") -> ModelProvenance:
    return ModelProvenance(
        model_name=str(version.name),
        model_version=str(version.version),
        data_md5=version.tags.get(TAG_DATA_MD5, "unknown"),
        git_sha=version.tags.get(TAG_GIT_SHA, "unknown"),
    )


def download_model_files(mlflow: MlflowResource, version: "ModelVersion", target: Path) -> Path:
    """The version's safetensors weights and JSON config, copied into ``target`` and verified
    by loading them (so a corrupt artifact fails here, before anything is built)."""
    import mlflow as mlflow_lib
    import yaml

    from efficientai_assets.models.mlp import MLXClassifier

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
        MLXClassifier.load_dir(model_dir)
    except Exception as error:
        raise dg.Failure(
            f"{version.name} version {version.version}: its weights do not load: {error}"
        ) from error
    return model_dir


def build_bento_for_version(
    mlflow: MlflowResource, bentoml: BentoMLResource, version: "ModelVersion"
) -> BentoInfo:
    """Import the version's weights into the BentoML store and build its bento (or reuse the
    identical one); the bento tag is recorded on the model version."""
    provenance = provenance_of(version)
    with tempfile.TemporaryDirectory(prefix="efficientai-serving-") as scratch:
        model_dir = download_model_files(mlflow, version, Path(scratch))
        imported = bentoml.import_model(
            model_dir,
            provenance,
            metadata={
                "mlflow_run_id": str(version.run_id or ""),
                "mlflow_source": str(version.source),
            },
        )
    info = bentoml.build_bento(
        imported, provenance, extra_labels={"mlflow_run_id": str(version.run_id or "")}
    )
    mlflow.client().set_model_version_tag(version.name, version.version, TAG_BENTO, info.tag)
    return info


def bento_for_version(
    mlflow: MlflowResource, bentoml: BentoMLResource, version: "ModelVersion"
) -> BentoInfo:
    """The bento last built for this version when the store still holds it, else a new build."""
    recorded = version.tags.get(TAG_BENTO)
    if recorded:
        info = bentoml.get_bento(recorded)
        if info is not None and info.labels.get("model_version") == str(version.version):
            return info
    return build_bento_for_version(mlflow, bentoml, version)


def _bento_metadata(info: BentoInfo) -> dict[str, Any]:
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


@dg.asset(
    group_name="serving",
    kinds={"bentoml"},
    code_version=SERVING_CODE_VERSION,
    deps=["champion_model"],
    pool=HEAVY_POOL,
    description="A bento serving the MLflow version the 'champion' alias points at; labels carry "
    "the model name and version, data md5 and git sha.",
)
def model_bento(
    context: dg.AssetExecutionContext,
    mlflow: MlflowResource,
    bentoml: BentoMLResource,
    hardware: HardwareResource,
) -> dg.MaterializeResult:
    gate = enforce_heavy_gate(context, hardware)
    name = mlflow.model_name(MODEL_NAME)
    champion = mlflow.version_for_alias(name, CHAMPION_ALIAS)
    if champion is None:
        raise dg.Failure(f"{name} has no '{CHAMPION_ALIAS}' version: materialize champion_model")
    info = build_bento_for_version(mlflow, bentoml, champion)
    context.log.info(
        "%s bento %s for %s version %s",
        "built" if info.built else "reused",
        info.tag,
        name,
        champion.version,
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(info.tag),
        metadata={
            **_bento_metadata(info),
            "model_name": name,
            "model_version": dg.MetadataValue.text(str(champion.version)),
            "data_md5": info.labels.get("data_md5", ""),
            "git_sha": info.labels.get("git_sha", ""),
            **gate.to_metadata(),
        },
    )


# -- the deployment ------------------------------------------------------------------------------


class DeploymentConfig(dg.Config):
    """One move of the rollout. ``deploy`` keeps the champion and sets the canary; ``promote`` and
    ``rollback`` move the ``champion`` alias and serve it alone."""

    action: Literal["deploy", "promote", "rollback"] = Field(
        default="deploy", description="deploy | promote (challenger → champion) | rollback."
    )
    canary_share: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="Share of traffic the challenger's bento answers."
    )
    shadow: bool = Field(
        default=False, description="The challenger sees copies of requests; its answers are logged."
    )
    reason: str = Field(default="", description="Why (required for promote and rollback).")
    requested_by: str = Field(default="", description="Who; empty means the OS user.")
    rollback_to_version: str = Field(
        default="", description="Version to roll back to; empty means the previous champion."
    )


def _validate(config: DeploymentConfig) -> None:
    if config.shadow and config.canary_share > 0:
        raise dg.Failure("choose a canary_share or shadow mode, not both")
    if config.action != "deploy" and (config.shadow or config.canary_share > 0):
        raise dg.Failure(f"{config.action} serves the champion alone: drop canary_share/shadow")
    if config.action != "deploy" and not config.reason.strip():
        raise dg.Failure(f"{config.action} needs a reason (config 'reason')")
    if config.action != "rollback" and config.rollback_to_version:
        raise dg.Failure("rollback_to_version only applies to action 'rollback'")


def _servable_challenger(
    mlflow: MlflowResource, name: str, champion: "ModelVersion | None"
) -> "ModelVersion":
    challenger = mlflow.version_for_alias(name, CHALLENGER_ALIAS)
    if challenger is None:
        raise dg.Failure(f"{name} has no '{CHALLENGER_ALIAS}' version to put beside the champion")
    if champion is not None and challenger.version == champion.version:
        raise dg.Failure(f"the challenger of {name} is the champion (version {champion.version})")
    if challenger.tags.get(TAG_QUALITY) != "passed":
        raise dg.Failure(
            f"{name} version {challenger.version} did not pass its quality check "
            f"({TAG_QUALITY}={challenger.tags.get(TAG_QUALITY)!r}); it cannot take traffic"
        )
    return challenger


def _rollback_target(
    mlflow: MlflowResource,
    bentoml: BentoMLResource,
    name: str,
    champion: "ModelVersion | None",
    requested: str,
) -> "ModelVersion":
    from mlflow.exceptions import MlflowException

    current = str(champion.version) if champion is not None else None
    client = mlflow.client()
    target = requested
    if not target:
        # The newest earlier champion that was not itself rolled back: a second rollback goes
        # further back, never forward to the version just rolled back from.
        for record in reversed(bentoml.deployment_history(name)):
            version = record.champion.model_version
            if version == current:
                continue
            try:
                rolled_back = client.get_model_version(name, version).tags.get(TAG_ROLLED_BACK)
            except MlflowException:
                continue
            if not rolled_back:
                target = version
                break
    if not target:
        raise dg.Failure(
            f"no previous champion of {name} to roll back to: every recorded deployment served "
            f"version {current}"
        )
    if target == current:
        raise dg.Failure(f"version {target} is already the champion of {name}")
    try:
        return client.get_model_version(name, target)
    except MlflowException as error:
        raise dg.Failure(f"{name} has no version {target} to roll back to: {error}") from error


def _served(version: "ModelVersion", info: BentoInfo) -> ServedModel:
    return ServedModel(
        model_version=str(version.version),
        bento_tag=info.tag,
        data_md5=info.labels.get("data_md5", ""),
        git_sha=info.labels.get("git_sha", ""),
    )


def _record_in_mlflow(
    mlflow: MlflowResource, record: DeploymentRecord, previous: DeploymentRecord | None
) -> str:
    """One run per move (tags say who/what/when/why; the record is its artifact) plus tags on the
    registered model and on every version whose role changed. Returns the run's URL."""
    import mlflow as mlflow_lib

    client = mlflow.client()
    tags = {
        "efficientai.deployment.id": str(record.deployment_id),
        "efficientai.deployment.action": record.action,
        "efficientai.deployment.mode": record.mode,
        "efficientai.deployment.requested_by": record.requested_by,
        "efficientai.deployment.reason": record.reason,
        "efficientai.deployment.created_at": record.created_at,
        "efficientai.deployment.champion_version": record.champion.model_version,
        "efficientai.deployment.champion_bento": record.champion.bento_tag,
        "efficientai.deployment.canary_version": record.canary.model_version
        if record.canary
        else "",
        "efficientai.deployment.canary_share": str(record.canary_share),
        "efficientai.deployment.previous_champion_version": record.previous_champion_version or "",
        TAG_DAGSTER_RUN_ID: record.dagster_run_id,
        TAG_DAGSTER_ASSET_KEY: "deployment",
    }
    run_name = f"{record.action}-{record.deployment_id}"
    with mlflow.run(DEPLOYMENTS_EXPERIMENT, run_name, tags) as run_id:
        mlflow_lib.log_dict(record.to_dict(), "deployment.json")
        experiment_id = client.get_run(run_id).info.experiment_id
    roles = {record.champion.model_version: "champion"}
    if record.canary is not None:
        roles[record.canary.model_version] = "shadow" if record.mode == "shadow" else "canary"
    if previous is not None:
        for served in (previous.champion, previous.canary):
            if served is not None and served.model_version not in roles:
                roles[served.model_version] = "retired"
    for version, role in roles.items():
        client.set_model_version_tag(record.model_name, version, TAG_DEPLOYMENT_ROLE, role)
        client.set_model_version_tag(
            record.model_name, version, TAG_DEPLOYMENT_ID, str(record.deployment_id)
        )
    client.set_registered_model_tag(record.model_name, TAG_DEPLOYMENT_LIVE, record.summary())
    return mlflow.run_url(experiment_id, run_id)


@dg.asset(
    group_name="serving",
    kinds={"bentoml", "mlflow"},
    code_version=SERVING_CODE_VERSION,
    deps=[model_bento],
    description="What is live: the champion's bento, optionally the challenger's as a canary "
    "(traffic share) or in shadow. Promote and rollback move the 'champion' alias.",
)
def deployment(
    context: dg.AssetExecutionContext,
    config: DeploymentConfig,
    mlflow: MlflowResource,
    bentoml: BentoMLResource,
) -> dg.MaterializeResult:
    _validate(config)
    name = mlflow.model_name(MODEL_NAME)
    client = mlflow.client()
    previous = bentoml.current_deployment(name)
    champion = mlflow.version_for_alias(name, CHAMPION_ALIAS)
    old_champion = champion

    canary = None
    if config.action == "promote":
        champion = _servable_challenger(mlflow, name, champion)
    elif config.action == "rollback":
        champion = _rollback_target(mlflow, bentoml, name, champion, config.rollback_to_version)
    elif config.shadow or config.canary_share > 0:
        canary = _servable_challenger(mlflow, name, champion)
    if champion is None:
        raise dg.Failure(f"{name} has no '{CHAMPION_ALIAS}' version: materialize champion_model")

    # Bentos first: nothing moves unless everything it needs can be served.
    champion_bento = bento_for_version(mlflow, bentoml, champion)
    canary_bento = bento_for_version(mlflow, bentoml, canary) if canary is not None else None

    requested_by = config.requested_by.strip() or os.environ.get("USER") or getpass.getuser()
    reason = config.reason.strip() or (
        f"serve the champion with the challenger as {'shadow' if config.shadow else 'canary'}"
        if canary is not None
        else "serve the champion"
    )
    mode = "single" if canary is None else ("shadow" if config.shadow else "canary")
    record = DeploymentRecord(
        deployment_id=(previous.deployment_id + 1) if previous else 1,
        model_name=name,
        action=config.action,
        mode=mode,
        champion=_served(champion, champion_bento),
        canary=_served(canary, canary_bento) if canary is not None and canary_bento else None,
        canary_share=config.canary_share if mode == "canary" else 0.0,
        requested_by=requested_by,
        reason=reason,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dagster_run_id=context.run_id,
        previous_deployment_id=previous.deployment_id if previous else None,
        previous_champion_version=str(old_champion.version) if old_champion else None,
    )

    # Claim the record's id first: of two concurrent moves, the second fails here, before it
    # touches the registry. The alias moves only once the record is ours.
    try:
        record_path = bentoml.write_deployment(record)
    except BentoStoreError as error:
        raise dg.Failure(str(error)) from error
    moved = old_champion is None or str(old_champion.version) != str(champion.version)
    if moved:
        try:
            client.set_registered_model_alias(name, CHAMPION_ALIAS, champion.version)
        except Exception:
            record_path.unlink(missing_ok=True)  # nothing moved: the record must not say so
            raise
        client.set_model_version_tag(name, champion.version, TAG_PROMOTED_BY, context.run_id)
        client.set_model_version_tag(
            name, champion.version, TAG_PROMOTION_REASON, f"{config.action}: {reason}"
        )
    if moved and config.action == "rollback" and old_champion is not None:
        client.set_model_version_tag(
            name,
            old_champion.version,
            TAG_ROLLED_BACK,
            f"deployment {record.deployment_id} by {requested_by}: {reason}",
        )
    if config.action == "promote" and champion.tags.get(TAG_ROLLED_BACK):
        # An explicit promotion is the operator's decision to trust this version again.
        client.delete_model_version_tag(name, champion.version, TAG_ROLLED_BACK)
    run_url = _record_in_mlflow(mlflow, record, previous)
    context.log.info("deployment %s by %s: %s", record.summary(), requested_by, reason)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(str(record.deployment_id)),
        metadata={
            "deployment_id": record.deployment_id,
            "action": record.action,
            "mode": record.mode,
            "live_bento": dg.MetadataValue.text(champion_bento.tag),
            "champion_version": dg.MetadataValue.text(record.champion.model_version),
            "canary_bento": dg.MetadataValue.text(canary_bento.tag if canary_bento else ""),
            "canary_version": dg.MetadataValue.text(
                record.canary.model_version if record.canary else ""
            ),
            "canary_share": record.canary_share,
            "previous_champion_version": dg.MetadataValue.text(
                record.previous_champion_version or ""
            ),
            "alias_moved": moved,
            "requested_by": dg.MetadataValue.text(requested_by),
            "reason": dg.MetadataValue.text(reason),
            "created_at": dg.MetadataValue.text(record.created_at),
            "record_path": dg.MetadataValue.path(str(record_path)),
            "record": dg.MetadataValue.json(json.loads(json.dumps(record.to_dict()))),
            "mlflow_run_url": dg.MetadataValue.url(run_url),
            "serve_command": dg.MetadataValue.md("`make serve`"),
        },
    )
