"""The reference side of drift detection: profiled once per data version and settings, reused
from memory or disk for every later batch.

A profile is the reference's seeded sample (at most ``settings.max_rows`` rows, see
:func:`~resources.evidently.types.rows_for_error`) plus what validation compares later batches
against: dtypes, categories and how they are coded, numeric ranges. Needs numpy and pandas: the
resource imports this module inside the functions that use it.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from resources.evidently.types import (
    DriftInputError,
    DriftSchema,
    DriftSettings,
    ReferenceProfile,
    cdf_error,
    write_text_atomic,
)
from resources.evidently.validation import category_kind, category_values, validate_frame

_PROFILE_CACHE_SIZE = 4
# The profiles of this process, newest last; a few data versions at most are live at once.
PROFILE_CACHE: OrderedDict[str, ReferenceProfile] = OrderedDict()


def sample_rows(
    frame: pd.DataFrame, columns: Sequence[str], max_rows: int, seed: int
) -> pd.DataFrame:
    """At most ``max_rows`` rows of ``columns``; only the sampled rows are copied."""
    if len(frame) <= max_rows:
        return frame.loc[:, list(columns)].reset_index(drop=True)
    rows = np.sort(np.random.default_rng(seed).choice(len(frame), size=max_rows, replace=False))
    return frame.take(rows).loc[:, list(columns)].reset_index(drop=True)


def sample_current(
    current: pd.DataFrame, schema: DriftSchema, settings: DriftSettings, profile: ReferenceProfile
) -> tuple[pd.DataFrame, float]:
    """The current batch checked against the reference profile, validated and sampled within the
    stated bound; returns the sample and its CDF error (the same for every drift computation)."""
    if profile.schema.features != schema.features:
        raise DriftInputError(
            f"the reference profile was built for columns {list(profile.schema.features)[:5]}…, "
            f"not the requested schema"
        )
    validate_frame(current, schema, "current batch", settings.min_rows, profile)
    sample = sample_rows(current, schema.features, settings.max_rows, settings.seed + 1)
    return sample, cdf_error(len(sample), len(current), settings.sample_confidence)


def build_profile(
    frame: pd.DataFrame, schema: DriftSchema, settings: DriftSettings, key: str = ""
) -> ReferenceProfile:
    """Validate the reference frame, sample it and record what later batches are checked against."""
    validate_frame(frame, schema, "reference", settings.min_rows)
    columns = [*schema.features]
    if schema.target is not None and schema.target in frame.columns:
        columns.append(schema.target)
    sample = sample_rows(frame, columns, settings.max_rows, settings.seed)
    categorical = [*schema.categorical]
    if schema.target is not None and schema.target in frame.columns:
        categorical.append(schema.target)
    ranges = {}
    for column in schema.numerical:
        values = frame[column].to_numpy(dtype=np.float64, copy=False)
        ranges[column] = (
            float(np.nanmin(values)),
            float(np.nanmax(values)),
            float(np.nanstd(values)),
        )
    return ReferenceProfile(
        key=key or settings.fingerprint(schema),
        schema=schema,
        rows=len(frame),
        sample=sample,
        dtypes={c: str(frame[c].dtype) for c in columns},
        categories={c: tuple(category_values(frame[c])) for c in categorical},
        category_kinds={c: category_kind(frame[c]) for c in categorical},
        ranges=ranges,
        cdf_error=cdf_error(len(sample), len(frame), settings.sample_confidence),
    )


def save_profile(profile: ReferenceProfile, folder: Path) -> None:
    """Persist as ``sample.parquet`` + ``profile.json`` (written last, so it marks completion)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"sample.parquet.{os.getpid()}.tmp"
    profile.sample.to_parquet(tmp, index=False)
    os.replace(tmp, folder / "sample.parquet")
    meta = {
        "key": profile.key, "schema": profile.schema.to_json(), "rows": profile.rows,
        "dtypes": profile.dtypes, "categories": {k: list(v) for k, v in profile.categories.items()},
        "category_kinds": profile.category_kinds,
        "ranges": {k: list(v) for k, v in profile.ranges.items()}, "cdf_error": profile.cdf_error,
    }  # fmt: skip
    write_text_atomic(folder / "profile.json", json.dumps(meta, indent=1, default=str))


def load_profile(folder: Path) -> ReferenceProfile | None:
    """The profile saved in ``folder``, or None when absent or unreadable."""
    try:
        meta = json.loads((folder / "profile.json").read_text())
        sample = pd.read_parquet(folder / "sample.parquet")
        return ReferenceProfile(
            key=meta["key"],
            schema=DriftSchema.from_json(meta["schema"]),
            rows=int(meta["rows"]),
            sample=sample,
            dtypes=dict(meta["dtypes"]),
            categories={k: tuple(v) for k, v in meta["categories"].items()},
            category_kinds=dict(meta["category_kinds"]),
            ranges={k: (v[0], v[1], v[2]) for k, v in meta["ranges"].items()},
            cdf_error=float(meta["cdf_error"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remember(profile: ReferenceProfile) -> ReferenceProfile:
    PROFILE_CACHE[profile.key] = profile
    PROFILE_CACHE.move_to_end(profile.key)
    while len(PROFILE_CACHE) > _PROFILE_CACHE_SIZE:
        PROFILE_CACHE.popitem(last=False)
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
    if full_key in PROFILE_CACHE:
        PROFILE_CACHE.move_to_end(full_key)
        return PROFILE_CACHE[full_key], "memory"
    if folder is not None:
        stored = load_profile(folder / full_key)
        if stored is not None and stored.key == full_key:
            return _remember(stored), "disk"
    profile = build_profile(load(), schema, settings, key=full_key)
    if folder is not None:
        save_profile(profile, folder / full_key)
    return _remember(profile), "computed"
