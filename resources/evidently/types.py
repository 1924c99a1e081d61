"""The plain values of drift detection: schema, settings, reference profile, verdicts, errors.

Both the resource (:mod:`resources.evidently.resource`, loaded by the Dagster code location in
every process) and the numeric modules (:mod:`~resources.evidently.validation`,
:mod:`~resources.evidently.profile`, :mod:`~resources.evidently.engine`, which need numpy and
pandas) use these types; they live here so that neither side imports the other for them.

Sampling bound: each side is reduced to a uniform random sample of at most
``n = ceil(ln(2/alpha) / (2 * eps**2))`` rows. By the Dvoretzky–Kiefer–Wolfowitz inequality the
empirical CDF of such a sample is within ``eps`` (sup norm) of the full frame's CDF with
probability at least ``1 - alpha`` (:func:`rows_for_error`, :func:`cdf_error`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from pydantic import Field, model_validator

if TYPE_CHECKING:
    import pandas as pd

NumericalMethod = Literal[
    "wasserstein", "ks", "psi", "jensenshannon", "kl_div", "hellinger", "ed",
    "anderson", "cramer_von_mises", "mannw", "t_test",
]  # fmt: skip
CategoricalMethod = Literal[
    "jensenshannon", "chisquare", "z", "psi", "kl_div", "hellinger", "TVD", "fisher_exact", "g_test"
]
# Methods whose score is a p-value (drift when score < threshold); the others are distances.
P_VALUE_METHODS = frozenset(
    ["ks", "chisquare", "z", "anderson", "cramer_von_mises", "mannw", "t_test", "TVD",
     "fisher_exact", "g_test"]
)  # fmt: skip


class DriftInputError(ValueError):
    """A frame cannot be compared; the message names the column and the problem."""


# ---- schema and settings --------------------------------------------------------------------


@dataclass(frozen=True)
class DriftSchema:
    """Which columns are compared, and how: declared, never inferred from dtypes.

    ``target`` (the label) is validated when present but not drift-tested: labels often arrive
    late, and the drift share must mean the same thing with or without them.
    """

    numerical: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    target: str | None = None

    def __post_init__(self) -> None:
        columns = [*self.numerical, *self.categorical]
        if not columns:
            raise DriftInputError(
                "a drift schema needs at least one numerical or categorical column"
            )
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        if duplicated:
            raise DriftInputError(f"drift schema declares columns more than once: {duplicated}")
        if self.target is not None and self.target in columns:
            raise DriftInputError(f"target {self.target!r} is also declared as a feature column")

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numerical, *self.categorical)

    @classmethod
    def for_features(cls, columns: Sequence[str], target: str | None = "label") -> DriftSchema:
        """The project's data contract: every column except the label is a numeric feature
        (the data assets enforce it on the training data before versioning it)."""
        return cls(numerical=tuple(c for c in columns if c != target), target=target)

    def to_json(self) -> dict[str, Any]:
        return {"numerical": list(self.numerical), "categorical": list(self.categorical),
                "target": self.target}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DriftSchema:
        return cls(
            tuple(data["numerical"]), tuple(data.get("categorical") or ()), data.get("target")
        )


def rows_for_error(epsilon: float, confidence: float) -> int:
    """Sample size at which an empirical CDF is within ``epsilon`` with this confidence (DKW)."""
    if not 0 < epsilon < 1 or not 0 < confidence < 1:
        raise ValueError("epsilon and confidence must both lie strictly between 0 and 1")
    return math.ceil(math.log(2.0 / (1.0 - confidence)) / (2.0 * epsilon**2))


def cdf_error(rows_used: int, rows_total: int, confidence: float) -> float:
    """The DKW bound for a sample of ``rows_used`` out of ``rows_total`` (0 when not sampled)."""
    if rows_used >= rows_total:
        return 0.0
    return math.sqrt(math.log(2.0 / (1.0 - confidence)) / (2.0 * rows_used))


class DriftSettings(dg.Config):
    """Everything that decides a drift verdict, as one typed model: the ``drift`` field of
    ``EvidentlyResource`` and the ``settings`` of every computation are this same object, so a
    new setting is declared once and reaches the engine without being copied field by field."""

    drift_share_threshold: float = Field(
        default=0.3, gt=0, le=1,
        description="Share of drifted columns at which a batch counts as drifted (WARN check, "
        "retraining trigger).",
    )  # fmt: skip
    numerical_method: NumericalMethod = Field(
        default="wasserstein",
        description="Test for numerical columns. A distance (default: normed Wasserstein) does not "
        "alarm on negligible shifts in large batches the way a p-value does.",
    )
    numerical_threshold: float = Field(default=0.1, gt=0, description="Its drift threshold.")
    categorical_method: CategoricalMethod = Field(
        default="jensenshannon", description="Test for categorical columns."
    )
    categorical_threshold: float = Field(default=0.1, gt=0, description="Its drift threshold.")
    sample_error: float = Field(
        default=0.02, gt=0, lt=1,
        description="Largest CDF error (sup norm) a sample may add; sets the rows per side.",
    )  # fmt: skip
    sample_confidence: float = Field(
        default=0.999, gt=0, lt=1, description="Probability that the sample error stays in bound."
    )
    min_rows: int = Field(default=30, ge=1, description="Smallest batch a drift test accepts.")
    seed: int = Field(default=0, description="Seed of the row sampling.")

    @model_validator(mode="after")
    def _sample_size_is_defined(self) -> DriftSettings:
        rows_for_error(self.sample_error, self.sample_confidence)
        return self

    @property
    def max_rows(self) -> int:
        return rows_for_error(self.sample_error, self.sample_confidence)

    def to_json(self) -> dict[str, Any]:
        return dict(self.model_dump())

    def fingerprint(self, schema: DriftSchema) -> str:
        """Names a reference profile: it changes with any setting or the schema, so a stored
        profile is never reused under settings it was not built with."""
        payload = {"settings": self.to_json(), "schema": schema.to_json()}
        text = json.dumps(payload, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---- the reference profile ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceProfile:
    """The reference side, computed once (:func:`resources.evidently.profile.build_profile`):
    its sample and what validation compares later batches against."""

    key: str
    schema: DriftSchema
    rows: int
    sample: pd.DataFrame = field(repr=False)
    dtypes: dict[str, str]
    categories: dict[str, tuple[Any, ...]]
    category_kinds: dict[str, str]
    ranges: dict[str, tuple[float, float, float]]  # min, max, std per numerical column
    cdf_error: float


def write_text_atomic(path: Path, text: str) -> None:
    """Write through a temporary file, so a reader never sees half a document."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---- the verdict -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict, as Evidently computed it."""

    column: str
    column_type: Literal["numerical", "categorical"]
    method: str
    score: float
    score_kind: Literal["p_value", "distance"]
    threshold: float
    drifted: bool
    error_bound: float | None  # bound on the score's sampling error; None when not derivable


