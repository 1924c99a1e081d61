"""Which assets are stale or missing, judged from public Dagster APIs (for the thermal sensor).

The rules are those of Dagster's stale badges in the UI: the definitions give each asset's code
version and parents, the instance gives the newest materialization of each with the provenance
Dagster tags it with (the code version and the data version of every input it was computed
from). ``read_facts`` and ``read_latest`` reduce both to plain values; ``staleness`` and
``run_key`` decide on those values alone, so they are unit-tested without an instance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    EventLogRecord,
    PartitionsDefinition,
    RepositoryDefinition,
    TimeWindowPartitionsDefinition,
)

# Dagster's provenance tags on a materialization, and its two placeholder data versions.
CODE_VERSION_TAG = "dagster/code_version"
DATA_VERSION_TAG = "dagster/data_version"
INPUT_DATA_VERSION_PREFIX = "dagster/input_data_version/"
NEVER_MATERIALIZED = "NULL"  # an asset with no materialization
ASSUMED_PRESENT = "INITIAL"  # a record without a data version, or an external asset never seen


# ---- the decision, on plain values ------------------------------------------------------

Partitioning = Literal["none", "time", "other"]


@dataclass(frozen=True)
class AssetFacts:
    """What the definitions say about one asset (keys as user strings)."""

    key: str
    code_version: str | None = None
    parents: tuple[str, ...] = ()
    partitions: Partitioning = "none"
    external: bool = False  # not materialized by Dagster (a source, or declared elsewhere)
    observable: bool = False  # external, with observations that carry its data version


@dataclass(frozen=True)
class Recorded:
    """The newest materialization (or observation, for an observable source) of one asset."""

    storage_id: int
    timestamp: float
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def data_version(self) -> str:
        return self.tags.get(DATA_VERSION_TAG) or ASSUMED_PRESENT

    @property
    def code_version(self) -> str | None:
        """None for a record written before Dagster tagged provenance."""
        return self.tags.get(CODE_VERSION_TAG)

    def input_data_version(self, parent: str) -> str | None:
        return self.tags.get(INPUT_DATA_VERSION_PREFIX + parent)

    def inputs(self) -> set[str]:
        return {
            k[len(INPUT_DATA_VERSION_PREFIX) :]
            for k in self.tags
            if k.startswith(INPUT_DATA_VERSION_PREFIX)
        }


Status = Literal["missing", "stale", "fresh"]


@dataclass(frozen=True)
class Staleness:
    status: Status
    reason: str


def current_data_version(asset: AssetFacts, latest: Recorded | None) -> str:
    """The data version Dagster sees for an asset now (with its two placeholders)."""
    if latest is None:
        return ASSUMED_PRESENT if asset.external else NEVER_MATERIALIZED
    return latest.data_version


def staleness(
    asset: AssetFacts, facts: Mapping[str, AssetFacts], latest: Mapping[str, Recorded | None]
) -> Staleness:
    """Missing, stale or fresh, by the rules of Dagster's stale badges.

    Missing: never materialized. Stale: its code version changed, a dependency was added or
    removed, or a parent's data version differs from the one it was computed from. Without
    provenance (records older than Dagster's tags) a parent materialized after it counts, and so
    does a newer materialization of a parent with non-time partitions; time-partitioned parents
    are not followed (as Dagster does for its default all-partitions mapping). A partitioned or
    external asset is never judged as a whole, so never requested.
    """
    if asset.partitions != "none" or asset.external:
        return Staleness("fresh", "partitioned or external: not judged as a whole")
    own = latest.get(asset.key)
    if own is None:
        return Staleness("missing", "never materialized")
    parents = [facts.get(p, AssetFacts(p, external=True)) for p in asset.parents]
    if own.code_version is None:  # no provenance: compare times, as Dagster does
        for parent in parents:
            record = latest.get(parent.key)
            if not parent.external and (record is None or record.timestamp > own.timestamp):
                return Staleness("stale", f"{parent.key} materialized after it")
        return Staleness("fresh", "no newer parent materialization")
    if asset.code_version and asset.code_version != own.code_version:
        return Staleness("stale", f"code version {own.code_version} -> {asset.code_version}")
    removed = sorted(own.inputs() - set(asset.parents))
    if removed:
        return Staleness("stale", f"removed dependency on {', '.join(removed)}")
    for parent in parents:
        record = latest.get(parent.key)
        recorded = own.input_data_version(parent.key)
        if recorded is None:
            return Staleness("stale", f"new dependency on {parent.key}")
        if parent.partitions == "time":
            continue
        if parent.partitions == "other":
            if record is not None and record.storage_id > own.storage_id:
                return Staleness("stale", f"{parent.key} materialized after it")
            continue
        current = current_data_version(parent, record)
        if recorded != current and not (
            recorded == ASSUMED_PRESENT and current == NEVER_MATERIALIZED
        ):
            return Staleness("stale", f"{parent.key} data version {recorded} -> {current}")
    return Staleness("fresh", "computed from the current data and code")


def run_key(stale: Sequence[AssetFacts], latest: Mapping[str, Recorded | None]) -> str:
    """Same stale set + same latest materializations of it and its parents -> same key.

    Dagster launches a run key once per sensor, so a tick never duplicates a queued or
    running request, and a failed run is not retried until something it depends on changes:
    heavy work must not crash-loop every tick.
    """
    involved = {a.key for a in stale} | {p for a in stale for p in a.parents}
    parts = [",".join(sorted(a.key for a in stale))]
    for key in sorted(involved):
        record = latest.get(key)
        parts.append(f"{key}@{record.storage_id if record else 'missing'}")
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return f"thermal-gate-{digest}"


# ---- reading the definitions and the instance --------------------------------------------


def read_facts(repository: RepositoryDefinition, keys: Sequence[AssetKey]) -> dict[str, AssetFacts]:
    """Facts of ``keys`` and of their parents from the definitions.

    A key the definitions do not know is left out; a parent they do not know is external (it
    may be materialized by another code location), as Dagster's asset graph treats it.
    """
    facts: dict[str, AssetFacts] = {}
    for key in keys:
        found = _facts_of(repository, key)
        if found is None:
            continue
        facts[found.key] = found
        for parent in found.parents:
            parent_key = AssetKey.from_user_string(parent)
            facts[parent] = _facts_of(repository, parent_key) or AssetFacts(parent, external=True)
    return facts


def _facts_of(repository: RepositoryDefinition, key: AssetKey) -> AssetFacts | None:
    name = key.to_user_string()
    assets_def = repository.assets_defs_by_key.get(key)
    if assets_def is not None:
        return AssetFacts(
            key=name,
            code_version=assets_def.get_asset_spec(key).code_version,
            parents=tuple(sorted(p.to_user_string() for p in assets_def.asset_deps.get(key, ()))),
            partitions=_partitioning(assets_def.partitions_def),
            external=not assets_def.is_materializable,
            observable=assets_def.is_observable,
        )
    source = repository.source_assets_by_key.get(key)
    if source is not None:  # declared as a source: external, maybe observed
        return AssetFacts(
            key=name,
            partitions=_partitioning(source.partitions_def),
            external=True,
            observable=source.is_observable,
        )
    return None


def _partitioning(partitions_def: PartitionsDefinition | None) -> Partitioning:
    if partitions_def is None:
        return "none"
    return "time" if isinstance(partitions_def, TimeWindowPartitionsDefinition) else "other"


def read_latest(
    instance: DagsterInstance, facts: Mapping[str, AssetFacts]
) -> dict[str, Recorded | None]:
    """The newest materialization of each asset (or observation, if newer and observable)."""
    keys = [AssetKey.from_user_string(k) for k in facts]
    latest: dict[str, Recorded | None] = dict.fromkeys(facts)
    for record in instance.get_asset_records(keys):
        last = record.asset_entry.last_materialization_record
        if last is not None:
            latest[record.asset_entry.asset_key.to_user_string()] = _recorded(last)
    for key in sorted(k for k, f in facts.items() if f.observable):
        found = instance.fetch_observations(
            AssetRecordsFilter(asset_key=AssetKey.from_user_string(key)), limit=1
        ).records
        current = latest[key]
        if found and (current is None or found[0].storage_id > current.storage_id):
            latest[key] = _recorded(found[0])
    return latest


def _recorded(record: EventLogRecord) -> Recorded:
    entry = record.event_log_entry
    return Recorded(record.storage_id, entry.timestamp, dict(entry.tags or {}))


__all__ = [
    "AssetFacts",
    "Recorded",
    "Staleness",
    "read_facts",
    "read_latest",
    "run_key",
    "staleness",
]
