"""Data drift with Evidently behind an explicit schema, frame validation and bounded sampling.

Evidently 0.7 infers column types when it is not told, and then silently drops a column missing
from the current data, reports "no drift" on one row, raises a false alarm when categories are
int-coded on one side and strings on the other, and crashes on a column that changed type. Here
every frame is checked against a declared :class:`DriftSchema` first, and any such problem is an
error naming the column.

Large frames are sampled: each side is reduced to a uniform random sample of at most ``n`` rows,
with ``n = ceil(ln(2/alpha) / (2 * eps**2))``. By the Dvoretzky–Kiefer–Wolfowitz inequality the
empirical CDF of such a sample is within ``eps`` (sup norm) of the full frame's CDF with
probability at least ``1 - alpha``, so a Kolmogorov–Smirnov distance moves by at most ``2 * eps``
and a normed Wasserstein distance by at most ``eps * (range_ref + range_cur) / std_ref`` (reported
per column). Defaults ``eps = 0.02`` and ``alpha = 0.001`` give 9,502 rows per side (a KS
distance within 0.04 of the full-data value; the typical error is ~1/sqrt(n) = 0.01). A frame at or
under ``n`` rows is used whole (no error). P-value tests on a random sample stay valid tests of
the same null hypothesis; they only lose power.

The reference side is profiled once (its sample, dtypes, categories, ranges) and reused for
every current batch, in memory and on disk. This module is imported by the Dagster code location
in every process, so it holds only the schema, settings, results and the resource; the numeric
work lives in :mod:`resources.evidently.engine` (numpy, pandas, Evidently), imported inside the
functions that need it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from pydantic import Field

from resources.home import default_home

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
    [
        "ks",
        "chisquare",
        "z",
        "anderson",
        "cramer_von_mises",
        "mannw",
        "t_test",
        "TVD",
        "fisher_exact",
        "g_test",
    ]
)
_PARTITION_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_PROFILE_CACHE_SIZE = 4
_PROFILE_CACHE: OrderedDict[str, ReferenceProfile] = OrderedDict()


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
        (``efficientai_assets.defs.data.datasets.validate_dataset`` enforces it on the training data)."""
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


