"""Serving assets: the champion's bento, and the deployment record of what is live.

``model_bento`` builds (or reuses) a bento around the MLflow version the ``champion`` alias points
at. ``deployment`` records what is live — the champion bento, optionally a canary bento of the
challenger with a traffic share, or the challenger in shadow — and performs the two moves of a
rollout: ``promote`` (alias ``champion`` → the challenger) and ``rollback`` (alias ``champion`` →
the previous champion, reusing its bento). Every move is a numbered deployment record under
``<BENTOML_HOME>/deployments/``, an MLflow run in the ``deployments`` experiment, tags on the
registered model and its versions, and this asset's Dagster metadata.

The decisions of a move are pure functions in ``rollout``; the assets read the registry and the
record log, call them, and do the writing.
"""

import getpass
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg

from efficientai_assets.defs.data.memo import INPUT_FINGERPRINT
from efficientai_assets.defs.serving.bentos import (
    bento_for_version,
    bento_metadata,
    build_bento_for_version,
    served_model,
)
from efficientai_assets.defs.serving.config import DeploymentConfig
from efficientai_assets.defs.serving.ledger import record_in_mlflow
from efficientai_assets.defs.serving.ray_backend import (
    RayBackendError,
    RayServeSettings,
    check_cluster,
    deploy_record,
)
from efficientai_assets.defs.serving.recall import (
    bento_fingerprint,
    recall_bento,
    recall_deployment,
)
from efficientai_assets.defs.serving.rollout import (
    Candidate,
    RolloutError,
    check_request,
    plan_move,
    require_champion,
    rollback_target,
    servable_challenger,
)
from efficientai_assets.gate.step import enforce_heavy_gate
from efficientai_assets.names import (
    BENTO_ASSET,
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    CHAMPION_ASSET,
    HEAVY_POOL,
    HEAVY_STEP_TAGS,
    MODEL_NAME,
    TAG_PROMOTED_BY,
    TAG_PROMOTION_REASON,
    TAG_QUALITY,
    TAG_ROLLED_BACK,
)
from resources.bentoml.store import BentoMLResource
from resources.bentoml.types import BentoStoreError, DeploymentRecord
from resources.hardware.resource import HardwareResource
from resources.mlflow.resource import MlflowResource
from resources.store_retry import retry_transient_store_errors

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

# Bump when a change to the serving assets should rebuild bentos (the bento version also hashes
# the service code itself, so code changes rebuild anyway).
SERVING_CODE_VERSION = "1"


@dg.asset(
    group_name="serving",
    kinds={"bentoml"},
    code_version=SERVING_CODE_VERSION,
    deps=[CHAMPION_ASSET],
    pool=HEAVY_POOL,
    op_tags=HEAVY_STEP_TAGS,
    description="A bento serving the MLflow version the 'champion' alias points at; labels carry "
    "the model name and version, data md5 and git sha.",
)
@retry_transient_store_errors
def model_bento(
    context: dg.AssetExecutionContext,
    mlflow: MlflowResource,
    bentoml: BentoMLResource,
    hardware: HardwareResource,
) -> dg.MaterializeResult:
    recalled = recall_bento(context, mlflow, bentoml, SERVING_CODE_VERSION)
    if recalled is not None:
        return recalled  # the bento a build would reuse: nothing to load, no gate to ask
    gate = enforce_heavy_gate(context, hardware)
    name = mlflow.model_name(MODEL_NAME)
    champion = mlflow.version_for_alias(name, CHAMPION_ALIAS)
    if champion is None:
        raise dg.Failure(f"{name} has no '{CHAMPION_ALIAS}' version: materialize {CHAMPION_ASSET}")
    fingerprint = bento_fingerprint(
        bentoml,
        name,
        str(champion.version),
        str(champion.run_id or ""),
        dict(champion.tags),
        SERVING_CODE_VERSION,
    )
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
            **bento_metadata(info),
            "model_name": name,
            "model_version": dg.MetadataValue.text(str(champion.version)),
            "data_md5": info.labels.get("data_md5", ""),
            "git_sha": info.labels.get("git_sha", ""),
            INPUT_FINGERPRINT: dg.MetadataValue.text(fingerprint),
            **gate.to_metadata(),
        },
    )


