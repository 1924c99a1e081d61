"""The retraining data of a drift-triggered run: the champion's reference window (its train +
validation splits) plus the labelled rows of the drifted batches.

The drift sensor only reads and requests: it puts what the run retrains on into the run's tags
(:meth:`RetrainingRequest.to_tags`). The ``raw_dataset`` step of that run reads them back
(:meth:`RetrainingRequest.from_tags`), assembles the data here and versions it, so the Parquet
work happens in a step — with its logs, retries and failure — not inside a sensor tick. No assets
here (Dagster loads every module of the defs folder); heavy libraries are imported inside
functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from efficientai_assets.defs.monitoring.reference import MonitoringError, fetch_split_files
from efficientai_assets.names import (
    LABEL_COLUMN,
    TAG_DRIFT_BATCHES,
    TAG_DRIFT_PARTITIONS,
    TAG_REFERENCE_COMMIT,
    TAG_REFERENCE_MD5,
    TAG_REFERENCE_ROWS,
    TAG_REFERENCE_SEED,
    TAG_REPLACED_CHAMPION,
    TAG_TRIGGER,
    TRAIN_SPLIT_FILE,
    TRIGGER_DRIFT,
    VALIDATION_SPLIT_FILE,
)
from resources.dvc.resource import DvcResource

if TYPE_CHECKING:
    import pandas as pd

_ALL_ROWS = "all"


class RetrainingDataError(MonitoringError):
    """The retraining data cannot be assembled (a tag is missing, the champion's data version is
    gone, a drifted batch is missing or unreadable); the description says which."""


@dataclass(frozen=True)
class RetrainingRequest:
    """What one drift-triggered run retrains on, as plain values that travel as run tags."""

    batches: tuple[tuple[str, str], ...]  # (partition, batch path), in partition order
    champion_version: str
    data_md5: str  # the champion's splits version: the reference window
    registry_commit: str  # the data registry commit that holds that version
    max_reference_rows: int | None = None  # cap on the reference window (seeded sample)
    seed: int = 0

    @property
    def partitions(self) -> tuple[str, ...]:
        return tuple(partition for partition, _ in self.batches)

    def describe(self) -> str:
        """One line for the dataset's ``source`` metadata and the step's log."""
        return (
            f"champion v{self.champion_version}'s training data {self.data_md5} + drifted "
            f"batches of {', '.join(self.partitions)}"
        )

    def to_tags(self) -> dict[str, str]:
        rows = _ALL_ROWS if self.max_reference_rows is None else str(self.max_reference_rows)
        return {
            TAG_TRIGGER: TRIGGER_DRIFT,
            TAG_DRIFT_PARTITIONS: ",".join(self.partitions),
            TAG_DRIFT_BATCHES: json.dumps(dict(self.batches), sort_keys=True),
            TAG_REPLACED_CHAMPION: self.champion_version,
            TAG_REFERENCE_MD5: self.data_md5,
            TAG_REFERENCE_COMMIT: self.registry_commit,
            TAG_REFERENCE_ROWS: rows,
            TAG_REFERENCE_SEED: str(self.seed),
        }

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> RetrainingRequest | None:
        """The request a run's tags carry; None for a run the drift sensor did not request.
        Raises :class:`RetrainingDataError` naming the tag when one is missing or malformed."""
        if tags.get(TAG_TRIGGER) != TRIGGER_DRIFT:
            return None

        def tag(name: str) -> str:
            value = tags.get(name, "")
            if not value:
                raise RetrainingDataError(
                    f"this drift-triggered run has no {name!r} tag, so its retraining data "
                    "cannot be assembled: launch it from the drift sensor (or re-execute a run "
                    "the sensor requested)"
                )
            return value

        try:
            batches = json.loads(tag(TAG_DRIFT_BATCHES))
            if not isinstance(batches, dict) or not batches:
                raise ValueError("expected a non-empty object of partition → batch path")
            pairs = tuple(sorted((str(p), str(path)) for p, path in batches.items()))
            rows = tag(TAG_REFERENCE_ROWS)
            return cls(
                batches=pairs,
                champion_version=tag(TAG_REPLACED_CHAMPION),
                data_md5=tag(TAG_REFERENCE_MD5),
                registry_commit=tag(TAG_REFERENCE_COMMIT),
                max_reference_rows=None if rows == _ALL_ROWS else int(rows),
                seed=int(tag(TAG_REFERENCE_SEED)),
            )
        except ValueError as error:
            raise RetrainingDataError(
                f"this drift-triggered run carries a malformed retraining tag ({error}): launch "
                "it from the drift sensor (or re-execute a run the sensor requested)"
            ) from error


def assemble_retraining_data(
    dvc: DvcResource, request: RetrainingRequest, scratch: Path
) -> tuple[pd.DataFrame, int]:
    """The reference window plus the labelled rows of the drifted batches, as one frame, and
    the number of new rows. ``scratch`` is a private folder for the reference files. Raises
    :class:`RetrainingDataError` naming the input that is missing or unreadable."""
    import pandas as pd
    from dvc.exceptions import DvcException

    from resources.dvc.resource import DvcVersioningError

    files = (TRAIN_SPLIT_FILE, VALIDATION_SPLIT_FILE)
    owner = f"champion v{request.champion_version}'s training data {request.data_md5}"
    try:
        splits = fetch_split_files(dvc, request.data_md5, files, scratch, request.registry_commit)
        reference = pd.concat([pd.read_parquet(f) for f in splits], ignore_index=True)
    except RetrainingDataError:
        raise
    except MonitoringError as error:
        raise RetrainingDataError(f"{owner}: {error.description}") from error
    except (DvcException, DvcVersioningError, OSError, ValueError) as error:
        raise RetrainingDataError(
            f"{owner} cannot be read: {type(error).__name__}: {error}"
        ) from error
    limit = request.max_reference_rows
    if limit is not None and len(reference) > limit:
        reference = reference.sample(limit, random_state=request.seed)
    new = _labelled_rows(request, list(reference.columns))
    combined = pd.concat([reference, new], ignore_index=True) if len(new) else reference
    try:
        combined[LABEL_COLUMN] = combined[LABEL_COLUMN].astype("int64")
    except (TypeError, ValueError) as error:
        raise RetrainingDataError(
            f"the {LABEL_COLUMN!r} column of the reference window or the drifted batches "
            f"is not integer class ids: {error}"
        ) from error
    return combined.reset_index(drop=True), len(new)


def _labelled_rows(request: RetrainingRequest, columns: list[str]) -> pd.DataFrame:
    """The labelled rows of every drifted batch, in the reference window's columns (a batch
    without labels adds nothing)."""
    import pandas as pd

    frames = []
    for partition, batch_path in request.batches:
        where = f"drifted batch of {partition} ({batch_path or 'no path recorded'})"
        if not batch_path or not Path(batch_path).is_file():
            raise RetrainingDataError(f"{where} is missing: materialize inference_batch for it")
        try:
            batch = pd.read_parquet(batch_path)
        except (OSError, ValueError) as error:
            raise RetrainingDataError(
                f"{where} cannot be read: {type(error).__name__}: {error}"
            ) from error
        if LABEL_COLUMN not in batch.columns:
            continue
        absent = [c for c in columns if c not in batch.columns]
        if absent:
            raise RetrainingDataError(
                f"{where} lacks the reference window's column(s) {absent[:10]}"
            )
        frames.append(batch[batch[LABEL_COLUMN].notna()][columns])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
