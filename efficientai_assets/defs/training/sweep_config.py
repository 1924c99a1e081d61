"""Run config of a hyperparameter sweep: the base training config, and a grid or a seeded random
search over its fields. ``sweep_plan.expand_sweep`` turns it into configurations (or a config
error naming the field) before anything is read or trained."""

from typing import Any

import dagster as dg
from pydantic import Field

from efficientai_assets.defs.training.config import TrainingConfig
from efficientai_assets.defs.training.sweep_plan import RandomSpace, TrialSpec, expand_sweep


class RandomField(dg.Config):
    """Where a random search draws one field from: ``choices``, or [``low``, ``high``]."""

    choices: list[Any] = Field(default=[], description="Values to pick from (wins over a range).")
    low: float | None = None
    high: float | None = None
    log: bool = Field(default=False, description="Draw log-uniformly (learning rates).")


class SweepConfig(dg.Config):
    """A sweep over ``TrainingConfig``'s fields: ``grid`` (every combination) or ``random``
    (``samples`` draws with ``seed``), each applied over ``base``."""

    base: TrainingConfig = Field(
        default_factory=TrainingConfig,
        description="The training config every configuration starts from.",
    )
    grid: dict[str, list[Any]] = Field(
        default={}, description="Field → values; every combination is one configuration."
    )
    random: dict[str, RandomField] = Field(
        default={}, description="Field → choices or range, for a seeded random search."
    )
    samples: int = Field(default=0, ge=0, description="Configurations a random search draws.")
    seed: int = Field(default=0, description="Seed of the random search's draws.")
    max_configurations: int = Field(
        default=64, ge=1, le=1024, description="Refuse a sweep larger than this."
    )

    def trials(self) -> list[TrialSpec]:
        """The configurations, or ``SweepConfigError`` naming what to change."""
        space = {
            name: RandomSpace(tuple(spec.choices), spec.low, spec.high, spec.log)
            for name, spec in self.random.items()
        }
        return expand_sweep(
            self.base.model_dump(),
            self.grid,
            space,
            self.samples,
            self.seed,
            self.max_configurations,
        )


def sweep_run_config(sweep: dict[str, Any]) -> dict[str, Any]:
    """The run config of the ``training_sweep`` job for ``sweep`` (``SweepConfig``'s fields): the
    sweep is the config of ``sweep_trials``'s planning step."""
    return {"ops": {"sweep_trials": {"ops": {"plan_sweep": {"config": sweep}}}}}
