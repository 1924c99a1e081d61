"""The hardware gate for heavy work: a hysteresis policy and the in-step check built on it.

The policy is a pure function of (settings, previous state, one reading, priority), so the
sensor (state in its cursor) and the in-step gate (state in a small JSON file per run step)
share it and tests can replay any trace through it. See docs/hardware-gate.md.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from resources.hardware.resource import (
    UNKNOWN,
    HardwareResource,
    HardwareSnapshot,
    MetadataValue,
    thermal_rank,
)

if TYPE_CHECKING:
    from dagster import AssetExecutionContext, OpExecutionContext

Priority = Literal["normal", "high"]
Phase = Literal["clear", "suspect", "hold"]
Level = Literal["good", "bad", "critical", "unknown"]
Verdict = Literal["go", "hold"]

PRIORITIES: tuple[Priority, ...] = ("normal", "high")
STATE_VERSION = 1


@dataclass(frozen=True)
class GatePolicy:
    """Thresholds and timings of the gate (the ``gate_*`` fields of ``HardwareResource``)."""

    bad_readings_to_hold: int = 3
    cooldown_seconds: float = 300.0
    hold_thermal_state: Literal["fair", "serious"] = "serious"
    unknown_behaviour: Literal["allow", "hold"] = "allow"
    psi_memory_some_max: float = 20.0
    psi_memory_full_max: float = 5.0
    psi_cpu_some_max: float = 75.0
    gpu_slowdown_margin_c: float = 5.0
    hold_on_battery: bool = False
    hold_in_low_power_mode: bool = False
    retry_initial_seconds: float = 30.0
    retry_max_seconds: float = 600.0
    retry_jitter: float = 0.2
    max_wait_seconds: float = 7200.0

    @classmethod
    def from_resource(cls, hw: HardwareResource) -> GatePolicy:
        return cls(
            bad_readings_to_hold=hw.gate_bad_readings_to_hold,
            cooldown_seconds=hw.gate_cooldown_seconds,
            hold_thermal_state=hw.gate_hold_thermal_state,
            unknown_behaviour=hw.gate_unknown_behaviour,
            psi_memory_some_max=hw.gate_psi_memory_some_max,
            psi_memory_full_max=hw.gate_psi_memory_full_max,
            psi_cpu_some_max=hw.gate_psi_cpu_some_max,
            gpu_slowdown_margin_c=hw.gate_gpu_slowdown_margin_c,
            hold_on_battery=hw.gate_hold_on_battery,
            hold_in_low_power_mode=hw.gate_hold_in_low_power_mode,
            retry_initial_seconds=hw.gate_retry_initial_seconds,
            retry_max_seconds=hw.gate_retry_max_seconds,
            retry_jitter=hw.gate_retry_jitter,
            max_wait_seconds=hw.gate_max_wait_seconds,
        )


@dataclass(frozen=True)
class Assessment:
    """One reading judged on its own, before hysteresis."""

    level: Level
    problems: tuple[str, ...] = ()


def _worst(*values: float | None) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def assess(policy: GatePolicy, snap: HardwareSnapshot, priority: Priority = "normal") -> Assessment:
    """Judge one reading: critical blocks everyone, bad counts toward hold, unknown is its own."""
    critical: list[str] = []
    bad: list[str] = []
    # A high-priority request may run at "fair" whatever the normal limit is.
    limit = "serious" if priority == "high" else policy.hold_thermal_state
    rank = thermal_rank(snap.thermal_state)
    if snap.thermal_state == "critical":
        critical.append(f"thermal state critical ({snap.thermal_source})")
    elif rank >= thermal_rank(limit):
        bad.append(f"thermal state {snap.thermal_state} >= {limit} ({snap.thermal_source})")
    if snap.memory_pressure == "critical":
        critical.append("memory pressure critical")
    elif snap.memory_pressure == "warning":
        bad.append("memory pressure warning")
    mem_some = _worst(
        snap.psi_memory.some_avg10 if snap.psi_memory else None,
        snap.cgroup_memory_pressure.some_avg10 if snap.cgroup_memory_pressure else None,
    )
    mem_full = _worst(
        snap.psi_memory.full_avg10 if snap.psi_memory else None,
        snap.cgroup_memory_pressure.full_avg10 if snap.cgroup_memory_pressure else None,
    )
    cpu_some = _worst(
        snap.psi_cpu.some_avg10 if snap.psi_cpu else None,
        snap.cgroup_cpu_pressure.some_avg10 if snap.cgroup_cpu_pressure else None,
    )
    if mem_some is not None and mem_some > policy.psi_memory_some_max:
        bad.append(f"memory PSI some {mem_some:.1f}% > {policy.psi_memory_some_max:g}%")
    if mem_full is not None and mem_full > policy.psi_memory_full_max:
        bad.append(f"memory PSI full {mem_full:.1f}% > {policy.psi_memory_full_max:g}%")
    if cpu_some is not None and cpu_some > policy.psi_cpu_some_max:
        bad.append(f"CPU PSI some {cpu_some:.1f}% > {policy.psi_cpu_some_max:g}%")
    for gpu in snap.gpus:
        if gpu.temperature_c is None:
            continue
        if gpu.shutdown_c is not None and gpu.temperature_c >= gpu.shutdown_c:
            critical.append(f"GPU {gpu.index} at {gpu.temperature_c:.0f}C >= shutdown")
        elif gpu.slowdown_margin_c is not None and (
            gpu.slowdown_margin_c <= policy.gpu_slowdown_margin_c
        ):
            bad.append(
                f"GPU {gpu.index} at {gpu.temperature_c:.0f}C, within "
                f"{policy.gpu_slowdown_margin_c:g}C of slowdown {gpu.slowdown_c:.0f}C"
            )
    if policy.hold_on_battery and snap.on_battery:
        bad.append("on battery power")
    if policy.hold_in_low_power_mode and snap.low_power_mode:
        bad.append("low-power mode on")
    if critical:
        return Assessment("critical", tuple(critical + bad))
    if bad:
        return Assessment("bad", tuple(bad))
    if snap.thermal_state == "unknown":
        return Assessment("unknown", ("thermal state unknown (no thermal source on this machine)",))
    return Assessment("good")


@dataclass(frozen=True)
class GateState:
    """Hysteresis memory between evaluations; JSON round-trips through cursors and files."""

    phase: Phase = "clear"
    consecutive_bad: int = 0
    held_since: float | None = None  # when the current hold began
    good_since: float | None = None  # first good reading of the current cool-down
    last_reading_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> GateState:
        """Parse a stored state; anything unreadable starts clear rather than failing a tick."""
        if not isinstance(data, dict) or data.get("phase") not in ("clear", "suspect", "hold"):
            return cls()
        bad = data.get("consecutive_bad", 0)
        times = [data.get(k) for k in ("held_since", "good_since", "last_reading_at")]
        if not isinstance(bad, int) or isinstance(bad, bool) or bad < 0:
            return cls()
        if not all(
            t is None or (isinstance(t, int | float) and not isinstance(t, bool)) for t in times
        ):
            return cls()
        held, good, last = (None if t is None else float(t) for t in times)
        return cls(data["phase"], bad, held, good, last)


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one reading: go or hold, the new state, and why in words."""

    verdict: Verdict
    state: GateState
    level: Level
    reason: str
    problems: tuple[str, ...] = ()


