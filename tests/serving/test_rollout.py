"""The deployment move's pure decisions, replayed on plain values: which requests are refused,
who may take traffic, where a rollback goes, and what a move changes in the registry."""

from __future__ import annotations

import pytest

from efficientai_assets.defs.serving.rollout import (
    Candidate,
    MoveRequest,
    RolloutError,
    check_request,
    plan_move,
    require_champion,
    rollback_target,
    servable_challenger,
    version_roles,
)
from resources.bentoml.types import DeploymentRecord, ServedModel

MODEL = "test-digits-classifier"
PASSED = Candidate("2", quality="passed")


def record(
    deployment_id: int, champion: str, canary: str | None = None, mode: str = "single"
) -> DeploymentRecord:
    return DeploymentRecord(
        deployment_id=deployment_id,
        model_name=MODEL,
        action="deploy",
        mode=mode,
        champion=ServedModel(champion, f"bento:v{champion}"),
        canary=ServedModel(canary, f"bento:v{canary}") if canary else None,
        canary_share=0.1 if mode == "canary" else 0.0,
        requested_by="someone",
        reason="because",
        created_at="2026-11-30T00:00:00+00:00",
    )


# -- the request ---------------------------------------------------------------------------------


def test_a_plain_deploy_and_reasoned_moves_are_accepted() -> None:
    check_request(MoveRequest())
    check_request(MoveRequest(canary_share=0.1))
    check_request(MoveRequest(shadow=True))
    check_request(MoveRequest(action="promote", reason="canary ok"))
    check_request(MoveRequest(action="rollback", reason="5xx", rollback_to_version="3"))


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (MoveRequest(canary_share=0.1, shadow=True), "not both"),
        (MoveRequest(action="promote", reason="x", canary_share=0.1), "serves the champion alone"),
        (MoveRequest(action="rollback", reason="x", shadow=True), "serves the champion alone"),
        (MoveRequest(action="promote"), "promote needs a reason"),
        (MoveRequest(action="rollback", reason="   "), "rollback needs a reason"),
        (MoveRequest(rollback_to_version="1"), "only applies to action 'rollback'"),
    ],
)
def test_contradictory_requests_are_refused_with_what_to_change(
    request_: MoveRequest, message: str
) -> None:
    with pytest.raises(RolloutError, match=message):
        check_request(request_)


# -- who may take traffic ------------------------------------------------------------------------


def test_a_challenger_that_passed_its_quality_check_may_take_traffic() -> None:
    assert servable_challenger(MODEL, PASSED, "1") == PASSED
    assert servable_challenger(MODEL, PASSED, None) == PASSED


def test_no_challenger_the_champion_itself_or_a_failed_one_cannot_take_traffic() -> None:
    with pytest.raises(RolloutError, match="has no 'challenger' version"):
        servable_challenger(MODEL, None, "1")
    with pytest.raises(RolloutError, match=r"is the champion \(version 2\)"):
        servable_challenger(MODEL, PASSED, "2")
    for quality in ("failed", None):
        with pytest.raises(RolloutError, match=r"efficientai\.quality_check=.*cannot take traffic"):
            servable_challenger(MODEL, Candidate("3", quality=quality), "1")


def test_without_a_champion_there_is_nothing_to_serve() -> None:
    assert require_champion(MODEL, "4") == "4"
    with pytest.raises(RolloutError, match="no 'champion' version: materialize champion_model"):
        require_champion(MODEL, None)


# -- where a rollback goes -----------------------------------------------------------------------


def test_a_rollback_goes_to_the_newest_earlier_champion() -> None:
    history = ["1", "2", "2", "3"]
    verdicts = {"1": False, "2": False}
    assert rollback_target(MODEL, "3", "", history, verdicts) == "2"


def test_a_second_rollback_goes_further_back_never_forward() -> None:
    """v3 was rolled back to v2; rolling back again skips v3 (rolled back) and lands on v1."""
    history = ["1", "2", "3", "2"]
    verdicts = {"1": False, "3": True}
    assert rollback_target(MODEL, "2", "", history, verdicts) == "1"