# -- the deployment ------------------------------------------------------------------------------


@contextmanager
def _refused() -> Iterator[None]:
    """A move the rollout refuses fails the step with the rollout's message."""
    try:
        yield
    except RolloutError as error:
        raise dg.Failure(str(error)) from error


def _candidate(version: "ModelVersion") -> Candidate:
    return Candidate(
        version=str(version.version),
        quality=version.tags.get(TAG_QUALITY),
        rolled_back=bool(version.tags.get(TAG_ROLLED_BACK)),
    )


def _servable_challenger(mlflow: MlflowResource, name: str, current: str | None) -> "ModelVersion":
    challenger = mlflow.version_for_alias(name, CHALLENGER_ALIAS)
    servable_challenger(name, _candidate(challenger) if challenger else None, current)
    assert challenger is not None  # servable_challenger refuses a missing one
    return challenger


def _rollback_version(
    mlflow: MlflowResource,
    bentoml: BentoMLResource,
    name: str,
    current: str | None,
    requested: str,
) -> "ModelVersion":
    """Read what the rollout needs (recorded champions and whether each was rolled back), let
    it choose, and fetch the chosen version."""
    from mlflow.exceptions import MlflowException

    client = mlflow.client()
    history = [record.champion.model_version for record in bentoml.deployment_history(name)]
    rolled_back: dict[str, bool] = {}
    for version in [] if requested else dict.fromkeys(reversed(history)):
        if version == current:
            continue
        try:
            rolled_back[version] = bool(
                client.get_model_version(name, version).tags.get(TAG_ROLLED_BACK)
            )
        except MlflowException:
            continue  # no longer in the registry: not a target
    target = rollback_target(name, current, requested, history, rolled_back)
    try:
        return client.get_model_version(name, target)
    except MlflowException as error:
        raise dg.Failure(f"{name} has no version {target} to roll back to: {error}") from error


def _ray_settings(backend: str) -> RayServeSettings | None:
    """For the Ray backend, its settings, once the cluster answered (a move to an unreachable
    cluster fails here, naming the address, before anything is written)."""
    if backend != "ray":
        return None
    try:
        settings = RayServeSettings.from_env()
        check_cluster(settings)
    except RayBackendError as error:
        raise dg.Failure(str(error)) from error
    return settings


