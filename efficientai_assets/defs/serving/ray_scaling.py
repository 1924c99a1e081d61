"""The hardware-aware replica ceiling of a Ray Serve application, applied and recorded.

``CeilingWatcher`` takes one reading of a node at a time, lets the gate's policy decide the
ceiling (``efficientai_assets.gate.replicas``: the same hysteresis and cool-down that hold a
training step), and when the ceiling changes applies it to the application (Serve's
``max_replicas``; replicas above it are stopped) and records the decision: a log line naming the
readings and a Dagster observation on the ``deployment`` asset. ``make serve-ray`` runs one on
the head node; the decision is pure, so replayed traces drive it in tests.

Dagster loads this module in every process: Ray is imported only inside functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from efficientai_assets.gate.policy import GatePolicy, GateState
from efficientai_assets.gate.replicas import CeilingDecision, CeilingRule, decide_ceiling
from efficientai_assets.names import DEPLOYMENT_ASSET
from resources.hardware.types import HardwareSnapshot

if TYPE_CHECKING:
    import dagster as dg

    from efficientai_assets.defs.serving.ray_backend import RayServeSettings
    from efficientai_assets.ray_service.spec import ApplicationSpec

logger = logging.getLogger("efficientai.serving.ray")


class CeilingWatcher:
    """Feeds readings through the gate and applies each change of ceiling once."""

    def __init__(
        self,
        policy: GatePolicy,
        rule: CeilingRule,
        apply: Callable[[int], None],
        record: Callable[[CeilingDecision], None] = lambda _: None,
        state: GateState | None = None,
    ) -> None:
        self.policy, self.rule = policy, rule
        self._apply, self._record = apply, record
        self.state = state or GateState()
        self.ceiling = rule.max_replicas

    def observe(self, snapshot: HardwareSnapshot) -> CeilingDecision:
        """One reading: decide, and on a change apply the ceiling, log it and record it."""
        decision = decide_ceiling(self.policy, self.rule, self.state, self.ceiling, snapshot)
        self.state = decision.state
        if decision.changed:
            self._apply(decision.ceiling)
            self.ceiling = decision.ceiling
            logger.warning("%s", decision.summary())
            self._record(decision)
        return decision


def observation_recorder(
    instance: dg.DagsterInstance, namespace: str
) -> Callable[[CeilingDecision], None]:
    """Records each decision as an observation of the ``deployment`` asset (runless: the
    watcher is not a Dagster run)."""
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


def ray_applier(spec: ApplicationSpec, settings: RayServeSettings) -> Callable[[int], None]:
    """Applies a ceiling by updating the application in place (only its autoscaling changes,
    so Serve keeps the running replicas up to the new maximum)."""
    from efficientai_assets.defs.serving.ray_backend import deploy_spec, with_ceiling

    def apply(ceiling: int) -> None:
        deploy_spec(with_ceiling(spec, ceiling, settings), settings)

    return apply


def rule_for(settings: RayServeSettings) -> CeilingRule:
    """The ceiling per gate phase from the Ray settings."""
    return CeilingRule(
        max_replicas=settings.max_replicas,
        held_replicas=min(settings.held_replicas, settings.max_replicas),
        critical_replicas=1,
    )