def evaluate(
    policy: GatePolicy, state: GateState, snap: HardwareSnapshot, priority: Priority = "normal"
) -> Evaluation:
    """Advance the hysteresis with one reading.

    - critical: hold at once, for every priority.
    - bad: never start heavy work; after ``bad_readings_to_hold`` in a row enter hold.
    - good: go, unless in hold; hold ends after ``cooldown_seconds`` of good readings
      (a high-priority request goes on a good reading without waiting out the cool-down).
    - unknown: treated as good or bad per ``unknown_behaviour``, and said so.
    """
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {PRIORITIES}, got {priority!r}")
    now = snap.taken_at
    found = assess(policy, snap, priority)
    effective: Level = found.level
    note = ""
    if found.level == "unknown":
        effective = "good" if policy.unknown_behaviour == "allow" else "bad"
        verb = "allowed" if effective == "good" else "held"
        note = (
            f"thermal state unknown, {verb} by policy "
            f"(unknown_behaviour={policy.unknown_behaviour})"
        )
    problems = "; ".join(found.problems)
    bad_count = state.consecutive_bad + 1

    if effective == "critical":
        new = GateState(
            "hold", bad_count, state.held_since if state.phase == "hold" else now, None, now
        )
        return Evaluation(
            "hold",
            new,
            found.level,
            f"critical: {problems}; nothing heavy runs at critical",
            found.problems,
        )

    if effective == "bad":
        what = note or problems
        if state.phase == "hold":
            new = GateState("hold", bad_count, state.held_since, None, now)
            reason = f"hold: {what}; cool-down restarts"
        elif bad_count >= policy.bad_readings_to_hold:
            new = GateState("hold", bad_count, now, None, now)
            reason = f"hold entered after {bad_count} consecutive bad readings: {what}"
        else:
            new = GateState("suspect", bad_count, None, None, now)
            reason = (
                f"waiting: bad reading {bad_count} of {policy.bad_readings_to_hold} "
                f"before hold: {what}"
            )
        return Evaluation("hold", new, found.level, reason, found.problems)

    suffix = f" ({note})" if note else ""
    if state.phase == "hold":
        good_since = state.good_since if state.good_since is not None else now
        cooled = now - good_since
        if cooled >= policy.cooldown_seconds:
            new = GateState("clear", 0, None, None, now)
            reason = f"released after {cooled:.0f}s of good readings{suffix}"
            return Evaluation("go", new, found.level, reason, found.problems)
        held = GateState("hold", 0, state.held_since, good_since, now)
        if priority == "high":
            reason = (
                f"go (high priority): reading is good, cool-down {cooled:.0f}s of "
                f"{policy.cooldown_seconds:g}s not awaited{suffix}"
            )
            return Evaluation("go", held, found.level, reason, found.problems)
        reason = (
            f"cooling down: {cooled:.0f}s of {policy.cooldown_seconds:g}s good readings{suffix}"
        )
        return Evaluation("hold", held, found.level, reason, found.problems)
    new = GateState("clear", 0, None, None, now)
    return Evaluation("go", new, found.level, note or "readings within limits", found.problems)