@dg.asset(
    group_name="serving",
    kinds={"bentoml", "mlflow"},
    code_version=SERVING_CODE_VERSION,
    deps=[BENTO_ASSET],
    description="What is live: the champion's bento, optionally the challenger's as a canary "
    "(traffic share) or in shadow. Promote and rollback move the 'champion' alias.",
)
def deployment(
    context: dg.AssetExecutionContext,
    config: DeploymentConfig,
    mlflow: MlflowResource,
    bentoml: BentoMLResource,
) -> dg.MaterializeResult:
    recalled = recall_deployment(context, config, mlflow, bentoml)
    if recalled is not None:
        return recalled  # a plain deploy of what is already served alone: the record stands
    request = config.to_request()
    name = mlflow.model_name(MODEL_NAME)
    client = mlflow.client()
    with _refused():
        check_request(request)
        previous = bentoml.current_deployment(name)
        old_champion = mlflow.version_for_alias(name, CHAMPION_ALIAS)
        current = str(old_champion.version) if old_champion else None
        champion, canary = old_champion, None
        if request.action == "promote":
            champion = _servable_challenger(mlflow, name, current)
        elif request.action == "rollback":
            champion = _rollback_version(
                mlflow, bentoml, name, current, request.rollback_to_version
            )
        elif request.wants_challenger_beside:
            canary = _servable_challenger(mlflow, name, current)
        require_champion(name, str(champion.version) if champion else None)
    assert champion is not None  # require_champion refuses a missing one

    # Bentos first: nothing moves unless everything it needs can be served.
    champion_bento = bento_for_version(mlflow, bentoml, champion)
    canary_bento = bento_for_version(mlflow, bentoml, canary) if canary is not None else None
    ray_settings = _ray_settings(config.backend)

    asked_by = request.requested_by.strip()
    plan = plan_move(
        request,
        old_champion=current,
        champion=_candidate(champion),
        canary=str(canary.version) if canary is not None else None,
        os_user="" if asked_by else (os.environ.get("USER") or getpass.getuser()),
    )
    record = DeploymentRecord(
        deployment_id=(previous.deployment_id + 1) if previous else 1,
        model_name=name,
        action=plan.action,
        mode=plan.mode,
        champion=served_model(champion, champion_bento),
        canary=served_model(canary, canary_bento) if canary is not None and canary_bento else None,
        canary_share=plan.canary_share,
        requested_by=plan.requested_by,
        reason=plan.reason,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dagster_run_id=context.run.run_id,
        previous_deployment_id=previous.deployment_id if previous else None,
        previous_champion_version=plan.previous_champion_version,
        backend=config.backend,
    )

    # Claim the record's id first: of two concurrent moves, the second fails here, before it
    # touches the registry. The alias moves only once the record is ours.
    try:
        record_path = bentoml.write_deployment(record)
    except BentoStoreError as error:
        raise dg.Failure(str(error)) from error
    serve_url, namespace = "", name.removesuffix(f"-{MODEL_NAME}")
    if ray_settings is not None:
        try:
            serve_url = deploy_record(bentoml, record, namespace, ray_settings)
        except Exception as error:  # not served: the record must not say so
            record_path.unlink(missing_ok=True)
            raise dg.Failure(f"Ray Serve did not take {record.summary()}: {error}") from error
        context.log.info("Ray Serve application %s serves %s", serve_url, record.summary())
    if plan.alias_moves:
        try:
            client.set_registered_model_alias(name, CHAMPION_ALIAS, champion.version)
        except Exception:
            record_path.unlink(missing_ok=True)  # nothing moved: the record must not say so
            if ray_settings is not None and previous is not None and previous.backend == "ray":
                deploy_record(bentoml, previous, namespace, ray_settings)  # serve what was live
            raise
        client.set_model_version_tag(name, champion.version, TAG_PROMOTED_BY, context.run.run_id)
        client.set_model_version_tag(
            name, champion.version, TAG_PROMOTION_REASON, plan.promotion_reason
        )
    if plan.mark_rolled_back is not None:
        client.set_model_version_tag(
            name,
            plan.mark_rolled_back,
            TAG_ROLLED_BACK,
            plan.rolled_back_note(record.deployment_id),
        )
    if plan.clear_rolled_back:
        # An explicit promotion is the operator's decision to trust this version again.
        client.delete_model_version_tag(name, champion.version, TAG_ROLLED_BACK)
    run_url = record_in_mlflow(mlflow, record, previous)
    context.log.info("deployment %s by %s: %s", record.summary(), plan.requested_by, plan.reason)
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
            "alias_moved": plan.alias_moves,
            "requested_by": dg.MetadataValue.text(plan.requested_by),
            "reason": dg.MetadataValue.text(plan.reason),
            "created_at": dg.MetadataValue.text(record.created_at),
            "record_path": dg.MetadataValue.path(str(record_path)),
            "record": dg.MetadataValue.json(json.loads(json.dumps(record.to_dict()))),
            "mlflow_run_url": dg.MetadataValue.url(run_url),
            "backend": record.backend,
            "serve_url": dg.MetadataValue.text(serve_url),
            "serve_command": dg.MetadataValue.md(
                "`make serve`" if record.backend == "bentoml" else "`make serve-ray`"
            ),
        },
    )
