"""The hardware gate inside a heavy step: ``enforce_heavy_gate`` and the records it keeps.

The decision itself is the pure policy's (``efficientai_assets.gate.policy``); this module does
the writing around it: reads the machine, keeps the step's hysteresis in a small JSON file
between retries, records holds on the asset's history, and turns a hold into
``dagster.RetryRequested`` (or ``dagster.Failure`` after the maximum wait).
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from efficientai_assets.gate.policy import (
    PRIORITIES,
    GatePolicy,
    GateState,
    Level,
    Phase,
    Priority,
    Verdict,
    evaluate,
    max_retries_bound,
    retry_wait,
)
from resources.hardware.types import HardwareSnapshot, MetadataValue

if TYPE_CHECKING:
    from dagster import AssetExecutionContext, OpExecutionContext

    from resources.hardware.resource import HardwareResource

STATE_VERSION = 1


@dataclass(frozen=True)
class GateDecision:
    """What the gate decided at the start of a heavy step, with the readings it saw."""

    verdict: Verdict
    state: Phase
    level: Level
    reason: str
    priority: Priority
    snapshot: HardwareSnapshot
    held_seconds: float = 0.0
    checks: int = 1
    problems: tuple[str, ...] = field(default=())
    host: str = ""
    worker: str = ""

    def to_metadata(self, prefix: str = "gate.") -> dict[str, MetadataValue]:
        """Flat metadata: the decision under ``gate.``, the readings under ``hardware.start.``."""
        out: dict[str, MetadataValue] = {
            f"{prefix}decision": self.verdict,
            f"{prefix}state": self.state,
            f"{prefix}level": self.level,
            f"{prefix}reason": self.reason,
            f"{prefix}priority": self.priority,
            f"{prefix}held_seconds": round(self.held_seconds, 1),
            f"{prefix}checks": self.checks,
            f"{prefix}problems": "; ".join(self.problems) if self.problems else "",
            f"{prefix}host": self.host or "unknown",
            f"{prefix}worker": self.worker or "none",
        }
        out.update(self.snapshot.to_metadata(prefix="hardware.start."))
        return out

    def to_tags(self, prefix: str = "gate.") -> dict[str, str]:
        """The same as MLflow tags (strings)."""
        return {
            k: ("true" if v is True else "false" if v is False else str(v))
            for k, v in self.to_metadata(prefix).items()
        }


@dataclass(frozen=True)
class StepGateRecord:
    """What one run step remembers between its retries."""

    gate: GateState
    first_deferred_at: float | None = None
    deferrals: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "gate": self.gate.to_json(),
            "first_deferred_at": self.first_deferred_at,
            "deferrals": self.deferrals,
        }

    @classmethod
    def from_json(cls, data: Any) -> StepGateRecord | None:
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return None
        first = data.get("first_deferred_at")
        deferrals = data.get("deferrals", 0)
        return cls(
            GateState.from_json(data.get("gate")),
            float(first) if isinstance(first, int | float) else None,
            int(deferrals) if isinstance(deferrals, int) else 0,
        )


class GateHeldError(Exception):
    """The cause attached to RetryRequested, so the UI shows why the step is waiting."""


def _where() -> tuple[str, str]:
    """The machine whose readings the gate judged, and the Celery worker running the step
    (``name@host``) when there is one: on the team stack a decision must say which of the
    team's machines it was about. Celery is only asked when the process already runs it."""
    worker = ""
    if "celery" in sys.modules:
        try:
            from celery import current_task

            request = current_task.request if current_task else None
            worker = str(getattr(request, "hostname", "") or "")
        except Exception:  # no task context: not a worker's step
            worker = ""
    return socket.gethostname(), worker


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:200] or "step"


def step_state_path(
    hw: HardwareResource, context: AssetExecutionContext | OpExecutionContext
) -> Path:
    """``<state dir>/hardware-gate/<run id>/<step key>.json``.

    The default state dir is the Dagster instance's storage directory: it exists for every
    instance, is shared by every process of a run on the host, and goes with the run's other
    local state. A step's retries keep the same run id and step key, so they find it.
    """
    state_dir = hw.gate.state_dir
    base = Path(state_dir) if state_dir else Path(context.instance.storage_directory())
    step_key = context.get_step_execution_context().step.key
    return base / "hardware-gate" / _safe_name(context.run.run_id) / f"{_safe_name(step_key)}.json"