@dataclass(frozen=True)
class DriftSettings:
    """Everything that decides a drift verdict; the resource's fields map onto it one to one."""

    drift_share_threshold: float = 0.3
    numerical_method: str = "wasserstein"
    numerical_threshold: float = 0.1
    categorical_method: str = "jensenshannon"
    categorical_threshold: float = 0.1
    sample_error: float = 0.02
    sample_confidence: float = 0.999
    min_rows: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.drift_share_threshold <= 1:
            raise ValueError("drift_share_threshold must be in (0, 1]")
        if self.min_rows < 1:
            raise ValueError("min_rows must be at least 1")
        rows_for_error(self.sample_error, self.sample_confidence)

    @property
    def max_rows(self) -> int:
        return rows_for_error(self.sample_error, self.sample_confidence)

    def fingerprint(self, schema: DriftSchema) -> str:
        payload = {"settings": asdict(self), "schema": schema.to_json()}
        text = json.dumps(payload, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---- validation ------------------------------------------------------------------------------


def validate_frame(
    frame: pd.DataFrame,
    schema: DriftSchema,
    role: str,
    min_rows: int = 1,
    reference: ReferenceProfile | None = None,
) -> None:
    """Raise :class:`DriftInputError` for anything that would make a drift verdict meaningless
    (see ``drift_engine.validate_frame`` for the checks)."""
    from resources.evidently import engine as drift_engine

    drift_engine.validate_frame(frame, schema, role, min_rows, reference)


# ---- the reference profile ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceProfile:
    """The reference side, computed once: its sample and what validation compares against."""

    key: str
    schema: DriftSchema
    rows: int
    sample: pd.DataFrame = field(repr=False)
    dtypes: dict[str, str]
    categories: dict[str, tuple[Any, ...]]
    category_kinds: dict[str, str]
    ranges: dict[str, tuple[float, float, float]]  # min, max, std per numerical column
    cdf_error: float

    @classmethod
    def build(
        cls, frame: pd.DataFrame, schema: DriftSchema, settings: DriftSettings, key: str = ""
    ) -> ReferenceProfile:
        from resources.evidently import engine as drift_engine

        return drift_engine.build_profile(frame, schema, settings, key)

    def save(self, folder: Path) -> None:
        """Persist as ``sample.parquet`` + ``profile.json`` (written last, so it marks completion)."""
        from resources.evidently import engine as drift_engine

        drift_engine.save_profile(self, folder)

    @classmethod
    def load(cls, folder: Path) -> ReferenceProfile | None:
        """The profile saved in ``folder``, or None when absent or unreadable."""
        from resources.evidently import engine as drift_engine

        return drift_engine.load_profile(folder)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _remember(profile: ReferenceProfile) -> ReferenceProfile:
    _PROFILE_CACHE[profile.key] = profile
    _PROFILE_CACHE.move_to_end(profile.key)
    while len(_PROFILE_CACHE) > _PROFILE_CACHE_SIZE:
        _PROFILE_CACHE.popitem(last=False)
    return profile


def cached_reference_profile(
    key: str,
    load: Callable[[], pd.DataFrame],
    schema: DriftSchema,
    settings: DriftSettings,
    folder: Path | None = None,
) -> tuple[ReferenceProfile, str]:
    """The profile for ``key`` from memory, else from ``folder``, else built from ``load()``.

    Returns the profile and where it came from ('memory', 'disk' or 'computed').
    """
    full_key = f"{key}-{settings.fingerprint(schema)}"
    if full_key in _PROFILE_CACHE:
        _PROFILE_CACHE.move_to_end(full_key)
        return _PROFILE_CACHE[full_key], "memory"
    if folder is not None:
        stored = ReferenceProfile.load(folder / full_key)
        if stored is not None and stored.key == full_key:
            return _remember(stored), "disk"
    profile = ReferenceProfile.build(load(), schema, settings, key=full_key)
    if folder is not None:
        profile.save(folder / full_key)
    return _remember(profile), "computed"


# ---- the drift computation ---------------------------------------------------------------------


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
            "settings": asdict(self.settings),
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
        _write_text_atomic(json_path, json.dumps(document, indent=1))
        os.replace(tmp_html, html_path)
        return html_path, json_path


def compute_drift(
    reference: pd.DataFrame | ReferenceProfile,
    current: pd.DataFrame,
    schema: DriftSchema,
    settings: DriftSettings | None = None,
) -> DriftResult:
    """The drift of ``current`` against ``reference`` (see ``drift_engine.compute_drift``)."""
    from resources.evidently import engine as drift_engine

    return drift_engine.compute_drift(reference, current, schema, settings)


def generate_drift_report(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    schema: DriftSchema | None = None,
    output_dir: str | Path | None = None,
    settings: DriftSettings | None = None,
) -> dict[str, Any]:
    """Drift of ``current`` against ``reference`` as a JSON-safe dict (``drift_detected``,
    ``drift_score`` = share of drifted columns, per-column detail). Without a schema the
    project's contract applies: every column but ``label`` is numerical. With ``output_dir`` the
    HTML and JSON reports are written there and their paths added."""
    schema = schema or DriftSchema.for_features(list(reference.columns))
    result = compute_drift(reference, current, schema, settings)
    summary = result.summary()
    if output_dir is not None:
        html_path, json_path = result.save(Path(output_dir))
        summary["html_path"], summary["json_path"] = str(html_path), str(json_path)
    return summary


# ---- the resource ----------------------------------------------------------------------------


class EvidentlyResource(dg.ConfigurableResource):
    """Drift thresholds, methods, sampling bound and where reports go (``<home>/reports``)."""

    reports_dir: str = Field(default="", description="Report root; empty means <home>/reports.")
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

    def settings(self) -> DriftSettings:
        return DriftSettings(
            drift_share_threshold=self.drift_share_threshold,
            numerical_method=self.numerical_method,
            numerical_threshold=self.numerical_threshold,
            categorical_method=self.categorical_method,
            categorical_threshold=self.categorical_threshold,
            sample_error=self.sample_error,
            sample_confidence=self.sample_confidence,
            min_rows=self.min_rows,
            seed=self.seed,
        )

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
        settings and stored under ``<reports>/reference/``."""
        return cached_reference_profile(
            key, load, schema, self.settings(), self.reports_root() / "reference"
        )

    def check_frame(
        self, frame: pd.DataFrame, schema: DriftSchema, role: str,
        reference: ReferenceProfile | None = None,
    ) -> None:  # fmt: skip
        validate_frame(frame, schema, role, self.min_rows, reference)

    def compute(
        self,
        reference: pd.DataFrame | ReferenceProfile,
        current: pd.DataFrame,
        schema: DriftSchema,
    ) -> DriftResult:
        return compute_drift(reference, current, schema, self.settings())


__all__ = [
    "ColumnDrift",
    "DriftInputError",
    "DriftResult",
    "DriftSchema",
    "DriftSettings",
    "EvidentlyResource",
    "ReferenceProfile",
    "cached_reference_profile",
    "cdf_error",
    "compute_drift",
    "generate_drift_report",
    "rows_for_error",
    "validate_frame",
]
