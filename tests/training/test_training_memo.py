"""The memo lookup's verdict and the quality verdict, on plain values (no registry, no training)."""

from __future__ import annotations

import math

import pytest

from efficientai_assets.defs.training.memo import MemoKey, PriorVersion, memo_verdict
from efficientai_assets.defs.training.quality import judge_quality, tagged_metric
from efficientai_assets.names import (
    TAG_FINGERPRINT,
    TAG_ROLLED_BACK,
    TAG_VAL_ACCURACY,
    TAG_VAL_LOSS,
)

TRAINED_WITH = {
    "epochs": 20,
    "batch_size": 64,
    "learning_rate": 1e-3,
    "hidden_units": [256, 128],
    "seed": 0,
    "device": "cpu",
}
KEY = MemoKey.for_training("abc123", "1", TRAINED_WITH)


def prior(key: MemoKey = KEY, tags: dict[str, str] | None = None) -> PriorVersion:
    """Version 3 as the registry holds it: its fingerprint and recorded metrics, plus ``tags``."""
    return PriorVersion(
        "3",
        {
            TAG_FINGERPRINT: key.fingerprint,
            TAG_VAL_ACCURACY: "0.95",
            TAG_VAL_LOSS: "0.2",
            **(tags or {}),
        },
    )


def test_fingerprints_of_versions_registered_before_are_unchanged() -> None:
    """Registered versions carry these values: a different hash would retrain everything once."""
    assert KEY.config_hash == "6451f413110745f6"
    assert KEY.fingerprint == "70f82bd31220b288"


def test_the_key_ignores_the_order_of_hyperparameters() -> None:
    reordered = dict(reversed(list(TRAINED_WITH.items())))
    assert MemoKey.for_training("abc123", "1", reordered) == KEY


@pytest.mark.parametrize(
    "changed",
    [
        MemoKey.for_training("other-md5", "1", TRAINED_WITH),
        MemoKey.for_training("abc123", "2", TRAINED_WITH),
        MemoKey.for_training("abc123", "1", {**TRAINED_WITH, "seed": 7}),
        MemoKey.for_training("abc123", "1", {**TRAINED_WITH, "device": "gpu"}),
    ],
    ids=["data", "code-version", "config", "resolved-device"],
)
def test_other_data_code_or_config_gives_another_fingerprint(changed: MemoKey) -> None:
    assert changed.fingerprint != KEY.fingerprint


def test_same_data_code_and_config_reuse_the_registered_version() -> None:
    verdict = memo_verdict(KEY, prior(), force_retrain=False, floor=0.9)
    assert verdict.reuse is True and verdict.version == "3"
    assert verdict.reason == "version 3 was trained from the same data, code and config"
    assert (verdict.val_accuracy, verdict.val_loss) == (0.95, 0.2)


def test_no_registered_version_means_train() -> None:
    verdict = memo_verdict(KEY, None, force_retrain=False, floor=0.9)
    assert verdict.reuse is False and verdict.version is None
    assert "no registered version" in verdict.reason


def test_a_version_with_another_fingerprint_is_not_reused() -> None:
    other = MemoKey.for_training("abc123", "1", {**TRAINED_WITH, "epochs": 5})
    assert memo_verdict(KEY, prior(key=other), force_retrain=False, floor=0.9).reuse is False


def test_force_retrain_trains_even_when_an_identical_version_exists() -> None:
    verdict = memo_verdict(KEY, prior(), force_retrain=True, floor=0.9)
    assert verdict.reuse is False and "force_retrain" in verdict.reason


def test_a_reused_version_is_judged_against_todays_floor() -> None:
    """The floor is not part of the key: the same version passes at 0.9 and fails at 0.99."""
    relaxed = memo_verdict(KEY, prior(), force_retrain=False, floor=0.9)
    strict = memo_verdict(KEY, prior(), force_retrain=False, floor=0.99)
    assert relaxed.reuse and strict.reuse
    assert relaxed.quality is not None and relaxed.quality.tag == "passed"
    assert strict.quality is not None and strict.quality.tag == "failed"
    assert "below the floor 0.9900" in strict.quality.description


def test_a_reused_version_with_missing_or_unreadable_metrics_fails_its_check() -> None:
    missing = PriorVersion("3", {TAG_FINGERPRINT: KEY.fingerprint})
    garbled = prior(tags={TAG_VAL_ACCURACY: "high"})
    for version in (missing, garbled):
        verdict = memo_verdict(KEY, version, force_retrain=False, floor=0.0)
        assert verdict.reuse is True
        assert verdict.quality is not None and verdict.quality.passed is False


def test_a_rolled_back_version_is_reused_not_retrained_and_the_reason_says_so() -> None:
    """Retraining the same inputs would register the same weights under a new number that
    champion_model would promote: the rollback would be undone by a retrain."""
    verdict = memo_verdict(
        KEY,
        prior(tags={TAG_ROLLED_BACK: "deployment 4: v3 misbehaves"}),
        force_retrain=False,
        floor=0.9,
    )
    assert verdict.reuse is True and verdict.version == "3"
    assert "rolled back (deployment 4: v3 misbehaves)" in verdict.reason
    assert "champion_model will not promote it" in verdict.reason


@pytest.mark.parametrize(
    ("accuracy", "loss"),
    [(math.nan, 0.1), (0.95, math.nan), (math.inf, 0.1), (0.95, -math.inf)],
)
def test_non_finite_metrics_fail_whatever_the_floor(accuracy: float, loss: float) -> None:
    verdict = judge_quality(accuracy, loss, floor=0.0)
    assert verdict.passed is False and "not finite" in verdict.description


def test_accuracy_at_the_floor_passes_and_below_it_fails() -> None:
    assert judge_quality(0.9, 0.3, 0.9).passed is True
    below = judge_quality(0.8999, 0.3, 0.9)
    assert below.passed is False and below.tag == "failed"
    assert (
        judge_quality(0.9, 0.3, 0.9).description
        == "validation accuracy 0.9000 ≥ floor 0.9000, loss finite"
    )


def test_tagged_metrics_read_as_floats_or_nan() -> None:
    assert tagged_metric({TAG_VAL_ACCURACY: repr(0.1 + 0.2)}, TAG_VAL_ACCURACY) == 0.1 + 0.2
    assert math.isnan(tagged_metric({}, TAG_VAL_ACCURACY))
    assert math.isnan(tagged_metric(None, TAG_VAL_ACCURACY))
