"""The deployment move as pure decisions: is the request sound, who may take traffic, where a
rollback goes, and what the move changes in the registry.

Each function takes plain values (strings, numbers, the record dataclasses) and returns a value or
raises ``RolloutError`` with the message an operator sees; the ``deployment`` asset reads the
registry and the record log, calls these, and does the writing. Unit tests replay any situation
through them without MLflow, BentoML or Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from efficientai_assets.names import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    CHAMPION_ASSET,
    QUALITY_PASSED,
    TAG_QUALITY,
)
from resources.bentoml.types import DeploymentRecord

Action = Literal["deploy", "promote", "rollback"]
Mode = Literal["single", "canary", "shadow"]
Role = Literal["champion", "canary", "shadow", "retired"]


class RolloutError(ValueError):
    """A move that cannot be made as asked; the message says what to change."""


@dataclass(frozen=True)
class MoveRequest:
    """One move as the operator asked for it (the ``deployment`` asset's run config)."""

    action: Action = "deploy"
    canary_share: float = 0.0
    shadow: bool = False
    reason: str = ""
    requested_by: str = ""
    rollback_to_version: str = ""

    @property
    def wants_challenger_beside(self) -> bool:
        """A deploy that puts the challenger beside the champion (canary or shadow)."""
        return self.shadow or self.canary_share > 0


@dataclass(frozen=True)
class Candidate:
    """A registered version as the rollout sees it: its number, its quality verdict and whether a
    rollback moved away from it."""

    version: str
    quality: str | None = None
    rolled_back: bool = False


@dataclass(frozen=True)
class MovePlan:
    """What one move serves and what it changes in the registry."""

    action: Action
    champion_version: str
    canary_version: str | None
    mode: Mode
    canary_share: float
    requested_by: str
    reason: str
    previous_champion_version: str | None
    alias_moves: bool
    mark_rolled_back: str | None  # the version a rollback moves away from
    clear_rolled_back: bool  # a promotion trusts a rolled-back version again

    @property
    def promotion_reason(self) -> str:
        """Tagged on the version the alias moves to."""
        return f"{self.action}: {self.reason}"

    def rolled_back_note(self, deployment_id: int) -> str:
        """Tagged on the version a rollback moves away from: which move, who and why."""
        return f"deployment {deployment_id} by {self.requested_by}: {self.reason}"


def check_request(request: MoveRequest) -> None:
    """Refuse a request whose parts contradict each other, before anything is read."""
    if request.shadow and request.canary_share > 0:
        raise RolloutError("choose a canary_share or shadow mode, not both")
    if request.action != "deploy" and request.wants_challenger_beside:
        raise RolloutError(f"{request.action} serves the champion alone: drop canary_share/shadow")
    if request.action != "deploy" and not request.reason.strip():
        raise RolloutError(f"{request.action} needs a reason (config 'reason')")
    if request.action != "rollback" and request.rollback_to_version:
        raise RolloutError("rollback_to_version only applies to action 'rollback'")


def servable_challenger(
    model_name: str, challenger: Candidate | None, champion_version: str | None
) -> Candidate:
    """The challenger, when it may take traffic: it exists, is not the champion, and passed its
    quality check."""
    if challenger is None:
        raise RolloutError(
            f"{model_name} has no '{CHALLENGER_ALIAS}' version to put beside the champion"
        )
    if champion_version is not None and challenger.version == champion_version:
        raise RolloutError(
            f"the challenger of {model_name} is the champion (version {champion_version})"
        )
    if challenger.quality != QUALITY_PASSED:
        raise RolloutError(
            f"{model_name} version {challenger.version} did not pass its quality check "
            f"({TAG_QUALITY}={challenger.quality!r}); it cannot take traffic"
        )
    return challenger


def rollback_target(
    model_name: str,
    current: str | None,
    requested: str,
    history: Sequence[str],
    rolled_back: Mapping[str, bool],
) -> str:
    """The version a rollback serves: ``requested`` when given, else the newest earlier champion
    in ``history`` (champion versions of the records, oldest first) that was not itself rolled
    back, so a second rollback goes further back, never forward to the version just rolled back
    from. ``rolled_back`` holds the registry's verdict for each version it still knows; a version
    it lacks is skipped."""
    target = requested
    if not target:
        for version in reversed(history):
            if version != current and version in rolled_back and not rolled_back[version]:
                target = version
                break
    if not target:
        raise RolloutError(
            f"no previous champion of {model_name} to roll back to: every recorded deployment "
            f"served version {current}"
        )
    if target == current:
        raise RolloutError(f"version {target} is already the champion of {model_name}")
    return target


def require_champion(model_name: str, champion: str | None) -> str:
    """The version to serve as champion; none yet means the training pipeline has not run."""
    if champion is None:
        raise RolloutError(
            f"{model_name} has no '{CHAMPION_ALIAS}' version: materialize {CHAMPION_ASSET}"
        )
    return champion


def plan_move(
    request: MoveRequest,
    old_champion: str | None,
    champion: Candidate,
    canary: str | None,
    os_user: str,
) -> MovePlan:
    """Mode, share, who and why of a move that serves ``champion`` (and ``canary``), and the
    registry changes it implies, given the version that was champion before."""
    mode: Mode = "single" if canary is None else ("shadow" if request.shadow else "canary")
    default_reason = (
        f"serve the champion with the challenger as {'shadow' if request.shadow else 'canary'}"
        if canary is not None
        else "serve the champion"
    )
    moves = old_champion is None or old_champion != champion.version
    return MovePlan(
        action=request.action,
        champion_version=champion.version,
        canary_version=canary,
        mode=mode,
        canary_share=request.canary_share if mode == "canary" else 0.0,
        requested_by=request.requested_by.strip() or os_user,
        reason=request.reason.strip() or default_reason,
        previous_champion_version=old_champion,
        alias_moves=moves,
        mark_rolled_back=old_champion if moves and request.action == "rollback" else None,
        clear_rolled_back=request.action == "promote" and champion.rolled_back,
    )


def version_roles(record: DeploymentRecord, previous: DeploymentRecord | None) -> dict[str, Role]:
    """The role each affected version has after ``record``: champion, canary or shadow, and
    ``retired`` for what ``previous`` served that ``record`` no longer does."""
    roles: dict[str, Role] = {record.champion.model_version: "champion"}
    if record.canary is not None:
        roles[record.canary.model_version] = "shadow" if record.mode == "shadow" else "canary"
    if previous is not None:
        for served in (previous.champion, previous.canary):
            if served is not None and served.model_version not in roles:
                roles[served.model_version] = "retired"
    return roles
