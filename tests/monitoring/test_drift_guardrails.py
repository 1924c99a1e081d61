"""The retraining guardrails and the folding of drift reports, as pure functions of plain values."""

from __future__ import annotations

import pytest

from sensors.drift_cursor import DriftEvent, fold_drift_events, run_key_for
from sensors.drift_guardrails import GateAnswer, RetrainPolicy, retraining_verdict

HOUR = 3600.0
NOW = 1_800_000_000.0
POLICY = RetrainPolicy(cooldown_seconds=6 * HOUR, min_new_rows=500)
GO = GateAnswer(go=True, phase="clear", reason="readings within limits", reading="thermal=nominal")
HOT = GateAnswer(go=False, phase="hold", reason="hold: thermal serious", reading="thermal=serious")


def event(partition: str, share: float = 0.5, rows: int = 600, storage_id: int = 1) -> DriftEvent:
    return DriftEvent(
        partition=partition,
        storage_id=storage_id,
        drift_share=share,
        threshold=0.3,
        labelled_rows=rows,
        batch_path=f"/reports/{partition}/batch.parquet",
        report_path=f"/reports/{partition}/drift.html",
    )


def test_without_pending_drift_nothing_is_requested_and_the_reason_says_what_was_seen() -> None:
    verdict = retraining_verdict([], POLICY, NOW, None, GO, seen=" (seen: 2026-04-01: no drift)")
    assert verdict.action == "skip"
    assert verdict.reason == "no drift pending (seen: 2026-04-01: no drift)"
    quiet = retraining_verdict([event("2026-04-01", share=0.1)], POLICY, NOW, None, GO)
    assert quiet.action == "skip" and quiet.reason == "no drift pending (no new drift reports)"


def test_a_retraining_inside_the_cooldown_holds_and_says_how_long_is_left() -> None:
    verdict = retraining_verdict([event("2026-04-02")], POLICY, NOW, NOW - 1 * HOUR, GO)
    assert verdict.action == "skip" and verdict.reason.startswith("cooldown: last retraining")
    assert "300 min of 360 left" in verdict.reason and "2026-04-02" in verdict.reason
    after = retraining_verdict([event("2026-04-02")], POLICY, NOW, NOW - 6 * HOUR, GO)
    assert after.action == "request"


def test_too_few_labelled_rows_wait_counting_every_drifted_partition() -> None:
    few = [event("2026-04-02", rows=200), event("2026-04-03", rows=250)]
    verdict = retraining_verdict(few, POLICY, NOW, None, GO)
    assert verdict.action == "skip"
    assert verdict.reason == (
        "waiting for labelled rows: 450 of 500 needed from drifted partitions "
        "2026-04-02, 2026-04-03"
    )
    enough = [*few, event("2026-04-04", rows=50)]
    assert retraining_verdict(enough, POLICY, NOW, None, GO).action == "request"


def test_the_gate_is_asked_only_once_every_other_guardrail_passed() -> None:
    assert retraining_verdict([event("2026-04-02")], POLICY, NOW, None).action == "ask_gate"
    cooling = retraining_verdict([event("2026-04-02")], POLICY, NOW, NOW - HOUR)
    assert cooling.action == "skip", "no hardware reading while the cooldown holds anyway"


def test_a_hot_machine_defers_naming_the_gate_phase_the_reading_and_the_partitions() -> None:
    verdict = retraining_verdict([event("2026-04-10")], POLICY, NOW, None, HOT)
    assert verdict.action == "skip"
    assert verdict.reason == (
        "deferred by the hardware gate (hold): hold: thermal serious [thermal=serious]; "
        "drift pending in 2026-04-10"
    )


def test_a_request_carries_the_drifted_events_in_partition_order_and_the_gates_word() -> None:
    pending = [event("2026-04-03", storage_id=9), event("2026-04-02", storage_id=4)]
    verdict = retraining_verdict(pending, POLICY, NOW, None, GO)
    assert verdict.action == "request" and verdict.reason == "go: readings within limits"
    assert [e.partition for e in verdict.events] == ["2026-04-02", "2026-04-03"]
    assert verdict.partitions == "2026-04-02, 2026-04-03"


def test_a_later_report_replaces_or_clears_a_pending_partition() -> None:
    first = event("2026-04-02", share=0.4, storage_id=1)
    pending, notes = fold_drift_events({}, [first, event("2026-04-03", share=0.1, storage_id=2)])
    assert list(pending) == ["2026-04-02"]
    assert notes == [
        "2026-04-02: drift share 0.400 >= 0.300",
        "2026-04-03: no drift (share 0.100 < 0.300)",
    ]
    stronger = event("2026-04-02", share=0.7, storage_id=3)
    replaced, _ = fold_drift_events(pending, [stronger])
    assert replaced == {"2026-04-02": stronger}
    cleared, _ = fold_drift_events(replaced, [event("2026-04-02", share=0.2, storage_id=4)])
    assert cleared == {} and pending == {"2026-04-02": first}, "the input is not mutated"


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_the_same_drift_events_always_give_the_same_run_key(order: tuple[int, int]) -> None:
    events = [event("2026-04-02", storage_id=4), event("2026-04-03", storage_id=9)]
    key = run_key_for([events[i] for i in order])
    assert key == run_key_for(events) and key.startswith("drift-retrain-")
    assert run_key_for([event("2026-04-02", storage_id=5), events[1]]) != key
