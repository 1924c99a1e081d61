"""The sweep's verdicts, pure: what each configuration came to, which one is the best (highest
validation accuracy, ties by lower validation loss, then by order), and the table a person reads.

``sweep_steps.py`` gathers the outcomes and writes; the choice is replay-tested on plain values
(tests/training/test_sweep_plan.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from efficientai_assets.provenance import stable_hash

TRAINED, REUSED, FAILED = "trained", "reused", "failed"


@dataclass(frozen=True)
class TrialOutcome:
    """What one configuration came to: a registered version (trained now or reused) with its
    validation metrics, or the error that stopped it."""

    key: str
    label: str
    swept: Mapping[str, Any]
    status: str
    version: str = ""
    run_id: str = ""
    fingerprint: str = ""
    val_accuracy: float = math.nan
    val_loss: float = math.nan
    quality: str = ""
    train_seconds: float = 0.0
    error: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        """A registered version with finite metrics: it may be chosen."""
        return (
            self.status != FAILED
            and bool(self.version)
            and math.isfinite(self.val_accuracy)
            and math.isfinite(self.val_loss)
        )


@dataclass(frozen=True)
class BestChoice:
    """The configuration the sweep puts forward (None: none usable) and why."""

    best: TrialOutcome | None
    reason: str


def choose_best(outcomes: Sequence[TrialOutcome]) -> BestChoice:
    """Highest validation accuracy; a tie goes to the lower validation loss, then to the earlier
    configuration. Failed configurations and non-finite metrics never win."""
    usable = [o for o in outcomes if o.usable]
    failed = [o for o in outcomes if o.status == FAILED]
    if not usable:
        return BestChoice(
            None,
            f"none of the {len(outcomes)} configurations produced a usable model "
            f"({len(failed)} failed); nothing is registered as challenger",
        )
    order = {o.key: index for index, o in enumerate(outcomes)}
    best = min(usable, key=lambda o: (-o.val_accuracy, o.val_loss, order[o.key]))
    ties = [o for o in usable if o.val_accuracy == best.val_accuracy and o is not best]
    reason = (
        f"{best.key} ({best.label}) has the highest validation accuracy {best.val_accuracy:.4f} "
        f"of {len(usable)} usable configurations"
    )
    if ties:
        reason += f", tied with {len(ties)} and chosen by its lower loss {best.val_loss:.4f}"
    if failed:
        reason += f"; {len(failed)} failed: {', '.join(o.key for o in failed)}"
    return BestChoice(best, reason)


def sweep_fingerprint(trial_fingerprints: Sequence[str]) -> str:
    """What a sweep's results depend on: the memo keys of its configurations, in order."""
    return stable_hash({"trials": list(trial_fingerprints)})


def results_markdown(outcomes: Sequence[TrialOutcome], best: TrialOutcome | None) -> str:
    """Every configuration with its metrics, the best marked, failures with their error."""
    lines = [
        "| | configuration | status | version | val accuracy | val loss | train s | quality |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        mark = "**best**" if best is not None and o.key == best.key else ""
        status = o.status if o.status != FAILED else f"failed: {_cell(o.error)[:120]}"
        lines.append(
            f"| {mark} | `{o.key}` {_cell(o.label)} | {status} | {o.version or '-'} | "
            f"{_number(o.val_accuracy)} | {_number(o.val_loss)} | "
            f"{o.train_seconds:.1f} | {o.quality or '-'} |"
        )
    return "\n".join(lines)


def results_rows(outcomes: Sequence[TrialOutcome]) -> list[dict[str, Any]]:
    """The table as plain rows (the parent run's JSON artifact)."""
    return [
        {
            "key": o.key,
            "swept": dict(o.swept),
            "status": o.status,
            "model_version": o.version,
            "run_id": o.run_id,
            "fingerprint": o.fingerprint,
            "val_accuracy": o.val_accuracy if math.isfinite(o.val_accuracy) else None,
            "val_loss": o.val_loss if math.isfinite(o.val_loss) else None,
            "quality": o.quality,
            "train_seconds": o.train_seconds,
            "error": o.error,
        }
        for o in outcomes
    ]


def _number(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "-"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
