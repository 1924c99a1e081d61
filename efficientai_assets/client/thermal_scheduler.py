"""The seed guide's ``ThermalAwareScheduler``: should a task start now? Decided by the project's
hardware gate (``efficientai_assets.gate.policy``) on a real reading of ``HardwareResource`` —
the same policy, thresholds and hysteresis that hold the heavy Dagster steps.

A scheduler keeps the gate's state between calls, as the gate does between sensor ticks: a
single bad reading only makes it wait, consecutive bad readings enter hold, and hold ends after a
cool-down of good readings (``GateSettings``). An unknown thermal state stays ``"unknown"`` in the
decision and is allowed or held by the policy's ``unknown_behaviour``, and the reason says which.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

from efficientai_assets.client.errors import InvalidArgumentError
from efficientai_assets.client.guard import guarded
from efficientai_assets.gate.policy import (
    Evaluation,
    GatePolicy,
    GateState,
    Priority,
    evaluate,
    retry_wait,
)
from resources.hardware.resource import HardwareResource
from resources.hardware.types import HardwareSnapshot

# The guide's priorities, as the gate knows them: only "high" may run at a "fair"/limit state
# and skip a cool-down.
PRIORITIES: dict[str, Priority] = {
    "low": "normal",
    "normal": "normal",
    "medium": "normal",
    "high": "high",
}


@dataclass(frozen=True)
class SchedulingDecision:
    """Whether the task should start now, and why, with the reading it was decided on."""

    should_run: bool
    reason: str
    task_type: str
    priority: str
    estimated_duration_minutes: float | None
    verdict: str  # the gate's "go" or "hold"
    level: str  # good, bad, critical or unknown
    thermal_state: str  # nominal ... critical, or "unknown"
    problems: tuple[str, ...] = ()
    retry_after_seconds: float | None = None  # when to ask again (None: go, or waited too long)
    snapshot: HardwareSnapshot | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, without the snapshot."""
        return {
            "should_run": self.should_run,
            "reason": self.reason,
            "task_type": self.task_type,
            "priority": self.priority,
            "estimated_duration_minutes": self.estimated_duration_minutes,
            "verdict": self.verdict,
            "level": self.level,
            "thermal_state": self.thermal_state,
            "problems": list(self.problems),
            "retry_after_seconds": self.retry_after_seconds,
        }


class ThermalAwareScheduler:
    """Start-or-wait decisions for tasks, by the hardware gate's policy on live readings."""

    def __init__(self, hardware: HardwareResource | None = None) -> None:
        self.hardware = hardware or HardwareResource()
        self.policy = GatePolicy.from_resource(self.hardware)
        self._state = GateState()
        self._deferrals = 0
        self._lock = threading.Lock()

    @property
    def state(self) -> GateState:
        """The gate's hysteresis state after the last decision."""
        return self._state

    @guarded("decide whether a task should run")
    def should_run_task(
        self,
        task_type: str,
        priority: str = "normal",
        estimated_duration_minutes: float | None = None,
    ) -> SchedulingDecision:
        """Read the machine now and decide: ``should_run`` and ``reason`` (the gate's own words);
        when held, ``retry_after_seconds`` says when to ask again."""
        if not isinstance(task_type, str) or not task_type.strip():
            raise InvalidArgumentError(f"task_type must be a non-empty string, got {task_type!r}")
        if priority not in PRIORITIES:
            raise InvalidArgumentError(
                f"priority must be one of {sorted(PRIORITIES)}, got {priority!r}"
            )
        duration = _duration(estimated_duration_minutes)
        snap = self.hardware.snapshot()
        with self._lock:
            evaluation = evaluate(self.policy, self._state, snap, PRIORITIES[priority])
            self._state = evaluation.state
            retry = self._retry_after(evaluation, snap)
        return SchedulingDecision(
            should_run=evaluation.verdict == "go",
            reason=_reason(evaluation, task_type.strip(), duration),
            task_type=task_type.strip(),
            priority=priority,
            estimated_duration_minutes=duration,
            verdict=evaluation.verdict,
            level=evaluation.level,
            thermal_state=snap.thermal_state,
            problems=evaluation.problems,
            retry_after_seconds=retry,
            snapshot=snap,
        )

    def _retry_after(self, evaluation: Evaluation, snap: HardwareSnapshot) -> float | None:
        if evaluation.verdict == "go":
            self._deferrals = 0
            return None
        held_since = evaluation.state.held_since
        held = max(0.0, snap.taken_at - held_since) if held_since is not None else 0.0
        wait = retry_wait(self.policy, held, self._deferrals)
        self._deferrals += 1
        return wait


def _duration(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgumentError(
            f"estimated_duration_minutes must be a positive number, got {value!r}"
        )
    if value <= 0:
        raise InvalidArgumentError(
            f"estimated_duration_minutes must be a positive number, got {value!r}"
        )
    return float(value)


def _reason(evaluation: Evaluation, task_type: str, duration: float | None) -> str:
    took = f", about {duration:g} min" if duration is not None else ""
    verb = "run" if evaluation.verdict == "go" else "wait"
    return f"{verb} {task_type}{took}: {evaluation.reason}"