def test_a_version_the_registry_no_longer_holds_is_skipped() -> None:
    assert rollback_target(MODEL, "3", "", ["1", "2", "3"], {"1": False}) == "1"


def test_an_operator_named_version_wins_over_the_history() -> None:
    assert rollback_target(MODEL, "3", "1", ["1", "2", "3"], {}) == "1"


def test_no_earlier_champion_or_the_champion_itself_is_refused() -> None:
    with pytest.raises(RolloutError, match=r"no previous champion .* served version 1"):
        rollback_target(MODEL, "1", "", ["1", "1"], {})
    with pytest.raises(RolloutError, match="no previous champion"):
        rollback_target(MODEL, "2", "", ["1", "2"], {"1": True})
    with pytest.raises(RolloutError, match="version 2 is already the champion"):
        rollback_target(MODEL, "2", "2", ["1", "2"], {"1": False})


# -- what a move changes -------------------------------------------------------------------------


def test_redeploying_the_champion_alone_moves_no_alias_and_says_why() -> None:
    plan = plan_move(MoveRequest(), "1", Candidate("1"), None, os_user="ops")
    assert (plan.mode, plan.canary_share, plan.canary_version) == ("single", 0.0, None)
    assert (plan.reason, plan.requested_by) == ("serve the champion", "ops")
    assert not plan.alias_moves and plan.mark_rolled_back is None and not plan.clear_rolled_back


def test_a_canary_keeps_its_share_and_a_shadow_takes_none() -> None:
    canary = plan_move(MoveRequest(canary_share=0.25), "1", Candidate("1"), "2", os_user="ops")
    assert (canary.mode, canary.canary_share, canary.canary_version) == ("canary", 0.25, "2")
    assert canary.reason == "serve the champion with the challenger as canary"
    shadow = plan_move(MoveRequest(shadow=True), "1", Candidate("1"), "2", os_user="ops")
    assert (shadow.mode, shadow.canary_share) == ("shadow", 0.0)
    assert shadow.reason == "serve the champion with the challenger as shadow"
    assert not canary.alias_moves and not shadow.alias_moves


def test_the_first_deployment_moves_the_alias() -> None:
    assert plan_move(MoveRequest(), None, Candidate("1"), None, os_user="ops").alias_moves


def test_a_promotion_moves_the_alias_and_trusts_a_rolled_back_version_again() -> None:
    request = MoveRequest(action="promote", reason="  canary ok ", requested_by=" alice ")
    plan = plan_move(request, "1", Candidate("2", "passed", rolled_back=True), None, os_user="")
    assert plan.alias_moves and plan.clear_rolled_back and plan.mark_rolled_back is None
    assert (plan.requested_by, plan.reason) == ("alice", "canary ok")
    assert plan.promotion_reason == "promote: canary ok"
    assert not plan_move(request, "1", PASSED, None, os_user="").clear_rolled_back


def test_a_rollback_marks_the_version_it_moves_away_from() -> None:
    request = MoveRequest(action="rollback", reason="v2 misbehaves", requested_by="oncall")
    plan = plan_move(request, "2", Candidate("1"), None, os_user="ops")
    assert plan.alias_moves and plan.mark_rolled_back == "2"
    assert plan.previous_champion_version == "2"
    assert plan.rolled_back_note(7) == "deployment 7 by oncall: v2 misbehaves"
    assert plan.promotion_reason == "rollback: v2 misbehaves"


def test_roles_name_what_each_version_serves_and_retire_what_left() -> None:
    canary = record(2, "1", "2", mode="canary")
    assert version_roles(canary, record(1, "1")) == {"1": "champion", "2": "canary"}
    assert version_roles(record(3, "1", "2", mode="shadow"), canary) == {
        "1": "champion",
        "2": "shadow",
    }
    assert version_roles(record(4, "2"), canary) == {"2": "champion", "1": "retired"}
    assert version_roles(record(1, "1"), None) == {"1": "champion"}
