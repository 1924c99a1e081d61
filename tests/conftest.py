"""Shared fixtures: a temporary EFFICIENTAI_HOME, its resources, and a trained pipeline in it.

Everything is real: an MLflow SQLite store, a git + DVC registry with a local remote, a Dagster
instance, MLX training. ``trained_pipeline`` materializes data → candidate → champion once per test
session; tests that need a fresh state build their own home with ``make_home``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resources.defaults import build_resources
from resources.hardware.gate_settings import GateSettings
from resources.hardware.resource import HardwareResource
from resources.home import EfficientAIHome

# Keep MLflow from retrying a dead server for minutes, and never deserialise pickles.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

# Small but real: enough epochs to pass the quality floor on the sample data.
FAST_TRAINING: dict[str, Any] = {"epochs": 8, "hidden_units": [64], "batch_size": 64}


@dataclass
class PipelineHome:
    home: EfficientAIHome
    resources: dict[str, Any]
    instance: dg.DagsterInstance

    def materialize(
        self,
        assets: list[Any],
        run_config: dict[str, Any] | None = None,
        raise_on_error: bool = True,
    ) -> dg.ExecuteInJobResult:
        return dg.materialize(
            assets,
            resources=self.resources,
            instance=self.instance,
            run_config=run_config or {},
            raise_on_error=raise_on_error,
        )


HomeFactory = Callable[[str], PipelineHome]


def resources_for_tests(namespace: str, home: EfficientAIHome) -> dict[str, Any]:
    """The project's resources under ``home``, with a hardware gate that still reads this machine
    but does not hold on CPU or memory pressure: a busy test machine must not defer the steps
    under test. The gate itself is tested with replayed readings (tests/test_gate_*.py)."""
    return {
        **build_resources(namespace, home),
        "hardware": HardwareResource(
            gate=GateSettings(
                psi_cpu_some_max=100.0, psi_memory_some_max=100.0, psi_memory_full_max=100.0
            ),
        ),
    }


def make_home(root: Path) -> EfficientAIHome:
    home = EfficientAIHome(root.resolve())
    home.ensure_layout()
    return home


@pytest.fixture(autouse=True, scope="module")
def environment_restored_after_each_module() -> Iterator[None]:
    """Whatever a test module sets in the environment (a stack's URLs, a Ray address) is gone
    before the next module starts: one module's services must not become another's defaults."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def home_factory(tmp_path: Path) -> Iterator[HomeFactory]:
    """Fresh, isolated homes (each with its own Dagster instance) for tests that change state."""
    stack: list[Any] = []

    def factory(name: str = "home") -> PipelineHome:
        home = make_home(tmp_path / name)
        context = dg.instance_for_test(temp_dir=str(home.dagster_home))
        instance = context.__enter__()
        stack.append(context)
        return PipelineHome(home, resources_for_tests("test", home), instance)

    yield factory
    for context in reversed(stack):
        context.__exit__(None, None, None)


def training_run_config(**overrides: Any) -> dict[str, Any]:
    return {"ops": {"candidate_model": {"config": {**FAST_TRAINING, **overrides}}}}


@contextlib.contextmanager
def trained_home(root: Path) -> Iterator[PipelineHome]:
    """A home under ``root`` in which data, splits, candidate and champion were materialized."""
    from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
    from efficientai_assets.defs.training.assets import candidate_model, champion_model

    home = make_home(root)
    with dg.instance_for_test(temp_dir=str(home.dagster_home)) as instance:
        pipeline = PipelineHome(home, resources_for_tests("test", home), instance)
        pipeline.materialize(
            [raw_dataset, dataset_splits, candidate_model, champion_model],
            run_config=training_run_config(),
        )
        yield pipeline


@pytest.fixture(scope="session")
def trained_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineHome]:
    """One trained home shared by the tests that only read it: one registered version, the
    champion. A test that trains or moves more builds its own with ``trained_home``."""
    with trained_home(tmp_path_factory.mktemp("trained") / "home") as pipeline:
        yield pipeline


def home_env(home: EfficientAIHome, **extra: str) -> dict[str, str]:
    """The environment ``make`` gives its commands, pointed at ``home`` (for child processes
    that run the project's commands the way a user does)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("EFFICIENTAI_", "DAGSTER_HOME", "BENTOML_HOME"))
    }
    env.update(
        EFFICIENTAI_HOME=str(home.root),
        DAGSTER_HOME=str(home.dagster_home),
        BENTOML_HOME=str(home.bentoml_home),
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_ALLOW_PICKLE_DESERIALIZATION="false",
        DAGSTER_DISABLE_TELEMETRY="1",
        DVC_NO_ANALYTICS="1",
        VIRTUAL_ENV=str(Path(sys.executable).parent.parent),
        **extra,
    )
    return env


@contextlib.contextmanager
def throwaway_postgres_databases(prefix: str, *roles: str) -> Iterator[dict[str, str]]:
    """Empty databases on the machine's PostgreSQL (``role`` → URL), dropped afterwards; the test
    is skipped, with the reason, where no server answers. Made by the stack's own helpers."""
    import uuid

    from resources.stack import backing
    from resources.stack.processes import StackError
    from resources.stack.settings import postgres_server_url

    server = postgres_server_url()
    suffix = uuid.uuid4().hex[:8]
    names = {role: f"{prefix}_{role}_{suffix}" for role in roles}
    try:
        backing.create_databases(server, names)
    except StackError as error:
        pytest.skip(str(error))
    try:
        yield {role: backing.database_url(server, name) for role, name in names.items()}
    finally:
        backing.drop_databases(server, names)


def dvc_cloud_status(registry: Path) -> dict[str, Any]:
    """``dvc status --cloud`` as the DVC command line reports it: empty when all is pushed."""
    completed = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--cloud", "--json"],
        cwd=registry,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(completed.stdout or "{}"))


def bentoml_list(bentoml_home: Path) -> dict[str, dict[str, str]]:
    """``bentoml.list()`` (tag → labels) in a process whose BENTOML_HOME is ``bentoml_home``:
    BentoML reads it once, at first use, so the test process never imports it against a home."""
    script = (
        "import json, bentoml\n"
        "print(json.dumps({str(b.tag): dict(b.info.labels) for b in bentoml.list()}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("EFFICIENTAI_PROJECT", "BENTOML_HOME")}
    completed = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))
