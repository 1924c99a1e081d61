"""Monitor data and the machine as the guide does: drift reports, hardware metrics, a scheduling
decision, all recorded in one run.

Run from the repository root (``EFFICIENTAI_HOME`` picks the home; default ``.efficientai/``)::

    .venv/bin/python docs/examples/monitoring_workflow.py

Three drift reports through ``EvidentlyMonitor`` (each kept as HTML + JSON under
``<home>/reports/<project>/``): the guide's own five rows (a small sample, decided by an exact test
and flagged in ``warnings``), then half of the digits sample against the other half, unchanged and
brightened. Then the machine's metrics and whether a retraining should start now, by the hardware
gate's policy. Everything lands in a run of ``<project>/monitoring``.
"""

from __future__ import annotations

import os

import pandas as pd

from efficientai_assets.client import MLOpsClient
from efficientai_assets.client.evidently_monitor import EvidentlyMonitor
from efficientai_assets.client.silicon import AppleSiliconMonitor
from efficientai_assets.client.thermal_scheduler import ThermalAwareScheduler
from efficientai_assets.defs.data.datasets import sample_digits


def main() -> None:
    project = os.environ.get("EFFICIENTAI_PROJECT", "efficientai")
    client = MLOpsClient(project)
    monitor = EvidentlyMonitor(project_name=project)

    tiny = monitor.generate_drift_report(
        pd.DataFrame({"feature": [6, 7, 8, 9, 10]}), pd.DataFrame({"feature": [1, 2, 3, 4, 5]})
    )
    print(f"five rows apart:    drift_detected={tiny['drift_detected']}")
    for warning in tiny["warnings"]:
        print(f"  warning: {warning}")

    frame = sample_digits().drop(columns="label")
    reference, current = frame.iloc[::2], frame.iloc[1::2]
    same = monitor.generate_drift_report(current, reference)
    brighter = monitor.generate_drift_report((current * 1.6).clip(upper=16.0), reference)
    print(f"same distribution:  drift_detected={same['drift_detected']}")
    print(f"brighter pixels:    drift_detected={brighter['drift_detected']} "
          f"(score {brighter['drift_score']:.2f}) report {brighter['html_path']}")  # fmt: skip

    metrics = AppleSiliconMonitor(client.silicon_monitor).get_metrics()
    decision = ThermalAwareScheduler(client.silicon_monitor).should_run_task(
        task_type="retraining", priority="normal", estimated_duration_minutes=10
    )
    print(f"machine: {metrics['chip_type']}, thermal {metrics['thermal_state']}, "
          f"memory pressure {metrics['memory_pressure']}")  # fmt: skip
    print(f"retrain now? {decision.should_run}: {decision.reason}")

    experiment_id = client.create_experiment("monitoring")
    with client.start_run("guide-monitoring", experiment_id=experiment_id):
        client.log_metrics(
            {
                "drift_score_small_sample": tiny["drift_score"],
                "drift_score_same": same["drift_score"],
                "drift_score_brighter": brighter["drift_score"],
                "retrain_allowed": float(decision.should_run),
            }
        )
        client.log_params({f"hardware.{key}": value for key, value in metrics.items()
                           if key != "notes"})  # fmt: skip
        client.log_artifact(brighter["html_path"])


if __name__ == "__main__":
    main()
