"""Answers for steps whose inputs did not change, from what their last materialization recorded.

``make run`` launches whole jobs, so every step runs again on a re-run; a step whose inputs, code
and config are those of its last materialization can answer from that record instead of reading,
validating and versioning the same bytes again. The record is the step's own metadata in the
Dagster instance (shared by every process and worker of the deployment) under
:data:`INPUT_FINGERPRINT`, and an answer is given only after a cheap check that what it names is
still current (the registry's pointer holds the recorded md5). Anything unexpected — no record,
an ephemeral instance, a different fingerprint, a moved pointer — means: do the work.

The data steps use it here; training and monitoring (``defs/training/recall.py``,
``defs/monitoring/recall.py``) read their records through :func:`recorded_metadata` too.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata as distributions
from pathlib import Path
from typing import Any

import dagster as dg

from efficientai_assets.provenance import stable_hash
from resources.dvc.resource import DvcResource, DvcVersion

# Metadata key of the fingerprint of everything a materialization was computed from.
INPUT_FINGERPRINT = "input_fingerprint"
MEMOIZED = "memoized"
_DIGITS_FILE = ("datasets", "data", "digits.csv.gz")


@dataclass(frozen=True)
class Record:
    """A materialization's metadata as the instance holds it."""

    metadata: Mapping[str, dg.MetadataValue]

    def get(self, name: str, default: Any = None) -> Any:
        """The plain value (text, number, path...) of one entry."""
        value = self.metadata.get(name)
        return default if value is None else getattr(value, "value", value)

    def carry(self, names: Iterable[str]) -> dict[str, dg.MetadataValue]:
        """Entries to repeat on a memoized materialization, as they were (markdown stays md)."""
        return {name: self.metadata[name] for name in names if name in self.metadata}


def recorded_metadata(
    context: dg.AssetExecutionContext, asset: str, partition: str | None = None
) -> Record | None:
    """The newest materialization of ``asset`` (of ``partition``), or None when there is none
    or the instance cannot say."""
    key = dg.AssetKey(asset)
    try:
        if partition is None:
            event = context.instance.get_latest_materialization_event(key)
            materialization = event.asset_materialization if event is not None else None
        else:
            found = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
            )
            materialization = found.records[0].asset_materialization if found.records else None
    except Exception:  # a memo that cannot be read is a miss, never a failure
        return None
    return Record(dict(materialization.metadata)) if materialization is not None else None


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, streamed (no parsing, no pandas)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def builtin_sample_identity() -> dict[str, str] | None:
    """What the built-in sample is made of — scikit-learn's version and the hash of its digits
    file — found without importing scikit-learn; None when the file is not where expected."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))).joinpath(*_DIGITS_FILE)
    if not data.is_file():
        return None
    return {"scikit-learn": distributions.version("scikit-learn"), "digits": file_sha256(data)}


def raw_source_fingerprint(
    config: Mapping[str, object], code_version: str, source_path: str | None
) -> str | None:
    """The fingerprint of what ``raw_dataset`` would version: the source's bytes (hashed before
    anything parses them), the run config and the code version; None when it cannot be known
    cheaply (then the step reads the source as usual, which also reports a missing file)."""
    if source_path:
        path = Path(source_path).expanduser()
        if not path.is_file():
            return None
        source: dict[str, str] | None = {"sha256": file_sha256(path), "suffix": path.suffix.lower()}
    else:
        source = builtin_sample_identity()
    if source is None:
        return None
    return stable_hash({"config": dict(config), "code": code_version, "source": source})


def splits_fingerprint(raw_md5: str, config: Mapping[str, object], code_version: str) -> str:
    """The fingerprint of ``dataset_splits``: the raw version it splits, the config, the code."""
    return stable_hash({"raw": raw_md5, "config": dict(config), "code": code_version})


def unchanged_version(
    context: dg.AssetExecutionContext, dvc: DvcResource, relative_path: str, fingerprint: str
) -> tuple[DvcVersion, Record] | None:
    """The registry's current version of ``relative_path`` and the step's last record, when that
    record carries ``fingerprint`` and the registry still holds the version it produced."""
    record = recorded_metadata(context, context.asset_key.to_user_string())
    if record is None or record.get(INPUT_FINGERPRINT) != fingerprint:
        return None
    current = dvc.current_version(relative_path)
    if current is None or current.md5 != record.get("dvc_md5"):
        return None
    return current, record


def memoized_result(
    version: DvcVersion,
    record: Record,
    fingerprint: str,
    carried: tuple[str, ...],
    version_metadata: Mapping[str, dg.MetadataValue],
) -> dg.MaterializeResult:
    """The step's answer from its record: the same data version, the ``carried`` metadata of the
    last materialization, the registry's current pointer, and why nothing was redone."""
    metadata: dict[str, Any] = {**record.carry(carried), **version_metadata}
    metadata[MEMOIZED] = dg.MetadataValue.bool(True)
    metadata["reason"] = dg.MetadataValue.text(
        "inputs, config and code unchanged since the last materialization; the registry still "
        f"holds md5 {version.md5}: nothing read or versioned again"
    )
    metadata[INPUT_FINGERPRINT] = dg.MetadataValue.text(fingerprint)
    return dg.MaterializeResult(data_version=dg.DataVersion(version.md5), metadata=metadata)
