"""Training assets: the MLX candidate (one MLflow run, registered as ``challenger``, with a blocking
quality check) and the champion, which moves the ``champion`` alias only to a candidate that passed
its check and is not worse than the current champion on the same validation split.

This module declares what Dagster sees (keys, groups, kinds, code versions, checks, pools); the
steps live in ``candidate.py`` and ``champion.py``, their decisions in ``memo.py``,
``quality.py`` and ``promotion.py``. A hyperparameter sweep (``sweep_assets.py``) is a second
source of the challenger; ``champion_model`` promotes either.
"""

import dagster as dg

from efficientai_assets.defs.training.candidate import (
    TRAINING_CODE_VERSION,
    TrainingTools,
    run_candidate,
)
from efficientai_assets.defs.training.champion import run_champion
from efficientai_assets.defs.training.config import TrainingConfig
from efficientai_assets.names import (
    CANDIDATE_ASSET,
    DATASET_SPLITS_ASSET,
    HEAVY_POOL,
    HEAVY_STEP_TAGS,
    QUALITY_CHECK,
    SWEEP_CHALLENGER_ASSET,
)
from resources.dvc.resource import DvcResource
from resources.hardware.resource import HardwareResource
from resources.mlflow.resource import MlflowResource
from resources.store_retry import retry_transient_store_errors


@dg.asset(
    group_name="training",
    kinds={"mlx", "mlflow"},
    code_version=TRAINING_CODE_VERSION,
    deps=[DATASET_SPLITS_ASSET],
    pool=HEAVY_POOL,
    op_tags=HEAVY_STEP_TAGS,
    check_specs=[
        dg.AssetCheckSpec(
            QUALITY_CHECK,
            asset=CANDIDATE_ASSET,
            blocking=True,
            description="Validation accuracy at or above the configured floor, and a finite loss.",
        )
    ],
    description=(
        "An MLX model of the configured family (MLP by default) trained on the splits; one MLflow "
        "run; registered as 'challenger'."
    ),
)
@retry_transient_store_errors
def candidate_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    mlflow: MlflowResource,
    dvc: DvcResource,
    hardware: HardwareResource,
) -> dg.MaterializeResult:
    return run_candidate(context, config, TrainingTools(mlflow=mlflow, dvc=dvc, hardware=hardware))


@dg.asset(
    group_name="training",
    kinds={"mlflow"},
    code_version=TRAINING_CODE_VERSION,
    # The challenger comes from a single candidate or from a sweep's best (sweep_assets.py).
    deps=[candidate_model, SWEEP_CHALLENGER_ASSET],
    description="Moves the 'champion' alias to the challenger when it passed its quality check and "
    "is not worse than the current champion on the current validation split.",
)
@retry_transient_store_errors
def champion_model(
    context: dg.AssetExecutionContext, mlflow: MlflowResource, dvc: DvcResource
) -> dg.MaterializeResult:
    return run_champion(context, mlflow, dvc)
