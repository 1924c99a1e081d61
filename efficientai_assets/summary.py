"""``python -m efficientai_assets.summary``: where to look after a run, read from the Dagster instance.

``--latest-day`` prints the newest complete monitoring partition (the day ``make run`` reports on).
"""

from __future__ import annotations

import sys

import dagster as dg

from efficientai_assets.names import (
    BENTO_ASSET,
    CANDIDATE_ASSET,
    CHAMPION_ASSET,
    DATASET_SPLITS_ASSET,
    DEPLOYMENT_ASSET,
    DRIFT_ASSET,
    INFERENCE_BATCH_ASSET,
    RAW_DATASET_ASSET,
)
from resources.home import default_home

# (asset, metadata keys worth printing) in pipeline order.
_WHAT_TO_SHOW: tuple[tuple[str, tuple[str, ...]], ...] = (
    (RAW_DATASET_ASSET, ("dagster/row_count", "dvc_md5", "dvc_remote")),
    (DATASET_SPLITS_ASSET, ("train_rows", "validation_rows", "dvc_md5")),
    (
        CANDIDATE_ASSET,
        ("model_name", "model_version", "memoized", "val_accuracy", "blas", "mlflow_run_url"),
    ),
    (CHAMPION_ASSET, ("champion_version", "promoted", "reason")),
    (BENTO_ASSET, ("bento_tag", "bento_path")),
    (DEPLOYMENT_ASSET, ("live_bento", "canary_share")),
    (INFERENCE_BATCH_ASSET, ("dagster/row_count", "source")),
    (DRIFT_ASSET, ("drift_share", "drifted_count", "report_path")),
)


_SLOW_BLAS = (
    "training used the mlx wheel's reference BLAS (correct, ~30x slower GEMMs): install a fast "
    "one and the next training picks it up — apt-get install libopenblas0-pthread (Debian/Ubuntu),"
    " dnf install openblas-threads (Fedora), or pip install mkl (x86-64); docs/performance.md"
)


def _text(value: object) -> str:
    inner = getattr(value, "value", value)
    return str(getattr(inner, "path", inner))


def latest_day() -> str | None:
    """The newest complete monitoring partition: the day ``make run`` reports on."""
    from efficientai_assets.defs.monitoring.assets import daily_partitions

    return daily_partitions.get_last_partition_key()


def main() -> None:
    if sys.argv[1:] == ["--latest-day"]:
        print(latest_day())
        return
    print_summary()


def print_summary(instance: dg.DagsterInstance | None = None) -> None:
    """Where each store lives and what the newest materialization of each asset says (from
    ``instance``, default: ``DAGSTER_HOME``'s)."""
    home = default_home()
    instance = instance or dg.DagsterInstance.get()
    print(f"\nefficientai home: {home.root}")
    print(f"  MLflow tracking URI: {home.mlflow_tracking_uri}  (UI: make mlflow-ui)")
    print(f"  DVC registry: {home.data_registry}  remote: {home.dvc_remote}")
    print(f"  Dagster home: {home.dagster_home}  (UI: make dev)")
    for asset, keys in _WHAT_TO_SHOW:
        event = instance.get_latest_materialization_event(dg.AssetKey(asset))
        if event is None or event.asset_materialization is None:
            continue
        metadata = event.asset_materialization.metadata
        shown = [f"{key}={_text(metadata[key])}" for key in keys if key in metadata]
        print(f"  {asset}: " + ", ".join(shown))
        if (
            asset == CANDIDATE_ASSET
            and "blas" in metadata
            and _text(metadata["blas"]) == "reference"
        ):
            print(f"    {_SLOW_BLAS}")


if __name__ == "__main__":
    main()
