"""The monitoring job (a day's batch → its drift report) and its daily schedule.

The schedule starts STOPPED: it needs a champion to compare against, and on a fresh home it
would fail nightly until one exists. Turn it on in the UI (Automation) or with
``dagster schedule start monitoring_daily``.
"""

import dagster as dg

from efficientai_assets.defs.monitoring.assets import daily_partitions
from efficientai_assets.names import (
    DRIFT_ASSET,
    INFERENCE_BATCH_ASSET,
    MONITORING_JOB,
    MONITORING_SCHEDULE,
)
from resources.stack.executor import executor_from_environment

monitoring_job = dg.define_asset_job(
    MONITORING_JOB,
    selection=dg.AssetSelection.assets(INFERENCE_BATCH_ASSET, DRIFT_ASSET),
    partitions_def=daily_partitions,
    executor_def=executor_from_environment(),
    description="A day's inference batch and its drift report (with the drift-share WARN check).",
)

monitoring_schedule = dg.build_schedule_from_partitioned_job(
    monitoring_job,
    name=MONITORING_SCHEDULE,
    hour_of_day=1,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every day at 01:00 (UTC): yesterday's batch and its drift report.",
)
