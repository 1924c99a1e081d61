"""The retraining guardrails as one pure decision: given the pending drift, the time, the last
retraining and (once asked for) the hardware gate's answer, request a retraining or skip saying
which guardrail held.

Plain values in, a verdict out: no instance, no clock, no hardware. The drift sensor gathers the
values and acts on the verdict; the tests replay any situation through :func:`retraining_verdict`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from efficientai_assets.gate.policy import Priority
from sensors.drift_cursor import DriftEvent, event_order


@dataclass(frozen=True)
class RetrainPolicy:
    """The guardrails. Defaults suit a daily monitoring cadence."""

    cooldown_seconds: float = 6 * 3600.0
    min_new_rows: int = 500
    priority: Priority = "normal"
    max_reference_rows: int | None = None  # cap on the reference window (seeded sample)
    seed: int = 0


@dataclass(frozen=True)
class GateAnswer:
    """The hardware gate's answer to one reading, in the words the verdict needs."""

    go: bool
    phase: str  # clear, suspect, hold
    reason: str
    reading: str  # one-line summary of the reading


@dataclass(frozen=True)
class RetrainVerdict:
    """``request``: every guardrail passed (``reason`` is the gate's word on it). ``skip``:
    ``reason`` says which guardrail held.
    ``ask_gate``: only the hardware gate is left to consult — read the machine and decide again
    with its answer (a reading costs a hardware snapshot and advances the gate's hysteresis, so
    it is taken only when it can change the outcome)."""

    action: Literal["request", "skip", "ask_gate"]
    reason: str
    events: tuple[DriftEvent, ...] = ()

    @property
    def partitions(self) -> str:
        return ", ".join(e.partition for e in self.events)


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def retraining_verdict(
    pending: Iterable[DriftEvent],
    policy: RetrainPolicy,
    now: float,
    last_retrain_at: float | None,
    gate: GateAnswer | None = None,
    seen: str = "",
) -> RetrainVerdict:
    """Whether to request a retraining now, checking in order: drift pending (a partition at or
    over its threshold), cooldown since the last retraining, enough new labelled rows, and the
    hardware gate. ``seen`` is a note on the reports read this tick, for the no-drift reason."""
    events = tuple(sorted((e for e in pending if e.drifted), key=event_order))
    if not events:
        return RetrainVerdict("skip", f"no drift pending{seen or ' (no new drift reports)'}")
    partitions = ", ".join(e.partition for e in events)

    def skip(reason: str) -> RetrainVerdict:
        return RetrainVerdict("skip", reason, events)

    if last_retrain_at is not None and now - last_retrain_at < policy.cooldown_seconds:
        left = (policy.cooldown_seconds - (now - last_retrain_at)) / 60
        return skip(
            f"cooldown: last retraining requested {_when(last_retrain_at)}, {left:.0f} min of "
            f"{policy.cooldown_seconds / 60:.0f} left; drift pending in {partitions}"
        )
    new_rows = sum(e.labelled_rows for e in events)
    if new_rows < policy.min_new_rows:
        return skip(
            f"waiting for labelled rows: {new_rows} of {policy.min_new_rows} needed from "
            f"drifted partitions {partitions}"
        )
    if gate is None:
        return RetrainVerdict("ask_gate", "every guardrail but the hardware gate passed", events)
    if not gate.go:
        return skip(
            f"deferred by the hardware gate ({gate.phase}): {gate.reason} "
            f"[{gate.reading}]; drift pending in {partitions}"
        )
    return RetrainVerdict("request", f"go: {gate.reason}", events)
