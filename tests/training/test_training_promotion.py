"""Champion vs challenger on plain values: every rule of ``promotion.py`` and its message."""

from __future__ import annotations

import math

import pytest

from efficientai_assets.defs.training.promotion import (
    Contender,
    challenger_refusal,
    decide_promotion,
)
from efficientai_assets.names import TAG_QUALITY, TAG_ROLLED_BACK

PASSING = Contender("2", quality="passed")
CHAMPION = Contender("1", quality="passed")


def test_no_challenger_fails_and_names_the_asset_to_materialize() -> None:
    refusal = challenger_refusal("test-digits", None)
    assert refusal == "test-digits has no 'challenger' version: materialize candidate_model"


@pytest.mark.parametrize("quality", ["failed", None, "PASSED"])
def test_a_challenger_that_did_not_pass_its_check_is_refused_before_any_evaluation(
    quality: str | None,
) -> None:
    refusal = challenger_refusal("test-digits", Contender("2", quality=quality))
    assert refusal is not None and "failed its quality check" in refusal
    assert f"{TAG_QUALITY}={quality!r}" in refusal and "the champion stays" in refusal


def test_a_passing_challenger_may_be_compared() -> None:
    assert challenger_refusal("test-digits", PASSING) is None


def test_an_empty_seat_goes_to_the_passing_challenger() -> None:
    decision = decide_promotion(PASSING, None, 0.93, None, comparable=False)
    assert decision.promoted is True and decision.seat == "2"
    assert decision.reason == "challenger v2 (0.9300) is not worse than an empty seat"
    assert decision.seat_accuracy == 0.93


def test_a_better_or_equal_challenger_takes_the_seat() -> None:
    for accuracy in (0.95, 0.94):
        decision = decide_promotion(PASSING, CHAMPION, accuracy, 0.94, comparable=True)
        assert decision.promoted is True and decision.seat == "2"
        assert "is not worse than champion v1 (0.9400)" in decision.reason


def test_a_worse_challenger_leaves_the_champion_in_its_seat() -> None:
    decision = decide_promotion(PASSING, CHAMPION, 0.90, 0.94, comparable=True)
    assert decision.promoted is False and decision.seat == "1"
    assert decision.reason == "challenger v2 (0.9000) is worse than champion v1 (0.9400)"
    assert decision.seat_accuracy == 0.94


def test_a_challenger_with_other_input_columns_waits_for_an_operator_to_promote_it() -> None:
    decision = decide_promotion(PASSING, CHAMPION, 0.99, None, comparable=False)
    assert decision.promoted is False and decision.seat == "1"
    assert "not comparable" in decision.reason and "the champion stays" in decision.reason
    assert "deployment asset (action: promote" in decision.reason


def test_the_champion_is_not_promoted_onto_itself() -> None:
    decision = decide_promotion(CHAMPION, CHAMPION, 0.94, 0.94, comparable=True)
    assert decision.promoted is False and decision.seat == "1"
    assert decision.reason == "version 1 is already the champion"


def test_a_rolled_back_challenger_stays_out_even_when_better() -> None:
    rolled_back = Contender.from_tags(
        "2", {TAG_QUALITY: "passed", TAG_ROLLED_BACK: "deployment 3: v2 misbehaves"}
    )
    decision = decide_promotion(rolled_back, CHAMPION, 0.99, 0.94, comparable=True)
    assert decision.promoted is False and decision.seat == "1"
    assert "was rolled back (deployment 3: v2 misbehaves)" in decision.reason
    assert "action: promote" in decision.reason


def test_an_empty_rollback_tag_does_not_count_as_a_rollback() -> None:
    contender = Contender.from_tags("2", {TAG_QUALITY: "passed", TAG_ROLLED_BACK: ""})
    assert contender.rolled_back is None
    assert decide_promotion(contender, CHAMPION, 0.95, 0.94, comparable=True).promoted


@pytest.mark.parametrize("accuracy", [math.nan, math.inf])
def test_a_challenger_accuracy_that_is_not_a_number_is_refused(accuracy: float) -> None:
    """NaN compares False with everything: unchecked it would read as "not worse" and win."""
    for champion, champion_accuracy in ((CHAMPION, 0.94), (None, None)):
        decision = decide_promotion(
            PASSING, champion, accuracy, champion_accuracy, comparable=champion is not None
        )
        assert decision.promoted is False
        assert "not a number to promote on" in decision.reason
        assert decision.seat == ("1" if champion is not None else "2")


def test_rules_apply_in_order_already_champion_before_rolled_back() -> None:
    both = Contender("1", quality="passed", rolled_back="deployment 2")
    decision = decide_promotion(both, CHAMPION, 0.9, 0.9, comparable=True)
    assert decision.reason == "version 1 is already the champion"
