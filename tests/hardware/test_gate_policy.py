"""The gate's hysteresis, driven through every transition by replayed readings."""

from __future__ import annotations

import random
from typing import Any

import pytest

from efficientai_assets.gate.policy import (
    PRIORITIES,
    GatePolicy,
    GateState,
    assess,
    backoff_seconds,
    evaluate,
    max_retries_bound,
    replay,
    retry_wait,
)
from resources.hardware.gate_settings import GateSettings
from resources.hardware.resource import HardwareResource
from resources.hardware.types import GpuReading, HardwareSnapshot, Pressure


def policy_of(**settings: Any) -> GatePolicy:
    """A policy from validated settings, the only way the project builds one."""
    return GatePolicy.from_settings(GateSettings(**settings))


POLICY = policy_of(bad_readings_to_hold=3, cooldown_seconds=120)


def reading(at: float, thermal: str = "nominal", **fields: Any) -> HardwareSnapshot:
    return HardwareSnapshot(taken_at=at, thermal_state=thermal, thermal_source="replay", **fields)  # type: ignore[arg-type]


def trace(*states: str, every: float = 30.0) -> list[HardwareSnapshot]:
    return [reading(i * every, s) for i, s in enumerate(states)]


def phases(results: list[Any]) -> list[tuple[str, str]]:
    return [(r.verdict, r.state.phase) for r in results]


def test_hold_is_entered_only_after_n_consecutive_bad_readings() -> None:
    results = replay(POLICY, trace("nominal", "serious", "serious", "serious"))
    assert phases(results) == [
        ("go", "clear"),
        ("hold", "suspect"),
        ("hold", "suspect"),
        ("hold", "hold"),
    ]
    assert "after 3 consecutive bad readings" in results[-1].reason
    assert results[-1].state.held_since == 90.0
    assert "bad reading 1 of 3" in results[1].reason


def test_an_isolated_spike_does_not_start_a_cool_down() -> None:
    results = replay(POLICY, trace("serious", "serious", "nominal", "serious", "nominal"))
    assert phases(results) == [
        ("hold", "suspect"), ("hold", "suspect"), ("go", "clear"), ("hold", "suspect"), ("go", "clear"),
    ]  # fmt: skip


def test_no_flapping_within_the_cool_down_and_release_after_it() -> None:
    # hold at t=60, good from t=90; cool-down 120 s -> release at t=210, not before
    results = replay(POLICY, trace("serious", "serious", "serious", *["nominal"] * 5))
    assert phases(results) == [
        ("hold", "suspect"), ("hold", "suspect"), ("hold", "hold"),
        ("hold", "hold"), ("hold", "hold"), ("hold", "hold"), ("hold", "hold"),
        ("go", "clear"),
    ]  # fmt: skip
    assert "cooling down: 90s of 120s" in results[6].reason
    assert "released after 120s" in results[7].reason


def test_a_bad_reading_during_cool_down_restarts_it() -> None:
    results = replay(
        POLICY,
        trace("serious", "serious", "serious", "nominal", "nominal", "serious", *["nominal"] * 5),
    )
    verdicts = [r.verdict for r in results]
    assert results[5].state.good_since is None and "cool-down restarts" in results[5].reason
    # the good run restarts at t=180 and needs 120 s: first go at t=300 (index 10)
    assert verdicts.index("go") == 10


def test_critical_holds_at_once_even_for_high_priority() -> None:
    for priority in PRIORITIES:
        result = evaluate(POLICY, GateState(), reading(0, "critical"), priority)
        assert (result.verdict, result.state.phase) == ("hold", "hold")
        assert "nothing heavy runs at critical" in result.reason


def test_high_priority_runs_at_fair_where_normal_priority_holds() -> None:
    strict = policy_of(bad_readings_to_hold=1, cooldown_seconds=60, hold_thermal_state="fair")
    assert evaluate(strict, GateState(), reading(0, "fair"), "normal").verdict == "hold"
    assert evaluate(strict, GateState(), reading(0, "fair"), "high").verdict == "go"
    assert evaluate(strict, GateState(), reading(0, "serious"), "high").verdict == "hold"


def test_high_priority_does_not_wait_out_the_cool_down_on_a_good_reading() -> None:
    held = replay(POLICY, trace("serious", "serious", "serious"))[-1].state
    normal = evaluate(POLICY, held, reading(120, "fair"), "normal")
    high = evaluate(POLICY, held, reading(120, "fair"), "high")
    assert normal.verdict == "hold"
    assert high.verdict == "go" and high.state.phase == "hold", (
        "the machine stays in hold for others"
    )
    assert "high priority" in high.reason


def test_unknown_is_allowed_by_default_and_says_so() -> None:
    result = evaluate(POLICY, GateState(), reading(0, "unknown"))
    assert result.verdict == "go" and result.level == "unknown"
    assert "thermal state unknown, allowed by policy (unknown_behaviour=allow)" in result.reason


def test_unknown_can_be_configured_to_hold() -> None:
    policy = policy_of(bad_readings_to_hold=2, unknown_behaviour="hold")
    results = replay(policy, trace("unknown", "unknown"))
    assert phases(results) == [("hold", "suspect"), ("hold", "hold")]
    assert "held by policy" in results[0].reason


def test_unknown_thermal_with_bad_pressure_is_bad_not_unknown() -> None:
    snap = reading(0, "unknown", psi_memory=Pressure(some_avg10=45.0, full_avg10=1.0))
    found = assess(POLICY, snap)
    assert found.level == "bad" and "memory PSI some 45.0% > 20%" in found.problems


