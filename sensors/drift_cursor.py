"""The drift sensor's memory between ticks: which drift reports it has read, which partitions
wait for retraining, when it last requested one, the hardware gate's hysteresis, and which
finished runs it has already audited.

The cursor is JSON, versioned. A missing, foreign or corrupt cursor starts fresh rather than
failing every tick: reports are re-read, run keys keep the same events from requesting twice, and
the audit trail refuses a second line for the same run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from efficientai_assets.gate.policy import GateState
from efficientai_assets.names import DRIFT_ASSET, DRIFT_SENSOR

CURSOR_VERSION = 1
_AUDITED_MEMORY = 200
_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftEvent:
    """One partition's drift report, as its drift_report materialization recorded it."""

    partition: str
    storage_id: int
    drift_share: float
    threshold: float
    labelled_rows: int
    batch_path: str
    report_path: str

    @property
    def drifted(self) -> bool:
        return self.drift_share >= self.threshold

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()

    @classmethod
    def from_json(cls, data: Any) -> DriftEvent:
        """Parse a stored event; raises TypeError, KeyError or ValueError on a malformed one."""
        if not isinstance(data, dict):
            raise TypeError(f"a pending drift event must be an object, got {type(data).__name__}")
        return cls(
            partition=_field(data, "partition", str),
            storage_id=_field(data, "storage_id", int),
            drift_share=float(_field(data, "drift_share", float)),
            threshold=float(_field(data, "threshold", float)),
            labelled_rows=_field(data, "labelled_rows", int),
            batch_path=_field(data, "batch_path", str),
            report_path=_field(data, "report_path", str),
        )


def _field(data: Mapping[str, Any], key: str, kind: type) -> Any:
    """``data[key]`` when it is of ``kind`` (an int passes for a float, a bool never does)."""
    value = data[key]
    kinds = (int, float) if kind is float else (kind,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(f"{key} must be {kind.__name__}, got {type(value).__name__}")
    return value


def event_order(event: DriftEvent) -> tuple[str, int]:
    return (event.partition, event.storage_id)


def run_key_for(events: Iterable[DriftEvent]) -> str:
    """Deterministic: the same drift events always give the same key, so a retried tick, or a
    cursor started afresh, requests the same run and Dagster launches it once."""
    material = ",".join(f"{e.partition}@{e.storage_id}" for e in sorted(events, key=event_order))
    return f"drift-retrain-{hashlib.sha256(material.encode()).hexdigest()[:16]}"


@dataclass
class Cursor:
    after_storage_id: int = 0
    pending: dict[str, DriftEvent] | None = None
    last_request_at: float | None = None
    last_run_key: str | None = None
    gate: GateState = field(default_factory=GateState)
    audited: list[str] | None = None

    def encode(self) -> str:
        return json.dumps(
            {
                "version": CURSOR_VERSION,
                "after_storage_id": self.after_storage_id,
                "pending": [e.to_json() for e in (self.pending or {}).values()],
                "last_request_at": self.last_request_at,
                "last_run_key": self.last_run_key,
                "gate": self.gate.to_json(),
                "audited": (self.audited or [])[-_AUDITED_MEMORY:],
            },
            sort_keys=True,
        )

    @classmethod
    def decode(cls, text: str | None, log: logging.Logger | None = None) -> Cursor:
        """A missing or foreign cursor starts from the beginning (reports are re-read, and
        run keys keep the same events from requesting twice); so does a corrupt one, with a
        warning, rather than failing every tick."""
        try:
            data = json.loads(text) if text else None
            if not isinstance(data, dict) or data.get("version") != CURSOR_VERSION:
                return cls(pending={}, audited=[])
            return cls._parse(data)
        except (TypeError, KeyError, ValueError) as error:
            (log or _LOG).warning(
                f"{DRIFT_SENSOR}: malformed cursor ({type(error).__name__}: {error}); "
                "starting from a fresh one"
            )
            return cls(pending={}, audited=[])

    @classmethod
    def _parse(cls, data: dict[str, Any]) -> Cursor:
        after = data.get("after_storage_id") or 0
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ValueError(f"after_storage_id must be a non-negative int, got {after!r}")
        raw_pending = data.get("pending") or []
        if not isinstance(raw_pending, list):
            raise TypeError(f"pending must be a list, got {type(raw_pending).__name__}")
        events = [DriftEvent.from_json(e) for e in raw_pending]
        last_at = data.get("last_request_at")
        if last_at is not None and (
            isinstance(last_at, bool) or not isinstance(last_at, int | float)
        ):
            raise TypeError(f"last_request_at must be a number, got {type(last_at).__name__}")
        last_key = data.get("last_run_key")
        if last_key is not None and not isinstance(last_key, str):
            raise TypeError(f"last_run_key must be a string, got {type(last_key).__name__}")
        audited = data.get("audited") or []
        if not isinstance(audited, list) or not all(isinstance(a, str) for a in audited):
            raise TypeError("audited must be a list of run ids")
        return cls(
            after_storage_id=after,
            pending={e.partition: e for e in events},
            last_request_at=None if last_at is None else float(last_at),
            last_run_key=last_key,
            gate=GateState.from_json(data.get("gate")),
            audited=list(audited),
        )


def fold_drift_events(
    pending: Mapping[str, DriftEvent], events: Iterable[DriftEvent]
) -> tuple[dict[str, DriftEvent], list[str]]:
    """The partitions still waiting for retraining after ``events`` (oldest first), and a note on
    each. A partition whose drift share reaches its threshold becomes pending; a later report of
    the same partition replaces it, and one under the threshold clears it."""
    folded = dict(pending)
    notes: list[str] = []
    for event in events:
        share, threshold = event.drift_share, event.threshold
        if event.drifted:
            folded[event.partition] = event
            notes.append(f"{event.partition}: drift share {share:.3f} >= {threshold:.3f}")
        else:
            folded.pop(event.partition, None)
            notes.append(f"{event.partition}: no drift (share {share:.3f} < {threshold:.3f})")
    return folded, notes


def _number(metadata: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    entry = metadata.get(key)
    value = getattr(entry, "value", entry)
    return float(value) if isinstance(value, int | float) else default


def metadata_text(metadata: Mapping[str, Any], key: str) -> str:
    """A metadata entry (or a plain value) as text; empty when absent."""
    entry = metadata.get(key)
    return str(getattr(entry, "value", entry) or "")


def read_drift_events(
    instance: dg.DagsterInstance, cursor: Cursor, limit: int = 200
) -> tuple[list[str], int]:
    """Fold new drift_report materializations into ``cursor.pending``; returns notes on what
    was seen and the new high-water storage id."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(DRIFT_ASSET), after_storage_id=cursor.after_storage_id
        ),
        limit=limit,
        ascending=True,
    ).records
    high = max([cursor.after_storage_id, *(r.storage_id for r in records)])
    events = []
    for record in records:
        materialization = record.asset_materialization
        if materialization is None or record.partition_key is None:
            continue
        metadata = materialization.metadata
        events.append(
            DriftEvent(
                partition=record.partition_key,
                storage_id=record.storage_id,
                drift_share=_number(metadata, "drift_share"),
                threshold=_number(metadata, "drift_share_threshold", 1.0),
                labelled_rows=int(_number(metadata, "labelled_rows")),
                batch_path=metadata_text(metadata, "batch_path"),
                report_path=metadata_text(metadata, "report_path"),
            )
        )
    cursor.pending, notes = fold_drift_events(cursor.pending or {}, events)
    return notes, high
