"""A sweep's configurations from its run config, as a pure expansion: a grid (field → values, every
combination) or a seeded random search (field → choices or a range, ``samples`` draws), each
applied over a base ``TrainingConfig`` and checked by ``TrainingConfig``'s own validation.

Pure (plain values in, configurations or a ``SweepConfigError`` out) so that a bad sweep is refused
before anything is read or trained, and so the expansion is replay-tested without Dagster running.
The fields are read from ``TrainingConfig`` itself: a field added to it can be swept at once.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from efficientai_assets.defs.training.config import TrainingConfig

# Fields that say how to run a sweep's trainings, not what to train: sweeping them makes no model.
NOT_SWEPT = ("force_retrain",)


class SweepConfigError(ValueError):
    """A sweep that cannot run as configured; the message names the field and what to change."""


@dataclass(frozen=True)
class RandomSpace:
    """Where one field is drawn from: one of ``choices``, or a number in [``low``, ``high``]
    (log-uniform when ``log``; an integer field draws integers)."""

    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False


@dataclass(frozen=True)
class TrialSpec:
    """One configuration of the sweep: its step key, the swept values and the full config."""

    key: str
    swept: Mapping[str, Any]
    config: Mapping[str, Any]

    @property
    def label(self) -> str:
        """A short name for the child run and the results table (the swept values)."""
        return " ".join(f"{name}={_short(value)}" for name, value in self.swept.items())


def expand_sweep(
    base: Mapping[str, Any],
    grid: Mapping[str, Sequence[Any]],
    space: Mapping[str, RandomSpace],
    samples: int,
    seed: int,
    max_configurations: int,
) -> list[TrialSpec]:
    """Every configuration of the sweep, in a stable order, duplicates removed; or a
    ``SweepConfigError`` naming the problem (nothing is trained for a sweep that raises here)."""
    if grid and space:
        raise SweepConfigError(
            "the sweep has both a grid and a random search: give one of them (grid: field → "
            "values; or random: field → choices/low+high, with samples and seed)"
        )
    if not grid and not space:
        raise SweepConfigError(
            "the sweep is empty: give a grid (field → list of values, e.g. grid: {learning_rate: "
            "[0.001, 0.01]}) or a random search (random: {learning_rate: {low: 0.0001, high: 0.1, "
            "log: true}}, samples: 4, seed: 0)"
        )
    for name in [*grid, *space]:
        _check_field(name)
    if grid:
        empty = [name for name, values in grid.items() if len(values) == 0]
        if empty:
            raise SweepConfigError(
                f"the grid gives no values for {', '.join(empty)}: list at least one value per "
                "field, or leave the field out of the grid"
            )
        combinations = [
            dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())
        ]
    else:
        if samples < 1:
            raise SweepConfigError("a random search needs samples ≥ 1 (how many configurations)")
        rng = random.Random(seed)
        combinations = [
            {name: _draw(name, space[name], rng) for name in sorted(space)} for _ in range(samples)
        ]
    trials: list[TrialSpec] = []
    seen: set[str] = set()
    for swept in combinations:
        config = _validated({**base, **swept}, swept)
        identity = repr(sorted(config.items()))
        if identity in seen:
            continue
        seen.add(identity)
        trials.append(TrialSpec(key=f"config_{len(trials):03d}", swept=swept, config=config))
    if len(trials) > max_configurations:
        raise SweepConfigError(
            f"the sweep has {len(trials)} configurations, more than max_configurations="
            f"{max_configurations}: narrow the grid or raise max_configurations"
        )
    return trials


def _check_field(name: str) -> None:
    fields = TrainingConfig.model_fields
    if name not in fields:
        raise SweepConfigError(
            f"the sweep names {name!r}, which is not a field of the training config; sweepable "
            f"fields: {', '.join(f for f in fields if f not in NOT_SWEPT)}"
        )
    if name in NOT_SWEPT:
        raise SweepConfigError(
            f"{name!r} says how to run a training, not what to train: set it in the sweep's base "
            "config instead of sweeping it"
        )


def _validated(values: Mapping[str, Any], swept: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration as ``TrainingConfig`` accepts it (its defaults filled in), or an error
    naming the offending field and value."""
    try:
        return TrainingConfig(**values).model_dump()
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            field = ".".join(str(part) for part in detail.get("loc", ())) or "config"
            value = swept.get(field.split(".")[0], values.get(field.split(".")[0]))
            problems.append(f"{field}={value!r}: {detail.get('msg', 'invalid')}")
        raise SweepConfigError(
            f"a configuration of the sweep is not a valid training config ({'; '.join(problems)}); "
            "change that value in the sweep's grid, random space or base"
        ) from None


def _draw(name: str, space: RandomSpace, rng: random.Random) -> Any:
    if space.choices:
        return space.choices[rng.randrange(len(space.choices))]
    if space.low is None or space.high is None or not space.low <= space.high:
        raise SweepConfigError(
            f"random.{name} needs choices, or low ≤ high (got low={space.low}, high={space.high})"
        )
    if space.log and space.low <= 0:
        raise SweepConfigError(f"random.{name} is log-uniform: low must be > 0, not {space.low}")
    integer = TrainingConfig.model_fields[name].annotation is int
    if space.log:
        value = math.exp(rng.uniform(math.log(space.low), math.log(space.high)))
    else:
        value = rng.uniform(space.low, space.high)
    if integer:
        return min(max(round(value), math.ceil(space.low)), math.floor(space.high))
    return float(f"{value:.6g}")  # a readable number in params, tables and run names


def _short(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "x".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)
