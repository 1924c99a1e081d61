"""The code location: assembles assets, checks, jobs, sensors and resources — nothing else.

Every Dagster process (webserver, daemon, each run) imports this module, so it and everything it
imports keep heavy libraries (mlflow, evidently, bentoml, mlx, dvc, sklearn) inside function bodies.
"""

from __future__ import annotations

import os

import dagster as dg

from efficientai_assets import data, training
from efficientai_assets.jobs import pipeline_job, training_job
from resources.defaults import DEFAULT_NAMESPACE, build_resources

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([data, training]),
    jobs=[pipeline_job, training_job],
    resources=build_resources(os.environ.get("EFFICIENTAI_PROJECT", DEFAULT_NAMESPACE)),
    executor=dg.in_process_executor,
)
