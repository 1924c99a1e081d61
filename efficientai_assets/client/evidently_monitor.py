"""The seed guide's ``EvidentlyMonitor(project_name=...)``: drift reports for one project, on the
home's ``EvidentlyResource`` and the project's drift function (``drift.DriftMonitor``).

Unlike ``MLOpsClient.evidently_monitor`` (which writes files only when given ``output_dir``), the
guide's monitor keeps every report: Evidently's HTML and the JSON verdict go under
``<reports of the project>/<project>/<UTC time>-<id>/``, in the project's own reports folder of
the home (``<home>/reports/`` for the default namespace, so ``<home>/reports/efficientai/`` as
before; ``<home>/reports/namespaces/<project>/`` for any other), beside its daily reports; their
paths are in the result.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from efficientai_assets.client.drift import DriftMonitor
from efficientai_assets.client.guard import guarded
from efficientai_assets.client.wiring import DEFAULT_NAMESPACE, check_namespace, home_for, wired

if TYPE_CHECKING:
    import pandas as pd


class EvidentlyMonitor(DriftMonitor):
    """Drift of current data against reference data, each report kept under the project's
    reports folder."""

    @guarded("create the drift monitor")
    def __init__(
        self, project_name: str = DEFAULT_NAMESPACE, workspace_root: str | Path | None = None
    ) -> None:
        self.project_name = check_namespace(project_name, "project_name")
        home = home_for(workspace_root)
        super().__init__(wired(self.project_name, home)["evidently"])
        self.reports_dir = self.resource.reports_root() / self.project_name

    def generate_drift_report(
        self,
        current: pd.DataFrame,
        reference: pd.DataFrame | None = None,
        output_dir: str | Path | None = None,
    ) -> dict[str, Any]:
        """``drift_detected``, ``drift_score``, per-column detail, ``warnings``, and the paths of
        the HTML and JSON reports (``output_dir``, default a new folder under ``reports_dir``)."""
        if output_dir is None:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            output_dir = self.reports_dir / f"{stamp}-{secrets.token_hex(3)}"
        return super().generate_drift_report(current, reference, output_dir)
