"""The code location: assembles assets, checks, jobs, schedules, sensors and resources — nothing else.

Every Dagster process (webserver, daemon, each run) imports this module, so it and everything it
imports keep heavy libraries (mlflow, evidently, bentoml, mlx, dvc, sklearn) inside function bodies.
"""

import os

import dagster as dg

from efficientai_assets import data, monitoring, serving, training
from efficientai_assets.jobs import deployment_job, pipeline_job, training_job
from efficientai_assets.schedules import monitoring_job, monitoring_schedule
from resources.defaults import DEFAULT_NAMESPACE, build_resources
from sensors.drift import drift_retrain_sensor
from sensors.thermal import thermal_gate_sensor

defs = dg.Definitions(
    assets=[
        *dg.load_assets_from_modules([data, training, serving, monitoring]),
        monitoring.retraining_audit,
    ],
    jobs=[pipeline_job, training_job, deployment_job, monitoring_job],
    schedules=[monitoring_schedule],
    sensors=[thermal_gate_sensor, drift_retrain_sensor],
    resources=build_resources(os.environ.get("EFFICIENTAI_PROJECT", DEFAULT_NAMESPACE)),
    executor=dg.in_process_executor,
)
