"""Hyperparameter sweeps from a script: ``client.run_sweep(grid=...)`` launches the project's own
``training_sweep`` job (one step per configuration, memoized, gated; a parent MLflow run with a
child run per configuration; the best registered as ``challenger``, checked and contested for
``champion``) on the client's stores and the home's Dagster instance, so the run shows in the UI
like any other. There is one way to sweep: this is that job, not a second implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from efficientai_assets.client.core import ClientCore
from efficientai_assets.client.errors import InvalidArgumentError, MLOpsClientError

if TYPE_CHECKING:
    from efficientai_assets.defs.training.sweep_choice import TrialOutcome


@dataclass(frozen=True)
class SweepReport:
    """What a sweep came to: its Dagster run, the parent MLflow run, every configuration's
    outcome, the best, and who holds ``challenger`` and ``champion`` afterwards."""

    dagster_run_id: str
    parent_run_id: str
    outcomes: tuple[TrialOutcome, ...]
    best: TrialOutcome | None
    reason: str
    challenger_version: str | None
    champion_version: str | None


class SweepsMixin(ClientCore):
    """``run_sweep``: the ``training_sweep`` job, run in this process."""

    def run_sweep(
        self,
        grid: Mapping[str, Sequence[Any]] | None = None,
        *,
        random: Mapping[str, Mapping[str, Any]] | None = None,
        samples: int = 0,
        seed: int = 0,
        base: Mapping[str, Any] | None = None,
        max_configurations: int = 64,
    ) -> SweepReport:
        """Sweep ``grid`` (field → values) or ``random`` (field → ``{"choices": [...]}`` or
        ``{"low":, "high":, "log":}``, ``samples`` draws from ``seed``) over the training config,
        each over ``base``. The data is versioned and split first when the home has no splits.
        A bad sweep raises ``InvalidArgumentError`` before anything is trained."""
        import dagster as dg

        from efficientai_assets.defs.training.sweep_config import SweepConfig, sweep_run_config
        from efficientai_assets.defs.training.sweep_plan import SweepConfigError

        sweep: dict[str, Any] = {
            "base": dict(base or {}),
            "grid": {k: list(v) for k, v in (grid or {}).items()},
            "random": {k: dict(v) for k, v in (random or {}).items()},
            "samples": samples,
            "seed": seed,
            "max_configurations": max_configurations,
        }
        try:
            SweepConfig(**sweep).trials()  # the job refuses it too; here before any run starts
        except SweepConfigError as error:
            raise InvalidArgumentError(f"sweep config error: {error}") from None
        except ValueError as error:
            raise InvalidArgumentError(f"sweep config error: {error}") from None
        with dg.DagsterInstance.from_config(str(self.home.dagster_home)) as instance:
            definitions = self._sweep_definitions()
            self._ensure_splits(definitions, instance)
            result = definitions.resolve_job_def("training_sweep").execute_in_process(
                run_config=sweep_run_config(sweep), instance=instance, raise_on_error=False
            )
            return self._report(result)

    def _sweep_definitions(self) -> Any:
        import dagster as dg

        from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
        from efficientai_assets.defs.jobs import sweep_job
        from efficientai_assets.defs.training.assets import candidate_model, champion_model
        from efficientai_assets.defs.training.sweep_assets import sweep_challenger, sweep_trials
        from resources.defaults import build_resources

        resources = {
            **build_resources(self.mlflow_client.project_namespace, self.home),
            "mlflow": self.mlflow_client,
            "dvc": self.dvc_client,
            "hardware": self.silicon_monitor,
        }
        assets = [raw_dataset, dataset_splits, candidate_model, champion_model]
        return dg.Definitions(
            assets=[*assets, sweep_trials, sweep_challenger], jobs=[sweep_job], resources=resources
        )

    def _ensure_splits(self, definitions: Any, instance: Any) -> None:
        """Version and split the configured data when the registry has no splits yet."""
        import dagster as dg

        from efficientai_assets.names import SPLITS_DIR

        if self.dvc_client.current_version(self.dvc_client.project_path(SPLITS_DIR)) is not None:
            return
        job = dg.define_asset_job("prepare_sweep_data", selection=["raw_dataset", "dataset_splits"])
        prepared = dg.Definitions.merge(definitions, dg.Definitions(jobs=[job]))
        outcome = prepared.resolve_job_def(job.name).execute_in_process(
            instance=instance, raise_on_error=False
        )
        if not outcome.success:
            raise MLOpsClientError(
                f"could not prepare the data for the sweep (Dagster run {outcome.run_id}): "
                "materialize raw_dataset and dataset_splits and read that run's log"
            )

    def _report(self, result: Any) -> SweepReport:
        from efficientai_assets.names import CHALLENGER_ALIAS, CHAMPION_ALIAS, MODEL_NAME

        failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        sweep = _sweep_result(result)
        if sweep is None:
            messages = "; ".join(
                f"{e.step_key}: {getattr(e.event_specific_data.error, 'message', '').strip()}"
                for e in failures
            )
            raise MLOpsClientError(
                f"the sweep failed (Dagster run {result.run_id}): {messages or 'see its log'}"
            )
        name = self.mlflow_client.model_name(MODEL_NAME)
        challenger = self.mlflow_client.version_for_alias(name, CHALLENGER_ALIAS)
        champion = self.mlflow_client.version_for_alias(name, CHAMPION_ALIAS)
        return SweepReport(
            dagster_run_id=result.run_id,
            parent_run_id=sweep.parent_run_id,
            outcomes=sweep.outcomes,
            best=sweep.choice.best,
            reason=sweep.choice.reason,
            challenger_version=str(challenger.version) if challenger else None,
            champion_version=str(champion.version) if champion else None,
        )


def _sweep_result(result: Any) -> Any:
    """The ``sweep_trials`` value of a finished run, or None when that step did not succeed."""
    from dagster import DagsterInvariantViolationError

    try:
        return result.output_for_node("sweep_trials")
    except (DagsterInvariantViolationError, KeyError, ValueError):
        return None
