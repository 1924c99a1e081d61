"""Read-only views of the Dagster instance: materializations, observations and asset-check
evaluations of an asset, and run records, with metadata turned into plain JSON values.

The instance is the one ``dagster.yaml`` in the home's Dagster folder describes (SQLite in the
home, or PostgreSQL on the team stack). An SQLite instance whose storage does not exist is
reported down rather than opened, because opening it would create it.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from efficientai_assets.dashboard.cache import StoreDown
from efficientai_assets.operations.stores import StoreConfigError, StoreLocations

if TYPE_CHECKING:
    import dagster as dg


@dataclass(frozen=True)
class EventView:
    """A materialization or observation of an asset."""

    asset: str
    storage_id: int
    timestamp: float
    run_id: str
    partition: str | None
    metadata: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "storage_id": self.storage_id,
            "timestamp": self.timestamp,
            "run_id": self.run_id,
            "partition": self.partition,
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class CheckView:
    """One evaluation of an asset check."""

    asset: str
    check: str
    passed: bool
    severity: str
    description: str
    timestamp: float
    run_id: str
    partition: str | None
    metadata: dict[str, Any]


@dataclass(frozen=True)
class RunView:
    """A Dagster run: its job, status, times, selected assets, tags and (failed) error."""

    run_id: str
    job_name: str
    status: str
    created: float
    start: float | None
    end: float | None
    assets: tuple[str, ...]
    tags: dict[str, str]
    error: str = ""
    failed_step: str = ""


def plain(value: Any) -> Any:
    """A metadata value as JSON: numbers, text, booleans, JSON documents; anything else as text."""
    raw = getattr(value, "value", value)
    if isinstance(raw, float) and not math.isfinite(raw):
        return None
    if raw is None or isinstance(raw, bool | int | float | str):
        return raw
    if isinstance(raw, dict | list):
        return raw
    return str(raw)


class DagsterReader:
    """One Dagster instance, opened once per process and read only."""

    def __init__(self, stores: StoreLocations) -> None:
        self.stores = stores
        self._instance: dg.DagsterInstance | None = None
        self._lock = threading.Lock()

    def _down(self, error: Exception) -> StoreDown:
        text = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        return StoreDown("dagster", f"Dagster instance at {self.stores.dagster_home}: {text}")

    def instance(self) -> dg.DagsterInstance:
        with self._lock:
            if self._instance is None:
                self._instance = self._open()
            return self._instance

    def _open(self) -> dg.DagsterInstance:
        try:
            storage = self.stores.dagster_storage()
        except StoreConfigError as error:
            raise StoreDown("dagster", str(error)) from error
        if storage.kind == "sqlite":
            assert storage.sqlite_dir is not None
            runs_db = storage.sqlite_dir / "history" / "runs.db"
            if not runs_db.is_file():
                raise StoreDown(
                    "dagster", f"no Dagster run storage at {runs_db}: run `make run` first"
                )
        import dagster as dg

        try:
            return dg.DagsterInstance.from_config(str(self.stores.dagster_home))
        except Exception as error:
            raise self._down(error) from error

    def materializations(self, asset: str, limit: int) -> list[EventView]:
        """The newest ``limit`` materializations of ``asset``, newest first."""
        import dagster as dg

        try:
            result = self.instance().fetch_materializations(dg.AssetKey(asset), limit=limit)
        except StoreDown:
            raise
        except Exception as error:
            raise self._down(error) from error
        return [
            self._event(asset, record, record.asset_materialization) for record in result.records
        ]

    def observations(self, asset: str, limit: int) -> list[EventView]:
        """The newest ``limit`` observations of ``asset`` (the gate's holds), newest first."""
        import dagster as dg

        try:
            result = self.instance().fetch_observations(dg.AssetKey(asset), limit=limit)
        except StoreDown:
            raise
        except Exception as error:
            raise self._down(error) from error
        return [self._event(asset, record, record.asset_observation) for record in result.records]

    @staticmethod
    def _event(asset: str, record: Any, event: Any) -> EventView:
        metadata = {str(k): plain(v) for k, v in (event.metadata if event else {}).items()}
        return EventView(
            asset=asset,
            storage_id=int(record.storage_id),
            timestamp=float(record.timestamp),
            run_id=str(record.run_id or ""),
            partition=record.partition_key,
            metadata=metadata,
        )

    def checks(self, asset: str, check: str, limit: int) -> list[CheckView]:
        """The newest ``limit`` evaluations of ``check`` on ``asset``, newest first."""
        import dagster as dg

        key = dg.AssetCheckKey(dg.AssetKey(asset), check)
        try:
            history = self.instance().event_log_storage.get_asset_check_execution_history(
                key, limit=limit
            )
        except StoreDown:
            raise
        except Exception as error:
            raise self._down(error) from error
        out: list[CheckView] = []
        for record in history:
            entry = record.event
            event = entry.dagster_event if entry is not None else None
            if (
                entry is None
                or event is None
                or event.event_type != dg.DagsterEventType.ASSET_CHECK_EVALUATION
            ):
                continue  # planned or still running: no verdict yet
            evaluation = event.asset_check_evaluation_data
            out.append(
                CheckView(
                    asset=asset,
                    check=check,
                    passed=bool(evaluation.passed),
                    severity=str(getattr(evaluation.severity, "value", evaluation.severity)),
                    description=evaluation.description or "",
                    timestamp=float(entry.timestamp),
                    run_id=str(record.run_id),
                    partition=getattr(evaluation, "partition", None),
                    metadata={str(k): plain(v) for k, v in evaluation.metadata.items()},
                )
            )
        return out

    def runs(self, limit: int, failed_only: bool = False) -> list[RunView]:
        """The newest ``limit`` runs (or failed runs, with their first step error)."""
        import dagster as dg

        statuses = [dg.DagsterRunStatus.FAILURE] if failed_only else None
        try:
            instance = self.instance()
            records = instance.get_run_records(
                filters=dg.RunsFilter(statuses=statuses) if statuses else None, limit=limit
            )
            return [self._run(instance, record, failed_only) for record in records]
        except StoreDown:
            raise
        except Exception as error:
            raise self._down(error) from error

    @staticmethod
    def _run(instance: dg.DagsterInstance, record: Any, with_error: bool) -> RunView:
        import dagster as dg

        run = record.dagster_run
        error = step = ""
        if with_error:
            failures = instance.all_logs(
                run.run_id,
                of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE},
            )
            for entry in failures:
                event = entry.dagster_event
                if event is None:
                    continue
                if event.event_type == dg.DagsterEventType.STEP_FAILURE:
                    data = event.step_failure_data.error
                    step = str(event.step_key or "")
                    error = f"{step}: {data.message.strip() if data else 'failed'}"
                    break
                error = error or (event.message or "run failed")
        selection = run.asset_selection or set()
        return RunView(
            run_id=run.run_id,
            job_name=run.job_name,
            status=run.status.value,
            created=record.create_timestamp.timestamp(),
            start=record.start_time,
            end=record.end_time,
            assets=tuple(sorted(key.to_user_string() for key in selection)),
            tags={str(k): str(v) for k, v in run.tags.items()},
            error=error[:1000],
            failed_step=step,
        )
