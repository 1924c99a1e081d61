"""The champion step: read the challenger and the champion from the registry, refuse any the
pipeline did not produce (``promotion.origin_refusal``, before anything is loaded), score both on
the current validation split with the project's own loader (``origin.py``), let ``promotion.py``
decide, and move the ``champion`` alias (with who moved it and why) only when the decision says so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import dagster as dg

from efficientai_assets.defs.training.origin import (
    accuracy_on,
    fetch_registered,
    require_pipeline_model,
)
from efficientai_assets.defs.training.promotion import (
    Contender,
    challenger_refusal,
    decide_promotion,
)
from efficientai_assets.defs.training.recall import contest_record, recall_champion
from efficientai_assets.defs.training.registry import current_validation, splits_version
from efficientai_assets.names import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    MODEL_NAME,
    TAG_PROMOTED_BY,
    TAG_PROMOTION_REASON,
)
from resources.dvc.resource import DvcResource
from resources.mlflow.resource import MlflowResource


def run_champion(
    context: dg.AssetExecutionContext, mlflow: MlflowResource, dvc: DvcResource
) -> dg.MaterializeResult:
    """Fails when there is nothing to compare (no challenger, or it failed its check); otherwise
    materializes with the seat's version as the data version, promoted or not."""
    name = mlflow.model_name(MODEL_NAME)
    splits_md5 = splits_version(dvc).md5
    known = recall_champion(context, mlflow, splits_md5)  # the last contest's outcome, if in place
    if known is not None:
        return known
    challenger = mlflow.version_for_alias(name, CHALLENGER_ALIAS)
    refusal = challenger_refusal(
        name, Contender.from_tags(challenger.version, challenger.tags) if challenger else None
    )
    if refusal is not None or challenger is None:
        raise dg.Failure(refusal)
    champion = mlflow.version_for_alias(name, CHAMPION_ALIAS)
    with tempfile.TemporaryDirectory(prefix="efficientai-contest-") as scratch:
        ours = fetch_registered(mlflow, challenger, Path(scratch) / "challenger")
        require_pipeline_model(name, CHALLENGER_ALIAS, ours)
        theirs = None
        if champion is not None and str(champion.version) == str(challenger.version):
            theirs = ours
        elif champion is not None:
            theirs = fetch_registered(mlflow, champion, Path(scratch) / "champion")
            require_pipeline_model(name, CHAMPION_ALIAS, theirs)
        validation = current_validation(dvc)
        challenger_accuracy = accuracy_on(ours, validation)
        comparable = theirs is not None and theirs.origin.input_columns == ours.origin.input_columns
        champion_accuracy = (
            accuracy_on(theirs, validation) if theirs is not None and comparable else None
        )
    decision = decide_promotion(
        Contender.from_tags(challenger.version, challenger.tags),
        Contender.from_tags(champion.version, champion.tags) if champion is not None else None,
        challenger_accuracy,
        champion_accuracy,
        comparable,
    )
    if decision.promoted:
        client = mlflow.client()
        client.set_registered_model_alias(name, CHAMPION_ALIAS, challenger.version)
        client.set_model_version_tag(name, challenger.version, TAG_PROMOTED_BY, context.run.run_id)
        client.set_model_version_tag(
            name, challenger.version, TAG_PROMOTION_REASON, decision.reason
        )
    context.log.info(decision.reason)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(f"{name}/{decision.seat}"),
        metadata={
            "promoted": decision.promoted,
            "reason": dg.MetadataValue.text(decision.reason),
            "champion_version": dg.MetadataValue.text(decision.seat),
            "previous_champion_version": dg.MetadataValue.text(
                str(champion.version) if champion is not None else "none"
            ),
            "challenger_val_accuracy": challenger_accuracy,
            "champion_val_accuracy": decision.seat_accuracy,
            "model_version_url": dg.MetadataValue.url(
                mlflow.model_version_url(name, decision.seat)
            ),
            **contest_record(challenger, champion, decision.seat, splits_md5),
        },
    )
