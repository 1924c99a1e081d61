"""The client's drift monitor: a current frame against a reference, through
``EvidentlyResource``'s settings and the project's drift function (explicit schema, validated
frames, bounded sampling) — the same computation as the ``drift_report`` asset.

Frames smaller than the settings' ``min_rows`` are not refused: they are decided by exact tests
(``resources.evidently.small``) and the result's ``warnings`` say so. Errors leave as
``MLOpsClientError`` subclasses (a frame that cannot be compared: ``DriftInputError``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from efficientai_assets.client.errors import ArgumentTypeError, MLOpsClientError
from efficientai_assets.client.guard import guarded
from resources.evidently.resource import DriftSchema, EvidentlyResource, generate_drift_report

if TYPE_CHECKING:
    import pandas as pd


class DriftMonitor:
    """Drift of a current frame against a reference, through ``EvidentlyResource``'s settings and
    the project's drift function (explicit schema, validated frames, bounded sampling)."""

    def __init__(self, resource: EvidentlyResource) -> None:
        self.resource = resource
        self._reference: pd.DataFrame | None = None
        self._lock = threading.Lock()

    @property
    def reference(self) -> pd.DataFrame | None:
        return self._reference

    @guarded("set the drift reference")
    def set_reference(self, frame: pd.DataFrame) -> None:
        """Validate ``frame`` as a drift reference now (not at the first report), then keep it."""
        from resources.evidently.small import sparse_columns, validate_small_frame

        schema = self._schema(frame, "reference data")
        min_rows = self.resource.settings().min_rows
        if len(frame) < min_rows or sparse_columns(frame, schema, min_rows):
            validate_small_frame(frame, schema, "reference data")
        else:
            self.resource.check_frame(frame, schema, "reference data")
        with self._lock:
            self._reference = frame

    @guarded("generate a drift report")
    def generate_drift_report(
        self,
        current: pd.DataFrame,
        reference: pd.DataFrame | None = None,
        output_dir: str | Path | None = None,
    ) -> dict[str, Any]:
        """``drift_detected``, ``drift_score`` (share of drifted columns), per-column detail and
        ``warnings``.

        ``reference`` defaults to the frame given to ``set_reference_data``. Every column except
        ``label`` is compared as numerical; with ``output_dir`` the HTML and JSON reports are
        written there too. Small frames are decided by exact tests, with a warning.
        """
        if reference is None:
            reference = self._reference
        if reference is None:
            raise MLOpsClientError(
                "no reference data: pass reference=... or call set_reference_data(df) first"
            )
        self._schema(current, "current data")
        return generate_drift_report(
            current,
            reference,
            schema=self._schema(reference, "reference data"),
            output_dir=output_dir,
            settings=self.resource.settings(),
            small_samples=True,
        )

    @staticmethod
    def _schema(frame: Any, role: str) -> DriftSchema:
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            raise ArgumentTypeError(
                f"{role} must be a pandas DataFrame, got {type(frame).__name__}"
            )
        return DriftSchema.for_features([str(c) for c in frame.columns])
