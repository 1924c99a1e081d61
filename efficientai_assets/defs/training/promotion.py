"""Champion vs challenger as pure decisions: whether the challenger may be compared at all, and
whether it takes the champion seat. ``champion.py`` reads the registry and the validation split,
calls these, and moves the alias.

The rules, in order: a challenger that failed (or never passed) its quality check is refused
outright; the champion is never "promoted" onto itself; a rolled-back version stays out until an
operator promotes it; an accuracy that is not a number is refused; a champion that takes other
input columns cannot be compared and gives way to a passing challenger; otherwise the challenger
wins unless it is worse on the current validation split (a tie goes to the challenger: it is the
newer model of the same quality).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from efficientai_assets.names import CHALLENGER_ALIAS, QUALITY_PASSED, TAG_QUALITY, TAG_ROLLED_BACK


@dataclass(frozen=True)
class Contender:
    """A registered version in the contest: its number, quality tag and rollback mark."""

    version: str
    quality: str | None = None
    rolled_back: str | None = None

    @classmethod
    def from_tags(cls, version: str, tags: Mapping[str, str]) -> Contender:
        return cls(str(version), tags.get(TAG_QUALITY), tags.get(TAG_ROLLED_BACK) or None)


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the challenger takes the seat, why, and who holds the seat afterwards."""

    promoted: bool
    reason: str
    seat: str
    seat_accuracy: float


def challenger_refusal(model_name: str, challenger: Contender | None) -> str | None:
    """Why ``champion_model`` fails before evaluating anything, or None when it may compare.

    Failing (not just "not promoting") keeps a blocked challenger visible in the run's status.
    """
    if challenger is None:
        return f"{model_name} has no '{CHALLENGER_ALIAS}' version: materialize candidate_model"
    if challenger.quality != QUALITY_PASSED:
        return (
            f"{model_name} version {challenger.version} failed its quality check "
            f"({TAG_QUALITY}={challenger.quality!r}); the champion stays"
        )
    return None


def decide_promotion(
    challenger: Contender,
    champion: Contender | None,
    challenger_accuracy: float,
    champion_accuracy: float | None,
    comparable: bool,
) -> PromotionDecision:
    """The contest on the current validation split. ``champion_accuracy`` is None when there is
    no champion or it takes other input columns (``comparable`` False)."""
    if champion is not None and champion.version == challenger.version:
        promoted, reason = False, f"version {challenger.version} is already the champion"
    elif challenger.rolled_back:
        promoted = False
        reason = (
            f"challenger v{challenger.version} was rolled back ({challenger.rolled_back});"
            " the pipeline does not promote it again — change the data or config, or promote it "
            "explicitly with the deployment asset (action: promote)"
        )
    elif not math.isfinite(challenger_accuracy):
        promoted = False
        reason = (
            f"challenger v{challenger.version} has accuracy {challenger_accuracy} on the current "
            "validation split, not a number to promote on: check the validation split "
            "(materialize dataset_splits) and the model's predictions"
        )
    elif champion is not None and not comparable:
        promoted = True
        reason = (
            f"challenger v{challenger.version} ({challenger_accuracy:.4f}) takes other input "
            f"columns than champion v{champion.version}: not comparable on this validation "
            "split; the challenger passed its quality check and takes the seat"
        )
    elif champion_accuracy is not None and challenger_accuracy < champion_accuracy:
        promoted = False
        reason = (
            f"challenger v{challenger.version} ({challenger_accuracy:.4f}) is worse than "
            f"champion v{champion.version if champion else '-'} ({champion_accuracy:.4f})"
        )
    else:
        promoted = True
        reason = (
            f"challenger v{challenger.version} ({challenger_accuracy:.4f}) is not worse than "
            + (
                f"champion v{champion.version} ({champion_accuracy:.4f})"
                if champion is not None and champion_accuracy is not None
                else "an empty seat"
            )
        )
    seat = challenger if promoted or champion is None else champion
    return PromotionDecision(
        promoted=promoted,
        reason=reason,
        seat=seat.version,
        seat_accuracy=challenger_accuracy if promoted else (champion_accuracy or 0.0),
    )
