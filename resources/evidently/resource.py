"""Data drift with Evidently behind an explicit schema, frame validation and bounded sampling, as a
Dagster resource: where reports go and the drift settings (one nested :class:`DriftSettings`).

The Dagster code location imports this module in every process, so it holds only the resource and
the plain types (:mod:`resources.evidently.types`); the numeric work — validation
(:mod:`~resources.evidently.validation`), reference profiles (:mod:`~resources.evidently.profile`)
and the Evidently run (:mod:`~resources.evidently.engine`) — is imported inside the methods and
functions that need it. ``compute_drift`` and ``generate_drift_report`` are importable from here
for use outside Dagster (the client, notebooks, benchmarks).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from resources.evidently.types import (
    P_VALUE_METHODS,
    CategoricalMethod,
    ColumnDrift,
    DriftInputError,
    DriftResult,
    DriftSchema,
    DriftSettings,
    NumericalMethod,
    ReferenceProfile,
    cdf_error,
    rows_for_error,
)
from resources.home import default_home

if TYPE_CHECKING:
    import pandas as pd

_PARTITION_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


def __getattr__(name: str) -> Any:
    """``compute_drift`` on first use (PEP 562): it lives in :mod:`resources.evidently.engine`,
    which imports numpy and pandas, and stays importable from here without loading them."""
    if name == "compute_drift":
        from resources.evidently.engine import compute_drift

        return compute_drift
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def generate_drift_report(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    schema: DriftSchema | None = None,
    output_dir: str | Path | None = None,
    settings: DriftSettings | None = None,
    small_samples: bool = False,
) -> dict[str, Any]:
    """Drift of ``current`` against ``reference`` as a JSON-safe dict (``drift_detected``,
    ``drift_score`` = share of drifted columns, per-column detail, ``warnings``). Without a schema
    the project's contract applies: every column but ``label`` is numerical. With ``output_dir``
    the HTML and JSON reports are written there and their paths added. ``small_samples=True``
    decides frames below ``settings.min_rows`` by exact tests (:mod:`resources.evidently.small`)
    instead of refusing them."""
    from resources.evidently.engine import compute_drift

    schema = schema or DriftSchema.for_features(list(reference.columns))
    settings = settings or DriftSettings()
    from resources.evidently.small import compute_small_sample_drift, is_small

    if small_samples and is_small(reference, current, schema, settings):
        result = compute_small_sample_drift(reference, current, schema, settings)
    else:
        result = compute_drift(reference, current, schema, settings)
    summary = result.summary()
    if output_dir is not None:
        html_path, json_path = result.save(Path(output_dir))
        summary["html_path"], summary["json_path"] = str(html_path), str(json_path)
    return summary


class EvidentlyResource(dg.ConfigurableResource):
    """Where drift reports go (``<home>/reports``) and how drift is decided (``drift``)."""

    reports_dir: str = Field(default="", description="Report root; empty means <home>/reports.")
    drift: DriftSettings = Field(
        default_factory=DriftSettings,
        description="Drift thresholds, methods, sampling bound and seed (one model, handed to "
        "every computation as it is).",
    )

    def settings(self) -> DriftSettings:
        """The drift settings every computation of this resource uses."""
        return self.drift

    def reports_root(self) -> Path:
        return (
            Path(self.reports_dir).expanduser().resolve()
            if self.reports_dir
            else (default_home().reports)
        )

    def partition_dir(self, partition_key: str) -> Path:
        """``<reports>/<partition>``; the key must be a plain name (no path separators)."""
        if not _PARTITION_KEY.match(partition_key):
            raise DriftInputError(f"partition key {partition_key!r} is not a plain folder name")
        return self.reports_root() / partition_key

    def reference_profile(
        self, key: str, load: Callable[[], pd.DataFrame], schema: DriftSchema
    ) -> tuple[ReferenceProfile, str]:
        """The reference profile for ``key`` (e.g. a data md5), computed at most once per
        settings and stored under ``<reports>/reference/``; also says where it came from."""
        from resources.evidently.profile import cached_reference_profile

        folder = self.reports_root() / "reference"
        return cached_reference_profile(key, load, schema, self.drift, folder)

    def check_frame(
        self, frame: pd.DataFrame, schema: DriftSchema, role: str,
        reference: ReferenceProfile | None = None,
    ) -> None:  # fmt: skip
        """Raise :class:`DriftInputError` naming the column when ``frame`` cannot be compared."""
        from resources.evidently.validation import validate_frame

        validate_frame(frame, schema, role, self.drift.min_rows, reference)

    def compute(
        self,
        reference: pd.DataFrame | ReferenceProfile,
        current: pd.DataFrame,
        schema: DriftSchema,
    ) -> DriftResult:
        """The drift of ``current`` against ``reference`` under this resource's settings."""
        from resources.evidently.engine import compute_drift

        return compute_drift(reference, current, schema, self.drift)

    def decide(
        self, profile: ReferenceProfile, current: pd.DataFrame, schema: DriftSchema
    ) -> DriftResult:
        """The drift verdict for a step: computed directly with Evidently's statistics where the
        settings allow (:mod:`~resources.evidently.direct`: no Evidently import, milliseconds
        for a daily batch), else by Evidently itself (the result then carries its report)."""
        from resources.evidently.direct import compute_direct, supports

        if supports(schema, self.drift):
            return compute_direct(profile, current, schema, self.drift)
        return self.compute(profile, current, schema)

    def publish(
        self,
        result: DriftResult,
        profile: ReferenceProfile,
        current_path: Path,
        folder: Path,
        stem: str = "drift",
    ) -> tuple[Path, Path]:
        """Write ``<stem>.json`` and ``<stem>.html`` for ``result`` into ``folder``: at once when
        it carries Evidently's report, else the JSON now and the HTML from a child process
        (:mod:`~resources.evidently.render`) that renders ``current_path`` against the stored
        ``profile``. Returns (html, json)."""
        if result.snapshot is not None:
            return result.save(folder, stem)
        from resources.evidently.profile import save_profile
        from resources.evidently.render import start_render

        profile_folder = self.reports_root() / "reference" / profile.key
        if not (profile_folder / "profile.json").is_file():  # a profile this process had in memory
            save_profile(profile, profile_folder)
        return start_render(
            result, profile.schema, profile_folder=profile_folder, current_path=current_path,
            folder=folder, stem=stem,
        )  # fmt: skip


__all__ = [
    "P_VALUE_METHODS",
    "CategoricalMethod",
    "ColumnDrift",
    "DriftInputError",
    "DriftResult",
    "DriftSchema",
    "DriftSettings",
    "EvidentlyResource",
    "NumericalMethod",
    "ReferenceProfile",
    "cdf_error",
    "generate_drift_report",
    "rows_for_error",
]
