"""The sweep's pure decisions, replayed on plain values: expansion of a grid or a seeded random
search (refusing bad input with the field named) and the choice of the best configuration."""

from __future__ import annotations

import math
from typing import Any

import pytest

from efficientai_assets.defs.training.sweep_choice import (
    FAILED,
    REUSED,
    TRAINED,
    TrialOutcome,
    choose_best,
    results_markdown,
)
from efficientai_assets.defs.training.sweep_plan import (
    RandomSpace,
    SweepConfigError,
    TrialSpec,
    expand_sweep,
)

BASE = {"epochs": 3, "batch_size": 64}


def expand(
    grid: dict[str, list[Any]] | None = None,
    space: dict[str, RandomSpace] | None = None,
    samples: int = 0,
    seed: int = 0,
    limit: int = 64,
) -> list[TrialSpec]:
    return expand_sweep(BASE, grid or {}, space or {}, samples, seed, limit)


def test_grid_gives_every_combination_once_in_order_over_the_base() -> None:
    trials = expand({"learning_rate": [0.01, 0.001], "hidden_units": [[16], [32], [16]]})
    assert [t.key for t in trials] == [f"config_{i:03d}" for i in range(4)]
    assert [(t.swept["learning_rate"], t.swept["hidden_units"]) for t in trials] == [
        (0.01, [16]), (0.01, [32]), (0.001, [16]), (0.001, [32]),
    ]  # fmt: skip
    assert all(t.config["epochs"] == 3 and t.config["batch_size"] == 64 for t in trials)
    assert trials[0].label == "learning_rate=0.01 hidden_units=16"


def test_random_search_is_reproducible_from_its_seed_and_stays_in_range() -> None:
    space = {
        "learning_rate": RandomSpace(low=1e-4, high=1e-1, log=True),
        "epochs": RandomSpace(low=2, high=9),
        "hidden_units": RandomSpace(choices=([16], [64])),
    }
    first = expand(space=space, samples=6, seed=7)
    again = expand(space=space, samples=6, seed=7)
    other = expand(space=space, samples=6, seed=8)
    assert [t.config for t in first] == [t.config for t in again]
    assert [t.config for t in first] != [t.config for t in other]
    for trial in first:
        assert 1e-4 <= trial.config["learning_rate"] <= 1e-1
        assert isinstance(trial.config["epochs"], int) and 2 <= trial.config["epochs"] <= 9
        assert trial.config["hidden_units"] in ([16], [64])


@pytest.mark.parametrize(
    ("grid", "space", "samples", "named"),
    [
        ({}, {}, 0, "the sweep is empty"),
        ({"learning_rate": []}, {}, 0, "no values for learning_rate"),
        ({"learnin_rate": [0.1]}, {}, 0, "'learnin_rate', which is not a field"),
        ({"learning_rate": [0.01, 5.0]}, {}, 0, "learning_rate=5.0"),
        ({"epochs": [0]}, {}, 0, "epochs=0"),
        ({"force_retrain": [True]}, {}, 0, "'force_retrain' says how to run"),
        ({"epochs": [2]}, {"seed": RandomSpace(low=0, high=3)}, 3, "both a grid and a random"),
        ({}, {"learning_rate": RandomSpace(low=0.1, high=0.01)}, 2, "random.learning_rate"),
        ({}, {"learning_rate": RandomSpace(low=0.0, high=0.1, log=True)}, 2, "low must be > 0"),
        ({}, {"learning_rate": RandomSpace(low=0.001, high=0.1)}, 0, "samples ≥ 1"),
    ],
)
def test_bad_sweeps_are_refused_naming_the_problem(
    grid: dict[str, list[Any]], space: dict[str, RandomSpace], samples: int, named: str
) -> None:
    with pytest.raises(SweepConfigError) as raised:
        expand(grid, space, samples)
    assert named in str(raised.value)


def test_a_sweep_larger_than_its_limit_is_refused() -> None:
    with pytest.raises(SweepConfigError, match="max_configurations=3"):
        expand({"seed": [0, 1, 2, 3]}, limit=3)


def outcome(key: str, accuracy: float, loss: float, status: str = TRAINED) -> TrialOutcome:
    return TrialOutcome(
        key=key, label=key, swept={}, status=status, version=key[-1] if status != FAILED else "",
        val_accuracy=accuracy, val_loss=loss,
    )  # fmt: skip


def test_best_is_the_highest_accuracy_and_a_tie_goes_to_the_lower_loss() -> None:
    outcomes = [
        outcome("c1", 0.95, 0.20),
        outcome("c2", 0.97, 0.30),
        outcome("c3", 0.97, 0.10, REUSED),
        outcome("c4", 0.90, 0.05),
    ]
    choice = choose_best(outcomes)
    assert choice.best is not None and choice.best.key == "c3"
    assert "tied with 1" in choice.reason
    table = results_markdown(outcomes, choice.best)
    assert table.count("\n") == 5 and "| **best** | `c3`" in table


def test_failed_and_non_finite_configurations_never_win() -> None:
    outcomes = [
        outcome("c1", math.nan, 0.1),
        outcome("c2", 0.99, math.inf),
        TrialOutcome(key="c3", label="c3", swept={}, status=FAILED, error="killed"),
        outcome("c4", 0.50, 1.0),
    ]
    choice = choose_best(outcomes)
    assert choice.best is not None and choice.best.key == "c4"
    assert "1 failed: c3" in choice.reason
    assert "failed: killed" in results_markdown(outcomes, choice.best)


def test_no_usable_configuration_gives_no_best() -> None:
    failed = [TrialOutcome(key=f"c{i}", label="", swept={}, status=FAILED) for i in range(2)]
    choice = choose_best(failed)
    assert choice.best is None and "none of the 2 configurations" in choice.reason
