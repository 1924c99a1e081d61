"""The code location: the defs folder (one package per domain), the sensors and the resources.

Every Dagster process (webserver, daemon, each run, each Celery step) imports this module, so it
and everything it loads keep heavy libraries (mlflow, evidently, bentoml, mlx, dvc, sklearn)
inside function bodies. The defs folder holds plain Python modules (no components), so it is
loaded as a package with ``dg.load_definitions_from_package_module`` — the loader
``dg.load_from_defs_folder`` applies to each such module (tests/test_code_location_load.py
holds the two to the same definitions) — without the defs folder's component-library snapshot, which scans
every installed distribution's entry points and cost a third of this import
(docs/performance.md). Dagster marks that loader "preview"; its warning is silenced here only.
"""

import gc
import os
import warnings

import dagster as dg

# Dagster's import leaves over 100,000 long-lived tracked objects; the next full collection, which
# the project's own imports trigger, would scan them all (~0.1 s in every Dagster process).
# Freezing them keeps every later collection of this process to the objects created after it.
gc.freeze()

import efficientai_assets.defs  # noqa: E402 (after the freeze)
from resources.defaults import DEFAULT_NAMESPACE, build_resources  # noqa: E402 (after the freeze)
from resources.stack.executor import executor_from_environment  # noqa: E402 (after the freeze)
from sensors.drift import drift_retrain_sensor  # noqa: E402 (after the freeze)
from sensors.thermal import thermal_gate_sensor  # noqa: E402 (after the freeze)


def domain_definitions() -> dg.Definitions:
    """Everything the defs folder defines (a function: Dagster allows one module-level
    ``Definitions`` in a code location)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.load_definitions_from_package_module(efficientai_assets.defs)


defs = dg.Definitions.merge(
    domain_definitions(),
    dg.Definitions(
        sensors=[thermal_gate_sensor, drift_retrain_sensor],
        resources=build_resources(os.environ.get("EFFICIENTAI_PROJECT", DEFAULT_NAMESPACE)),
        executor=executor_from_environment(),
    ),
)