def replay(
    policy: GatePolicy,
    snapshots: list[HardwareSnapshot],
    priority: Priority = "normal",
    state: GateState | None = None,
) -> list[Evaluation]:
    """Run a trace through the policy; each evaluation sees the state the previous one left."""
    out: list[Evaluation] = []
    current = state or GateState()
    for snap in snapshots:
        result = evaluate(policy, current, snap, priority)
        out.append(result)
        current = result.state
    return out


# ---- the in-step gate ---------------------------------------------------------------------


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


def backoff_seconds(policy: GatePolicy, deferrals: int, rng: random.Random | None = None) -> float:
    """Exponential wait before the next check, capped, with +/- ``retry_jitter`` spread.

    Jitter keeps several held steps from re-checking (and starting) in lockstep.
    """
    base = min(policy.retry_max_seconds, policy.retry_initial_seconds * 2 ** min(deferrals, 30))
    spread = (rng or random).uniform(-policy.retry_jitter, policy.retry_jitter)
    return max(0.0, base * (1.0 + spread))


def max_retries_bound(policy: GatePolicy) -> int:
    """A retry ceiling that outlasts ``max_wait_seconds`` even at the shortest jittered wait.

    The gate fails the step itself when the wait is exceeded; this bound only stops an
    endless loop if the state file is lost between retries.
    """
    shortest = max(policy.retry_initial_seconds * (1.0 - policy.retry_jitter), 1e-3)
    return math.ceil(policy.max_wait_seconds / shortest) + 2


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
    base = (
        Path(hw.gate_state_dir) if hw.gate_state_dir else Path(context.instance.storage_directory())
    )
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
    Once held longer than ``gate_max_wait_seconds`` raises ``dagster.Failure`` naming the
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
    )
    readings = snap.summary()
    if result.verdict == "go":
        _clear_record(path)
        context.log.info(f"hardware gate: go after {held:.0f}s held: {result.reason} [{readings}]")
        return decision

    first = record.first_deferred_at if record.first_deferred_at is not None else now
    held = max(0.0, now - first)
    decision = replace(decision, held_seconds=held)
    if held >= policy.max_wait_seconds:
        _clear_record(path)
        raise Failure(
            description=(
                f"hardware gate held this step for {held:.0f}s, longer than "
                f"gate_max_wait_seconds={policy.max_wait_seconds:g}s: {result.reason}. "
                f"Readings: {readings}"
            ),
            metadata=dict(decision.to_metadata()),
            allow_retries=False,
        )
    wait = min(backoff_seconds(policy, record.deferrals, rng), policy.max_wait_seconds - held)
    wait = max(wait, min(1.0, policy.retry_initial_seconds))
    try:
        _store_record(path, StepGateRecord(result.state, first, record.deferrals + 1))
    except OSError as exc:
        # The hold still stands; the next check counts the wait from the run's start.
        context.log.warning(f"hardware gate: cannot keep state in {path}: {exc}")
    message = (
        f"hardware gate: hold ({result.state.phase}) for {priority} priority: {result.reason}. "
        f"Held {held:.0f}s of {policy.max_wait_seconds:g}s; re-check in {wait:.3g}s. "
        f"Readings: {readings}"
    )
    context.log.warning(message)
    _record_hold(context, decision)
    raise RetryRequested(
        max_retries=max_retries_bound(policy), seconds_to_wait=wait
    ) from GateHeldError(message)


__all__ = [
    "UNKNOWN",
    "Assessment",
    "Evaluation",
    "GateDecision",
    "GateHeldError",
    "GatePolicy",
    "GateState",
    "Priority",
    "StepGateRecord",
    "assess",
    "backoff_seconds",
    "enforce_heavy_gate",
    "evaluate",
    "max_retries_bound",
    "replay",
    "step_state_path",
]
