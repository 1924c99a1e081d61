"""Run config of the deployment move."""

# No ``from __future__ import annotations``: Dagster reads the field types from the annotations.

from typing import Literal

import dagster as dg
from pydantic import Field

from efficientai_assets.defs.serving.rollout import MoveRequest


class DeploymentConfig(dg.Config):
    """One move of the rollout. ``deploy`` keeps the champion and sets the canary; ``promote`` and
    ``rollback`` move the ``champion`` alias and serve it alone."""

    action: Literal["deploy", "promote", "rollback"] = Field(
        default="deploy", description="deploy | promote (challenger → champion) | rollback."
    )
    canary_share: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="Share of traffic the challenger's bento answers."
    )
    shadow: bool = Field(
        default=False, description="The challenger sees copies of requests; its answers are logged."
    )
    reason: str = Field(default="", description="Why (required for promote and rollback).")
    requested_by: str = Field(default="", description="Who; empty means the OS user.")
    rollback_to_version: str = Field(
        default="", description="Version to roll back to; empty means the previous champion."
    )
    backend: Literal["bentoml", "ray"] = Field(
        default="bentoml",
        description="Who serves: bentoml (the bentos, `make serve`) or ray (the Ray Serve "
        "application of this namespace, deployed by this move; EFFICIENTAI_RAY_* settings).",
    )

    def to_request(self) -> MoveRequest:
        """The move as plain values, for the rollout's decisions."""
        return MoveRequest(
            action=self.action,
            canary_share=self.canary_share,
            shadow=self.shadow,
            reason=self.reason,
            requested_by=self.requested_by,
            rollback_to_version=self.rollback_to_version,
        )
