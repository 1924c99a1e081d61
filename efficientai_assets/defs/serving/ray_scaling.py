"""The hardware-aware replica ceiling of a Ray Serve application, per node, applied and recorded.

``NodeCeilingWatcher`` takes one round of readings — one per live node, from the probe pinned to
that node — lets the gate's policy decide each node's ceiling on that node's readings alone
(``efficientai_assets.gate.replicas``: the same hysteresis and cool-down that hold a training
step, one ``GateState`` per node), and when a ceiling changes or a node joins or leaves, applies
the new per-node ceilings to the application (each node's model deployments get that node's
``max_replicas``; Serve stops the replicas above it there and nowhere else). Each change is
recorded: a log line naming the node and its readings, and a Dagster observation on the
``deployment`` asset carrying the node's name. ``make serve-ray`` runs one on the head node; the
decision is pure, so replayed traces drive it in tests.

Dagster loads this module in every process: Ray is imported only inside functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from efficientai_assets.gate.policy import GatePolicy
from efficientai_assets.gate.replicas import (
    CeilingDecision,
    CeilingRule,
    NodeGate,
    NodeRound,
    decide_node_ceilings,
)
from efficientai_assets.names import DEPLOYMENT_ASSET
from resources.hardware.types import HardwareSnapshot

if TYPE_CHECKING:
    import dagster as dg

    from efficientai_assets.defs.serving.ray_backend import RayServeSettings
    from efficientai_assets.ray_service.spec import ApplicationSpec

logger = logging.getLogger("efficientai.serving.ray")

Applier = Callable[[Mapping[str, int]], None]


class NodeCeilingWatcher:
    """Feeds each node's readings through its own gate and applies the per-node ceilings
    whenever they differ from what was last applied (a failed apply is retried next round)."""

    def __init__(
        self,
        policy: GatePolicy,
        rule: CeilingRule,
        apply: Applier,
        record: Callable[[CeilingDecision], None] = lambda _: None,
        gates: Mapping[str, NodeGate] | None = None,
    ) -> None:
        self.policy, self.rule = policy, rule
        self._apply, self._record = apply, record
        self.gates: dict[str, NodeGate] = dict(gates or {})
        self.applied: dict[str, int] | None = None

    @property
    def ceilings(self) -> dict[str, int]:
        """Each known node's ceiling now."""
        return {node: gate.ceiling for node, gate in sorted(self.gates.items())}

    def observe(self, readings: Mapping[str, HardwareSnapshot]) -> NodeRound:
        """One round (exactly the live nodes' readings): decide each node, log and record each
        change, and apply the ceilings when they or the set of nodes changed."""
        decided = decide_node_ceilings(self.policy, self.rule, self.gates, readings)
        self.gates = dict(decided.gates)
        for node in decided.joined:
            logger.warning(
                "node %s joined: replica ceiling %d there", node, self.gates[node].ceiling
            )
        for node in decided.left:
            logger.warning("node %s left: its replicas are no longer served", node)
        for decision in decided.changed:
            logger.warning("%s", decision.summary())
            self._record(decision)
        self.reconcile()
        return decided

    def reconcile(self) -> None:
        """Apply the current ceilings unless they are what was last applied."""
        wanted = self.ceilings
        if wanted == self.applied or not wanted:
            return
        try:
            self._apply(wanted)
        except Exception as error:  # the cluster busy or restarting: try again next round
            logger.error("replica ceilings %s not applied (retried next round): %s", wanted, error)
            return
        self.applied = wanted

    def forget_applied(self) -> None:
        """Someone else redeployed the application (a new deployment record): apply again."""
        self.applied = None


def observation_recorder(
    instance: dg.DagsterInstance, namespace: str
) -> Callable[[CeilingDecision], None]:
    """Records each decision as an observation of the ``deployment`` asset (runless: the
    watcher is not a Dagster run), naming the node it was made for."""
    import dagster as dg

    def record(decision: CeilingDecision) -> None:
        instance.report_runless_asset_event(
            dg.AssetObservation(
                asset_key=DEPLOYMENT_ASSET,
                description=decision.summary(),
                metadata={**decision.to_metadata(), "ray.application": namespace},
            )
        )

    return record


def ray_applier(spec: ApplicationSpec, settings: RayServeSettings) -> Applier:
    """Applies per-node ceilings by updating ``spec``'s application in place: only the
    autoscaling of the nodes whose ceiling moved changes, so Serve keeps the running replicas up
    to each node's new maximum (a node joining or leaving also adds or drops its deployments)."""
    from efficientai_assets.defs.serving.ray_backend import deploy_spec, with_ceilings

    def apply(ceilings: Mapping[str, int]) -> None:
        deploy_spec(with_ceilings(spec, ceilings), settings)

    return apply


def rule_for(settings: RayServeSettings) -> CeilingRule:
    """The ceiling per gate phase from the Ray settings (the same on every node)."""
    return CeilingRule(
        max_replicas=settings.max_replicas,
        held_replicas=min(settings.held_replicas, settings.max_replicas),
        critical_replicas=1,
    )
