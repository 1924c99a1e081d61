"""The candidate's blocking quality check as a pure verdict: finite metrics, accuracy at the floor.

Both a freshly trained version and a reused one are judged here, so the check, the version's
``efficientai.quality_check`` tag and ``champion_model``'s refusal always agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from efficientai_assets.names import QUALITY_FAILED, QUALITY_PASSED


@dataclass(frozen=True)
class QualityVerdict:
    """Whether a version passes the check, and the sentence the check result shows."""

    passed: bool
    description: str

    @property
    def tag(self) -> str:
        """The value of the version's quality tag: what ``champion_model`` reads."""
        return QUALITY_PASSED if self.passed else QUALITY_FAILED


def judge_quality(accuracy: float, loss: float, floor: float) -> QualityVerdict:
    """NaN or infinite metrics fail whatever the floor: MLflow stores them without complaint,
    and a model that diverged must never pass for a good one."""
    if not math.isfinite(loss) or not math.isfinite(accuracy):
        return QualityVerdict(False, f"validation loss {loss} or accuracy {accuracy} is not finite")
    if accuracy < floor:
        return QualityVerdict(
            False, f"validation accuracy {accuracy:.4f} is below the floor {floor:.4f}"
        )
    return QualityVerdict(
        True, f"validation accuracy {accuracy:.4f} ≥ floor {floor:.4f}, loss finite"
    )


def tagged_metric(tags: Mapping[str, str] | None, key: str) -> float:
    """A metric recorded as a version tag; NaN when absent or unreadable, which fails the check."""
    try:
        return float((tags or {}).get(key, "nan"))
    except ValueError:
        return math.nan
