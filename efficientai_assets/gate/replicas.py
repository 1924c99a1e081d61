"""The gate's policy applied to serving: how many replicas an application may run on a node.

One policy for training and serving: each reading goes through ``policy.evaluate`` (the same
hysteresis, thresholds and cool-down that hold a heavy training step), and the ceiling follows the
gate's phase — the configured maximum while the gate is clear (or only suspects a bad reading),
``held_replicas`` while it holds (serious/critical thermal state, memory pressure, PSI), and
``critical_replicas`` on a critical reading. The ceiling comes back only when the gate releases,
after ``cooldown_seconds`` of good readings. Pure: replayed traces drive it in tests.

Per node: each node of a cluster has its own gate (``NodeGate``: its ``GateState`` and ceiling),
fed only by that node's readings, so one hot node lowers only its own ceiling.
``decide_node_ceilings`` advances every node by one round of readings; a node that appears in a
round joins with a fresh gate (the full ceiling), a node missing from a round has left and its
gate is forgotten (if it comes back, it starts fresh).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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
    node: str = ""  # the node read; "" where the application has one ceiling

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
        where = f" on node {self.node}" if self.node else ""
        return (
            f"replica ceiling{where} {verb} {self.previous} -> {self.ceiling}: gate "
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
        if self.node:
            out["ray.node"] = self.node
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
    node: str = "",
) -> CeilingDecision:
    """Advance the gate with one reading of the node and derive the replica ceiling there."""
    evaluation = evaluate(policy, state, snapshot, priority="normal")
    return CeilingDecision(ceiling_for(rule, evaluation), previous, evaluation, snapshot, node)


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


@dataclass(frozen=True)
class NodeGate:
    """What the gate remembers of one node between rounds: its hysteresis and its ceiling."""

    ceiling: int
    state: GateState = field(default_factory=GateState)


@dataclass(frozen=True)
class NodeRound:
    """One round of per-node readings decided: each node's decision, who joined and who left,
    and the gates the next round starts from."""

    decisions: Mapping[str, CeilingDecision]
    gates: Mapping[str, NodeGate]
    joined: tuple[str, ...] = ()
    left: tuple[str, ...] = ()

    @property
    def ceilings(self) -> dict[str, int]:
        """Each live node's ceiling after this round."""
        return {node: gate.ceiling for node, gate in sorted(self.gates.items())}

    @property
    def changed(self) -> list[CeilingDecision]:
        """The decisions that moved a node's ceiling (what is logged and recorded)."""
        return [d for _, d in sorted(self.decisions.items()) if d.changed]

    @property
    def reshaped(self) -> bool:
        """Whether the set of nodes changed (the application gains or loses a node's replicas)."""
        return bool(self.joined or self.left)


def decide_node_ceilings(
    policy: GatePolicy,
    rule: CeilingRule,
    gates: Mapping[str, NodeGate],
    readings: Mapping[str, HardwareSnapshot],
) -> NodeRound:
    """Advance each live node's gate with its own reading; ``readings`` holds exactly the nodes
    live this round (a node that could not be read is given an unknown reading, which the gate
    judges by ``unknown_behaviour``). Nodes are independent: one node's readings never move
    another node's ceiling."""
    decisions: dict[str, CeilingDecision] = {}
    after: dict[str, NodeGate] = {}
    for node, snapshot in sorted(readings.items()):
        before = gates.get(node) or NodeGate(rule.max_replicas)
        decision = decide_ceiling(policy, rule, before.state, before.ceiling, snapshot, node)
        decisions[node] = decision
        after[node] = NodeGate(decision.ceiling, decision.state)
    joined = tuple(sorted(set(readings) - set(gates)))
    left = tuple(sorted(set(gates) - set(readings)))
    return NodeRound(decisions, after, joined, left)


def replay_node_ceilings(
    policy: GatePolicy,
    rule: CeilingRule,
    rounds: list[Mapping[str, HardwareSnapshot]],
    gates: Mapping[str, NodeGate] | None = None,
) -> list[NodeRound]:
    """A per-node trace, one mapping of node → reading per round, through
    ``decide_node_ceilings``; each round sees the gates the previous one left."""
    out: list[NodeRound] = []
    current: Mapping[str, NodeGate] = gates or {}
    for readings in rounds:
        decided = decide_node_ceilings(policy, rule, current, readings)
        out.append(decided)
        current = decided.gates
    return out