@dataclass
class DriftResult:
    """A drift verdict with its per-column detail; ``save`` writes the HTML and JSON reports."""

    columns: tuple[ColumnDrift, ...]
    drift_share: float
    drifted_count: int
    drift_share_threshold: float
    reference_rows: int
    current_rows: int
    reference_rows_used: int
    current_rows_used: int
    cdf_error_bound: float  # DKW bound of each sampled CDF (0 when nothing was sampled)
    settings: DriftSettings
    snapshot: Any = field(default=None, repr=False)  # evidently Snapshot
    warnings: tuple[str, ...] = ()  # what the reader must know (e.g. a small-sample test)

    @property
    def dataset_drift(self) -> bool:
        return self.drift_share >= self.drift_share_threshold

    @property
    def drifted_columns(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.drifted]

    def summary(self) -> dict[str, Any]:
        """JSON-safe verdict; ``drift_detected``/``drift_score`` are the client's fields."""
        return {
            "drift_detected": self.dataset_drift,
            "drift_score": self.drift_share,
            "drift_share": self.drift_share,
            "drift_share_threshold": self.drift_share_threshold,
            "drifted_count": self.drifted_count,
            "columns_tested": len(self.columns),
            "drifted_columns": [c.column for c in self.drifted_columns],
            "columns": [asdict(c) for c in self.columns],
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "reference_rows_used": self.reference_rows_used,
            "current_rows_used": self.current_rows_used,
            "sampled": self.cdf_error_bound > 0,
            "cdf_error_bound": self.cdf_error_bound,
            "sample_confidence": self.settings.sample_confidence,
            "settings": self.settings.to_json(),
            "warnings": list(self.warnings),
        }

    def save(self, folder: Path, stem: str = "drift") -> tuple[Path, Path]:
        """Write ``<stem>.html`` (Evidently) and ``<stem>.json`` (verdict + Evidently's metrics),
        each through a temporary file so a reader never sees half a report."""
        if self.snapshot is None:
            raise RuntimeError("this drift result has no Evidently snapshot to render")
        folder.mkdir(parents=True, exist_ok=True)
        html_path, json_path = folder / f"{stem}.html", folder / f"{stem}.json"
        tmp_html = folder / f".{stem}.html.{os.getpid()}.tmp"
        self.snapshot.save_html(str(tmp_html))
        document = {"summary": self.summary(), "evidently": json.loads(self.snapshot.json())}
        write_text_atomic(json_path, json.dumps(document, indent=1))
        os.replace(tmp_html, html_path)
        return html_path, json_path
