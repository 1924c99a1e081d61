"""The gate's policy applied to serving: how many replicas an application may run on a node.

One policy for training and serving: each reading goes through ``policy.evaluate`` (the same
hysteresis, thresholds and cool-down that hold a heavy training step), and the ceiling follows the
gate's phase — the configured maximum while the gate is clear (or only suspects a bad reading),
``held_replicas`` while it holds (serious/critical thermal state, memory pressure, PSI), and
``critical_replicas`` on a critical reading. The ceiling comes back only when the gate releases,
after ``cooldown_seconds`` of good readings. Pure: replayed traces drive it in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from efficientai_assets.gate.policy import Evaluation, GatePolicy, GateState, evaluate
from resources.hardware.types import HardwareSnapshot, MetadataValue


@dataclass(frozen=True)
class CeilingRule:
    """The replica ceilings per gate phase (``held_replicas`` and ``critical_replicas`` are
    capped at ``max_replicas``)."""

    max_replicas: int
    held_replicas: int = 1
    critical_replicas: int = 1

    def __post_init__(self) -> None:
        for name in ("max_replicas", "held_replicas", "critical_replicas"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 (a served model keeps one replica)")


@dataclass(frozen=True)
class CeilingDecision:
    """One reading's ceiling, whether it changed, and the gate's evaluation behind it."""

    ceiling: int
    previous: int
    evaluation: Evaluation
    snapshot: HardwareSnapshot

    @property
    def changed(self) -> bool:
        return self.ceiling != self.previous

    @property
    def state(self) -> GateState:
        return self.evaluation.state

    def readings(self) -> str:
        """The readings the decision was made on, in words (for the log line)."""
        return self.snapshot.summary()

    def summary(self) -> str:
        verb = "drops" if self.ceiling < self.previous else "rises" if self.changed else "stays"
        return (
            f"replica ceiling {verb} {self.previous} -> {self.ceiling}: gate "
            f"{self.evaluation.state.phase} ({self.evaluation.reason}); readings: {self.readings()}"
        )

    def to_metadata(self) -> dict[str, MetadataValue]:
        out: dict[str, MetadataValue] = {
            "ray.replica_ceiling": self.ceiling,
            "ray.previous_replica_ceiling": self.previous,
            "gate.state": self.evaluation.state.phase,
            "gate.level": self.evaluation.level,
            "gate.reason": self.evaluation.reason,
            "gate.problems": "; ".join(self.evaluation.problems),
        }
        out.update(self.snapshot.to_metadata(prefix="hardware."))
        return out


def ceiling_for(rule: CeilingRule, evaluation: Evaluation) -> int:
    """The ceiling the gate's phase allows after ``evaluation``."""
    if evaluation.level == "critical":
        return min(rule.critical_replicas, rule.max_replicas)
    if evaluation.state.phase == "hold":
        return min(rule.held_replicas, rule.max_replicas)
    return rule.max_replicas


def decide_ceiling(
    policy: GatePolicy,
    rule: CeilingRule,
    state: GateState,
    previous: int,
    snapshot: HardwareSnapshot,
) -> CeilingDecision:
    """Advance the gate with one reading of the node and derive the replica ceiling there."""
    evaluation = evaluate(policy, state, snapshot, priority="normal")
    return CeilingDecision(ceiling_for(rule, evaluation), previous, evaluation, snapshot)


def replay_ceilings(
    policy: GatePolicy,
    rule: CeilingRule,
    snapshots: list[HardwareSnapshot],
    state: GateState | None = None,
) -> list[CeilingDecision]:
    """A trace through ``decide_ceiling``; each reading sees the state the previous one left."""
    out: list[CeilingDecision] = []
    current, ceiling = state or GateState(), rule.max_replicas
    for snap in snapshots:
        decision = decide_ceiling(policy, rule, current, ceiling, snap)
        out.append(decision)
        current, ceiling = decision.state, decision.ceiling
    return out
