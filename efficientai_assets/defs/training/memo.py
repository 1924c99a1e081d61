"""The memo lookup's verdict: reuse the registered version trained from the same data, code and
config, or train a new one. Pure: plain values in, a verdict out; ``candidate.py`` looks the
version up in the registry beforehand and does the writing afterwards.

The key is what decides the weights: the DVC md5 of the splits, the training code version and a
hash of the resolved hyperparameters (batch size and device as resolved, not "auto"). The quality
floor is not part of it: a reused version is judged again against today's floor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from efficientai_assets.defs.training.quality import QualityVerdict, judge_quality, tagged_metric
from efficientai_assets.names import (
    TAG_FINGERPRINT,
    TAG_ROLLED_BACK,
    TAG_VAL_ACCURACY,
    TAG_VAL_LOSS,
)
from efficientai_assets.provenance import stable_hash


@dataclass(frozen=True)
class MemoKey:
    """What a registered version must share with this run to be reused instead of retrained."""

    data_md5: str
    code_version: str
    config_hash: str

    @classmethod
    def for_training(
        cls, data_md5: str, code_version: str, trained_with: Mapping[str, object]
    ) -> MemoKey:
        """The key of a run that trains ``trained_with`` (the resolved hyperparameters)."""
        return cls(data_md5, code_version, stable_hash(trained_with))

    @property
    def fingerprint(self) -> str:
        """The ``efficientai.fingerprint`` tag: the lookup is by this one value."""
        return stable_hash(
            {"data": self.data_md5, "code": self.code_version, "config": self.config_hash}
        )


@dataclass(frozen=True)
class PriorVersion:
    """A registered version the lookup found: its number and its tags, as plain values."""

    version: str
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MemoVerdict:
    """Train, or reuse ``version``; for a reuse, its recorded metrics and today's quality verdict."""

    reuse: bool
    reason: str
    version: str | None = None
    val_accuracy: float = math.nan
    val_loss: float = math.nan
    quality: QualityVerdict | None = None


def memo_verdict(
    key: MemoKey, prior: PriorVersion | None, *, force_retrain: bool, floor: float
) -> MemoVerdict:
    """Reuse ``prior`` when it carries this key's fingerprint and retraining was not forced.

    A rolled-back version is reused too: the same data, code and config would train the same
    weights again under a new version number, which ``champion_model`` would then promote — a
    retrain must not undo a rollback. ``champion_model`` keeps refusing it.
    """
    if force_retrain:
        return MemoVerdict(
            reuse=False, reason="force_retrain is set: training even if an identical version exists"
        )
    if prior is None or prior.tags.get(TAG_FINGERPRINT) != key.fingerprint:
        return MemoVerdict(
            reuse=False,
            reason="no registered version was trained from the same data, code and config",
        )
    accuracy = tagged_metric(prior.tags, TAG_VAL_ACCURACY)
    loss = tagged_metric(prior.tags, TAG_VAL_LOSS)
    reason = f"version {prior.version} was trained from the same data, code and config"
    rolled_back = prior.tags.get(TAG_ROLLED_BACK)
    if rolled_back:
        reason += (
            f"; it was rolled back ({rolled_back}), so champion_model will not promote it: change "
            "the data or config to train another version, or promote it explicitly with the "
            "deployment asset (action: promote)"
        )
    return MemoVerdict(
        reuse=True,
        reason=reason,
        version=prior.version,
        val_accuracy=accuracy,
        val_loss=loss,
        quality=judge_quality(accuracy, loss, floor),
    )
