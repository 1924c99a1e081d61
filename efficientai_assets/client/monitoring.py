"""Monitoring from a script: the drift reference (the report itself is ``DriftMonitor``'s, in
``drift.py``) and the hardware snapshot in the seed guide's terms (``silicon.guide_metrics``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from efficientai_assets.client.core import ClientCore
from efficientai_assets.client.guard import guarded
from efficientai_assets.client.silicon import guide_metrics

if TYPE_CHECKING:
    import pandas as pd


class MonitoringMixin(ClientCore):
    """``set_reference_data`` and ``collect_apple_silicon_metrics``."""

    @guarded("set the drift reference")
    def set_reference_data(self, df: pd.DataFrame) -> None:
        """The frame ``evidently_monitor.generate_drift_report`` compares against by default."""
        self.evidently_monitor.set_reference(df)

    @guarded("read the hardware")
    def collect_apple_silicon_metrics(self) -> dict[str, Any]:
        """The hardware snapshot in the guide's terms; "unknown" wherever a reading is absent."""
        return guide_metrics(self.silicon_monitor.snapshot())
