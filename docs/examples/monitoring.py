"""Check a batch of data for drift against a reference and record it with the machine's state.

Run from the repository root (``EFFICIENTAI_HOME`` picks the home; default ``.efficientai/``)::

    .venv/bin/python docs/examples/monitoring.py

The reference is half of the digits sample; the current batch is the other half with brighter
pixels, so drift is expected. The HTML and JSON reports go to ``<home>/reports/client-example/``
and, with the drift score and the hardware readings, into a run of ``<project>/monitoring``.
"""

from __future__ import annotations

import os

from efficientai_assets.client import MLOpsClient
from efficientai_assets.defs.data.datasets import sample_digits


def main() -> None:
    client = MLOpsClient(os.environ.get("EFFICIENTAI_PROJECT", "efficientai"))
    frame = sample_digits().drop(columns="label")
    reference, current = frame.iloc[::2], frame.iloc[1::2]
    brighter = (current * 1.6).clip(upper=16.0)

    client.set_reference_data(reference)
    same = client.evidently_monitor.generate_drift_report(current)
    report_dir = client.home.reports / "client-example"
    shifted = client.evidently_monitor.generate_drift_report(brighter, output_dir=report_dir)
    hardware = client.collect_apple_silicon_metrics()

    experiment_id = client.create_experiment("monitoring")
    with client.start_run("digits-brightness-check", experiment_id=experiment_id):
        client.log_metrics(
            {
                "drift_score": shifted["drift_score"],
                "drift_detected": float(shifted["drift_detected"]),
                "drift_score_same_distribution": same["drift_score"],
            }
        )
        client.log_params(
            {
                f"hardware.{key}": value
                for key, value in hardware.items()
                if key in ("chip_type", "thermal_state", "memory_pressure")
            }
        )
        client.log_artifact(shifted["html_path"])
        client.log_artifact(shifted["json_path"])

    print(
        f"same distribution: drift_detected={same['drift_detected']} "
        f"score={same['drift_score']:.2f}"
    )
    print(
        f"brighter pixels:   drift_detected={shifted['drift_detected']} "
        f"score={shifted['drift_score']:.2f} ({len(shifted['drifted_columns'])} columns)"
    )
    print(f"report: {shifted['html_path']}")
    print(
        f"hardware: thermal={hardware['thermal_state']} chip={hardware['chip_type']} "
        f"memory_pressure={hardware['memory_pressure']}"
    )


if __name__ == "__main__":
    main()
