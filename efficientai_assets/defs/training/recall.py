"""The training steps answered from their last record when nothing they depend on changed, without
loading MLflow: ``memo.py`` decides as always, on values read from the step's previous
materialization (Dagster's instance) and a read-only peek at the registry
(:mod:`~efficientai_assets.defs.training.registry_peek`).

- ``candidate_model``: the memo key is rebuilt from the current splits md5, the config and the
  hardware's batch/device resolution applied to the data shape the record holds. When it is the
  recorded fingerprint, the ``challenger`` alias still points at the recorded version, that
  version still carries the fingerprint, and today's quality verdict is the tag it carries, the
  step's answer is known: reuse, nothing to write. No training, so no hardware gate either.
- ``champion_model``: when the challenger and the champion are the versions the last contest left
  in place, with the same deciding tags, on the same validation split, the contest would decide
  the same again (the pipeline's scoring is deterministic): the seat stays.

Any miss (no record, a tracking server, a moved alias, changed tags or data) returns None and the
step does its full work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from efficientai_assets.defs.data.memo import INPUT_FINGERPRINT, MEMOIZED, Record, recorded_metadata
from efficientai_assets.defs.training.config import TrainingConfig
from efficientai_assets.defs.training.memo import MemoKey, MemoVerdict, PriorVersion, memo_verdict
from efficientai_assets.defs.training.promotion import Contender, challenger_refusal
from efficientai_assets.defs.training.registry_peek import PeekedVersion, peek_aliases
from efficientai_assets.names import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    MODEL_NAME,
    QUALITY_CHECK,
    TAG_CODE_VERSION,
    TAG_CONFIG_HASH,
    TAG_DAGSTER_ASSET_KEY,
    TAG_DAGSTER_RUN_ID,
    TAG_DATA_MD5,
    TAG_FINGERPRINT,
    TAG_QUALITY,
    TAG_ROLLED_BACK,
    TAG_VAL_ACCURACY,
    TAG_VAL_LOSS,
)
from efficientai_assets.provenance import stable_hash
from resources.dvc.resource import DvcVersion
from resources.hardware.resource import HardwareResource
from resources.mlflow.resource import MlflowResource

# The tags a promotion decision reads (origin, quality, rollback); others (bento, deployment,
# who promoted) change after the contest without changing it.
DECIDING_TAGS = (
    TAG_DAGSTER_RUN_ID,
    TAG_DAGSTER_ASSET_KEY,
    TAG_DATA_MD5,
    TAG_CODE_VERSION,
    TAG_CONFIG_HASH,
    TAG_FINGERPRINT,
    TAG_QUALITY,
    TAG_ROLLED_BACK,
    TAG_VAL_ACCURACY,
    TAG_VAL_LOSS,
)
# What the candidate records so a later run can rebuild its memo key without reading the data.
SHAPE_ROWS, SHAPE_FEATURES = "train_rows", "features"


def resolved_key(
    config: TrainingConfig,
    hardware: HardwareResource,
    data_md5: str,
    code_version: str,
    rows: int,
    features: int,
) -> MemoKey:
    """The memo key the full step would build for data of this shape on this machine now."""
    recommendation = hardware.recommend_training(
        n_samples=rows, n_features=features, hidden_units=max(config.hidden_units)
    )
    trained_with = {
        **config.training_fingerprint_fields(),
        "batch_size": config.batch_size or recommendation.batch_size,
        "device": recommendation.device,
    }
    return MemoKey.for_training(data_md5, code_version, trained_with)


def recall_candidate(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    mlflow: MlflowResource,
    hardware: HardwareResource,
    splits: DvcVersion,
    code_version: str,
) -> dg.MaterializeResult | None:
    """The candidate step's answer when it is already known (see the module docstring)."""
    if config.force_retrain:
        return None
    record = recorded_metadata(context, context.asset_key.to_user_string())
    if record is None or record.get("data_md5") != splits.md5:
        return None
    rows, features = record.get(SHAPE_ROWS), record.get(SHAPE_FEATURES)
    if not isinstance(rows, int) or not isinstance(features, int) or rows <= 0 or features <= 0:
        return None
    key = resolved_key(config, hardware, splits.md5, code_version, rows, features)
    if record.get("fingerprint") != key.fingerprint:
        return None
    name = mlflow.model_name(MODEL_NAME)
    peeked = peek_aliases(mlflow, name, (CHALLENGER_ALIAS,))
    challenger = peeked.get(CHALLENGER_ALIAS) if peeked else None
    if challenger is None or challenger.version != str(record.get("model_version")):
        return None
    verdict = memo_verdict(
        key,
        PriorVersion(challenger.version, challenger.tags),
        force_retrain=False,
        floor=config.min_validation_accuracy,
    )
    if not verdict.reuse or verdict.quality is None:
        return None
    if challenger.tags.get(TAG_QUALITY) != verdict.quality.tag:
        return None  # today's floor judges it otherwise: the full step rewrites the tag
    context.log.info("%s version %s answers this step again (same fingerprint, challenger)",
                     name, challenger.version)  # fmt: skip
    metadata: dict[str, Any] = {
        **record.carry(("mlflow_run_url", SHAPE_ROWS, SHAPE_FEATURES, "data_md5", "blas")),
        MEMOIZED: True,
        "reason": dg.MetadataValue.text(
            f"{verdict.reason}; it is still the challenger with the same tags: nothing loaded or "
            "written"
        ),
        "model_name": name,
        "model_version": dg.MetadataValue.text(challenger.version),
        "val_accuracy": verdict.val_accuracy,
        "fingerprint": key.fingerprint,
    }
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            reused_quality_check(verdict, config.min_validation_accuracy, challenger.version)
        ],
    )