def _load_record(path: Path) -> StepGateRecord | None:
    try:
        return StepGateRecord.from_json(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def _store_record(path: Path, record: StepGateRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record.to_json()))
    os.replace(tmp, path)


def _clear_record(path: Path) -> None:
    try:
        path.unlink()
        path.parent.rmdir()  # only succeeds when no other step of the run is waiting
    except OSError:
        pass


def _run_start_time(context: AssetExecutionContext | OpExecutionContext) -> float | None:
    try:
        record = context.instance.get_run_record_by_id(context.run.run_id)
    except Exception:
        return None
    return record.start_time if record is not None else None


def _record_hold(
    context: AssetExecutionContext | OpExecutionContext, decision: GateDecision
) -> None:
    """An observation per held asset, so every hold shows in the asset's history in the UI."""
    from dagster import AssetObservation

    try:
        keys = list(context.selected_asset_keys)
    except Exception:  # an op outside any asset has no keys to observe
        keys = []
    for key in keys:
        context.log_event(AssetObservation(asset_key=key, metadata=dict(decision.to_metadata())))


def enforce_heavy_gate(
    context: AssetExecutionContext | OpExecutionContext,
    hw: HardwareResource,
    priority: Priority = "normal",
    *,
    rng: random.Random | None = None,
) -> GateDecision:
    """Check the gate at the start of a heavy step.

    Returns the decision on "go". On "hold" records an AssetObservation with the decision
    and readings, then raises ``dagster.RetryRequested`` (the step leaves its pool slot and
    is re-checked after a jittered backoff; nothing sleeps here).
    Once held longer than ``gate.max_wait_seconds`` raises ``dagster.Failure`` naming the
    readings and the reason.
    """
    from dagster import Failure, RetryRequested

    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {PRIORITIES}, got {priority!r}")
    policy = GatePolicy.from_resource(hw)
    path = step_state_path(hw, context)
    record = _load_record(path)
    if record is None:
        record = StepGateRecord(GateState())
        if context.retry_number > 0:
            # State lost between retries: count the wait from the run's start (conservative).
            record = replace(record, first_deferred_at=_run_start_time(context))
    snap = hw.snapshot()
    result = evaluate(policy, record.gate, snap, priority)
    now = snap.taken_at
    held = max(0.0, now - record.first_deferred_at) if record.first_deferred_at is not None else 0.0
    host, worker = _where()
    decision = GateDecision(
        verdict=result.verdict,
        state=result.state.phase,
        level=result.level,
        reason=result.reason,
        priority=priority,
        snapshot=snap,
        held_seconds=held,
        checks=record.deferrals + 1,
        problems=result.problems,
        host=host,
        worker=worker,
    )
    readings = snap.summary()
    where = f"{host} ({worker})" if worker else host
    if result.verdict == "go":
        _clear_record(path)
        context.log.info(
            f"hardware gate on {where}: go after {held:.0f}s held: {result.reason} [{readings}]"
        )
        return decision

    first = record.first_deferred_at if record.first_deferred_at is not None else now
    held = max(0.0, now - first)
    decision = replace(decision, held_seconds=held)
    wait = retry_wait(policy, held, record.deferrals, rng)
    if wait is None:
        _clear_record(path)
        raise Failure(
            description=(
                f"hardware gate on {where} held this step for {held:.0f}s, longer than "
                f"gate.max_wait_seconds={policy.max_wait_seconds:g}s: {result.reason}. "
                f"Readings: {readings}. Re-run once the machine is clear, or raise "
                "gate.max_wait_seconds in the hardware resource's config."
            ),
            metadata=dict(decision.to_metadata()),
            allow_retries=False,
        )
    try:
        _store_record(path, StepGateRecord(result.state, first, record.deferrals + 1))
    except OSError as exc:
        # The hold still stands; the next check counts the wait from the run's start.
        context.log.warning(f"hardware gate: cannot keep state in {path}: {exc}")
    message = (
        f"hardware gate on {where}: hold ({result.state.phase}) for {priority} priority: "
        f"{result.reason}. "
        f"Held {held:.0f}s of {policy.max_wait_seconds:g}s; re-check in {wait:.3g}s. "
        f"Readings: {readings}"
    )
    context.log.warning(message)
    _record_hold(context, decision)
    raise RetryRequested(
        max_retries=max_retries_bound(policy), seconds_to_wait=wait
    ) from GateHeldError(message)


__all__ = [
    "GateDecision",
    "GateHeldError",
    "StepGateRecord",
    "enforce_heavy_gate",
    "step_state_path",
]
