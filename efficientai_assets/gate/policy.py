"""The hardware gate's policy: pure decisions from settings, one reading and the previous state.

Every function here is a function of plain values (settings, the previous ``GateState``, one
``HardwareSnapshot``, a priority), so the sensors (state in their cursor) and the in-step gate
(``efficientai_assets.gate.step``, state in a small file per run step) share it, and tests replay
any trace through it without Dagster. See docs/hardware-gate.md.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from resources.hardware.types import (
    GateThermalLimit,
    GateUnknownBehaviour,
    HardwareSnapshot,
    thermal_rank,
)

if TYPE_CHECKING:
    from resources.hardware.gate_settings import GateSettings
    from resources.hardware.resource import HardwareResource

Priority = Literal["normal", "high"]
Phase = Literal["clear", "suspect", "hold"]
Level = Literal["good", "bad", "critical", "unknown"]
Verdict = Literal["go", "hold"]

PRIORITIES: tuple[Priority, ...] = ("normal", "high")


@dataclass(frozen=True)
class GatePolicy:
    """What the policy judges by, as plain values.

    Defaults and validation live once, in ``GateSettings`` (the resource's ``gate`` block); build
    a policy with ``from_settings`` so a value never bypasses them.
    """

    bad_readings_to_hold: int
    cooldown_seconds: float
    hold_thermal_state: GateThermalLimit
    unknown_behaviour: GateUnknownBehaviour
    psi_memory_some_max: float
    psi_memory_full_max: float
    psi_cpu_some_max: float
    gpu_slowdown_margin_c: float
    hold_on_battery: bool
    hold_in_low_power_mode: bool
    retry_initial_seconds: float
    retry_max_seconds: float
    retry_jitter: float
    max_wait_seconds: float

    @classmethod
    def from_settings(cls, settings: GateSettings) -> GatePolicy:
        """The policy the settings describe; ``state_dir`` is the in-step gate's bookkeeping.

        A setting added to ``GateSettings`` but not here fails at once with a TypeError.
        """
        return cls(**settings.model_dump(exclude={"state_dir"}))

    @classmethod
    def from_resource(cls, hw: HardwareResource) -> GatePolicy:
        """The policy of a hardware resource's ``gate`` settings."""
        return cls.from_settings(hw.gate)


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


def backoff_seconds(policy: GatePolicy, deferrals: int, rng: random.Random | None = None) -> float:
    """Exponential wait before the next check, capped, with +/- ``retry_jitter`` spread.

    Jitter keeps several held steps from re-checking (and starting) in lockstep.
    """
    base = min(policy.retry_max_seconds, policy.retry_initial_seconds * 2 ** min(deferrals, 30))
    spread = (rng or random).uniform(-policy.retry_jitter, policy.retry_jitter)
    return max(0.0, base * (1.0 + spread))


def retry_wait(
    policy: GatePolicy, held_seconds: float, deferrals: int, rng: random.Random | None = None
) -> float | None:
    """Seconds before a held step checks again, or None once it has waited long enough to fail.

    The wait never overshoots ``max_wait_seconds`` (the last check lands on the deadline) and is
    at least a second (or the initial wait, if shorter), so a step never re-checks in a busy loop.
    """
    if held_seconds >= policy.max_wait_seconds:
        return None
    wait = min(backoff_seconds(policy, deferrals, rng), policy.max_wait_seconds - held_seconds)
    return max(wait, min(1.0, policy.retry_initial_seconds))


def max_retries_bound(policy: GatePolicy) -> int:
    """A retry ceiling that outlasts ``max_wait_seconds`` even at the shortest jittered wait.

    The gate fails the step itself when the wait is exceeded; this bound only stops an
    endless loop if the state file is lost between retries.
    """
    shortest = max(policy.retry_initial_seconds * (1.0 - policy.retry_jitter), 1e-3)
    return math.ceil(policy.max_wait_seconds / shortest) + 2


__all__ = [
    "PRIORITIES",
    "Assessment",
    "Evaluation",
    "GatePolicy",
    "GateState",
    "Level",
    "Phase",
    "Priority",
    "Verdict",
    "assess",
    "backoff_seconds",
    "evaluate",
    "max_retries_bound",
    "replay",
    "retry_wait",
]