def reused_quality_check(verdict: MemoVerdict, floor: float, version: str) -> dg.AssetCheckResult:
    """The blocking quality check of a reused version, re-judged against today's floor (the
    floor is not part of the fingerprint)."""
    assert verdict.quality is not None, "a reuse verdict always carries its quality verdict"
    return dg.AssetCheckResult(
        check_name=QUALITY_CHECK,
        passed=verdict.quality.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "val_accuracy": verdict.val_accuracy,
            "val_loss": verdict.val_loss,
            "floor": floor,
            "model_version": version,
        },
        description=f"reused version, re-checked: {verdict.quality.description}",
    )


def contest_fingerprint(
    challenger: tuple[str, Mapping[str, str]], seat: tuple[str, Mapping[str, str]], splits_md5: str
) -> str:
    """What a contest's outcome depends on: who holds each alias afterwards, their deciding tags
    and the validation split it was scored on."""
    return stable_hash(
        {
            "challenger": [challenger[0], {k: challenger[1].get(k) for k in DECIDING_TAGS}],
            "seat": [seat[0], {k: seat[1].get(k) for k in DECIDING_TAGS}],
            "splits": splits_md5,
        }
    )


def contest_record(
    challenger: Any, champion: Any | None, seat: str, splits_md5: str
) -> dict[str, dg.MetadataValue]:
    """The metadata the full champion step adds so that a later run can recall its outcome
    (``challenger``/``champion``: the registry's versions before the contest)."""
    holder = challenger if str(challenger.version) == seat else champion
    seat_tags = dict(holder.tags) if holder is not None else {}
    fingerprint = contest_fingerprint(
        (str(challenger.version), dict(challenger.tags)), (seat, seat_tags), splits_md5
    )
    return {
        "challenger_version": dg.MetadataValue.text(str(challenger.version)),
        INPUT_FINGERPRINT: dg.MetadataValue.text(fingerprint),
    }


def recall_champion(
    context: dg.AssetExecutionContext, mlflow: MlflowResource, splits_md5: str
) -> dg.MaterializeResult | None:
    """The champion step's answer when the last contest's outcome is still in place."""
    record = recorded_metadata(context, context.asset_key.to_user_string())
    if record is None or not record.get(INPUT_FINGERPRINT):
        return None
    name = mlflow.model_name(MODEL_NAME)
    peeked = peek_aliases(mlflow, name, (CHALLENGER_ALIAS, CHAMPION_ALIAS))
    if peeked is None:
        return None
    challenger, seat = peeked.get(CHALLENGER_ALIAS), peeked.get(CHAMPION_ALIAS)
    if challenger is None or seat is None or not _same_contest(record, name, challenger, seat):
        return None
    fingerprint = contest_fingerprint(
        (challenger.version, challenger.tags), (seat.version, seat.tags), splits_md5
    )
    if fingerprint != record.get(INPUT_FINGERPRINT):
        return None
    reason = (
        f"version {seat.version} is already the champion"
        if seat.version == challenger.version
        else str(record.get("reason", ""))
    )
    context.log.info("%s (unchanged since the last contest: nothing loaded)", reason)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(f"{name}/{seat.version}"),
        metadata={
            **record.carry(("challenger_val_accuracy", "champion_val_accuracy")),
            **record.carry(("model_version_url", "challenger_version")),
            "promoted": False,
            MEMOIZED: True,
            "reason": dg.MetadataValue.text(f"{reason} (unchanged since the last contest)"),
            "champion_version": dg.MetadataValue.text(seat.version),
            "previous_champion_version": dg.MetadataValue.text(seat.version),
            INPUT_FINGERPRINT: dg.MetadataValue.text(fingerprint),
        },
    )


def _same_contest(
    record: Record, name: str, challenger: PeekedVersion, seat: PeekedVersion
) -> bool:
    """The aliases hold what the last contest left, and the challenger may still compete (one
    that failed its check fails the full step: never answered from a record)."""
    if str(record.get("challenger_version")) != challenger.version:
        return False
    if str(record.get("champion_version")) != seat.version:
        return False
    return (
        challenger_refusal(name, Contender.from_tags(challenger.version, challenger.tags)) is None
    )