@pytest.mark.parametrize(
    ("fields", "level", "words"),
    [
        ({"psi_cpu": Pressure(some_avg10=90.0)}, "bad", "CPU PSI some 90.0%"),
        (
            {"cgroup_memory_pressure": Pressure(some_avg10=1.0, full_avg10=9.0)},
            "bad",
            "memory PSI full 9.0%",
        ),
        ({"psi_memory": Pressure(some_avg10=19.0, full_avg10=4.0)}, "good", ""),
        ({"memory_pressure": "warning"}, "bad", "memory pressure warning"),
        ({"memory_pressure": "critical"}, "critical", "memory pressure critical"),
        ({"gpus": (GpuReading(0, "A100", 83.0, 87.0, 92.0),)}, "bad", "within 5C of slowdown 87C"),
        ({"gpus": (GpuReading(0, "A100", 70.0, 87.0, 92.0),)}, "good", ""),
        ({"gpus": (GpuReading(0, "A100", 93.0, 87.0, 92.0),)}, "critical", "shutdown"),
        ({"on_battery": True, "low_power_mode": True}, "good", ""),
    ],
)
def test_each_signal_is_judged_against_its_threshold(
    fields: dict[str, Any], level: str, words: str
) -> None:
    found = assess(POLICY, reading(0, "nominal", **fields))
    assert found.level == level
    assert words in "; ".join(found.problems)


def test_battery_and_low_power_hold_only_when_configured() -> None:
    policy = policy_of(hold_on_battery=True, hold_in_low_power_mode=True)
    found = assess(policy, reading(0, "nominal", on_battery=True, low_power_mode=True))
    assert found.level == "bad"
    assert found.problems == ("on battery power", "low-power mode on")


def test_state_json_round_trip_and_corrupt_state_starts_clear() -> None:
    state = replay(POLICY, trace("serious", "serious", "serious", "nominal"))[-1].state
    assert GateState.from_json(state.to_json()) == state
    assert GateState.from_json({"phase": "melting"}) == GateState()
    assert GateState.from_json("nonsense") == GateState()
    assert GateState.from_json({"phase": "hold", "consecutive_bad": "3"}) == GateState()
    assert GateState.from_json({"phase": "hold", "held_since": "yesterday"}) == GateState()


def test_policy_comes_from_the_resource_gate_settings() -> None:
    hw = HardwareResource(
        gate=GateSettings(bad_readings_to_hold=5, cooldown_seconds=9, unknown_behaviour="hold")
    )
    policy = GatePolicy.from_resource(hw)
    assert (policy.bad_readings_to_hold, policy.cooldown_seconds, policy.unknown_behaviour) == (
        5,
        9,
        "hold",
    )


def test_every_gate_setting_reaches_the_policy_with_its_default() -> None:
    settings = GateSettings()
    policy = GatePolicy.from_settings(settings)
    expected = settings.model_dump(exclude={"state_dir"})
    assert {f: getattr(policy, f) for f in expected} == expected
    assert policy.hold_thermal_state == "serious" and policy.max_wait_seconds == 7200


def test_gate_settings_refuse_out_of_range_values() -> None:
    for bad in (
        {"bad_readings_to_hold": 0},
        {"psi_memory_some_max": 101},
        {"retry_jitter": 1.0},
        {"retry_initial_seconds": 0},
        {"hold_thermal_state": "critical"},
    ):
        with pytest.raises(ValueError):
            GateSettings(**bad)


def test_gate_settings_nest_in_run_config_as_one_block() -> None:
    """Run config sets the gate as ``resources.hardware.config.gate``, validated there too."""
    import dagster as dg

    seen: list[GateSettings] = []

    @dg.asset
    def probe(hardware: HardwareResource) -> None:
        seen.append(hardware.gate)

    config = {"resources": {"hardware": {"config": {"gate": {"cooldown_seconds": 42}}}}}
    resources = {"hardware": HardwareResource.configure_at_launch()}
    assert dg.materialize([probe], resources=resources, run_config=config).success
    assert seen[0].cooldown_seconds == 42 and seen[0].bad_readings_to_hold == 3


def test_backoff_grows_is_capped_and_jittered_within_bounds() -> None:
    policy = policy_of(retry_initial_seconds=30, retry_max_seconds=600, retry_jitter=0.2)
    rng = random.Random(7)
    for deferrals, base in [(0, 30), (1, 60), (3, 240), (5, 600), (40, 600)]:
        waits = [backoff_seconds(policy, deferrals, rng) for _ in range(200)]
        assert min(waits) >= base * 0.8 and max(waits) <= base * 1.2
        assert max(waits) - min(waits) > base * 0.1, "jitter spreads re-checks"


def test_retry_bound_outlasts_the_maximum_wait() -> None:
    policy = policy_of(retry_initial_seconds=30, retry_jitter=0.2, max_wait_seconds=7200)
    assert max_retries_bound(policy) * 30 * 0.8 >= 7200


def test_a_held_step_waits_no_longer_than_its_deadline_and_then_fails() -> None:
    policy = policy_of(retry_initial_seconds=30, retry_jitter=0.0, max_wait_seconds=100)
    assert retry_wait(policy, held_seconds=0, deferrals=0) == 30
    assert retry_wait(policy, held_seconds=90, deferrals=3) == 10, "lands on the deadline"
    assert retry_wait(policy, held_seconds=100, deferrals=4) is None, "deadline reached: fail"


def test_a_held_step_never_rechecks_in_a_busy_loop() -> None:
    policy = policy_of(retry_initial_seconds=30, retry_jitter=0.0, max_wait_seconds=100)
    assert retry_wait(policy, held_seconds=99.9, deferrals=3) == 1.0
    quick = policy_of(retry_initial_seconds=0.02, retry_jitter=0.0, max_wait_seconds=100)
    assert retry_wait(quick, held_seconds=99.999, deferrals=0) == 0.02
