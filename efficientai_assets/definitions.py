"""The code location: the defs folder (one package per domain), the sensors and the resources.

Every Dagster process (webserver, daemon, each run) imports this module, so it and everything it
loads keep heavy libraries (mlflow, evidently, bentoml, mlx, dvc, sklearn) inside function bodies.
"""

import os
from pathlib import Path

import dagster as dg

from resources.defaults import DEFAULT_NAMESPACE, build_resources
from resources.stack.executor import executor_from_environment
from sensors.drift import drift_retrain_sensor
from sensors.thermal import thermal_gate_sensor

defs = dg.Definitions.merge(
    dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
    dg.Definitions(
        sensors=[thermal_gate_sensor, drift_retrain_sensor],
        resources=build_resources(os.environ.get("EFFICIENTAI_PROJECT", DEFAULT_NAMESPACE)),
        executor=executor_from_environment(),
    ),
)
