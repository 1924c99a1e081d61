"""The stack's configuration without starting it (the quick tier: no ``stack`` marker): its
credentials, names, generated configs, executor choice and worker command."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from resources.home import EfficientAIHome
from resources.stack import backing, warmup
from resources.stack.configs import DAGSTER_POSTGRES_URL_ENV, write_dagster_yaml
from resources.stack.executor import executor_from_environment
from resources.stack.processes import StackError, port_open
from resources.stack.services import Stack, worker_command
from resources.stack.settings import (
    ADVERTISE_ENV,
    BIND_ENV,
    BROKER_ENV,
    MLFLOW_ADMIN_PASSWORD_ENV,
    S3_SECRET_ENV,
    StackPaths,
    StackState,
    ensure_credentials,
    home_prefix,
    listen_addresses,
    load_credentials,
    postgres_server_url,
)

REPO = Path(__file__).resolve().parents[2]


def test_generated_credentials_are_owner_only_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MLFLOW_ADMIN_PASSWORD_ENV, raising=False)
    monkeypatch.setenv(S3_SECRET_ENV, "the-teams-own-secret")
    paths = StackPaths(EfficientAIHome(tmp_path / "home"))
    generated = ensure_credentials(paths)
    assert stat.S_IMODE(paths.credentials_file.stat().st_mode) == 0o600
    assert len(generated[MLFLOW_ADMIN_PASSWORD_ENV]) >= 12
    assert generated[S3_SECRET_ENV] == "the-teams-own-secret"
    assert "the-teams-own-secret" not in paths.credentials_file.read_text()
    assert ensure_credentials(paths) == generated  # generated once, then reused
    monkeypatch.delenv(S3_SECRET_ENV)
    assert load_credentials(paths)[S3_SECRET_ENV] == ""  # nothing generated for it yet
    assert ensure_credentials(paths)[S3_SECRET_ENV] not in ("", "the-teams-own-secret")


def test_a_short_admin_password_is_refused_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MLFLOW_ADMIN_PASSWORD_ENV, "short")
    with pytest.raises(StackError, match="at least 12 characters"):
        ensure_credentials(StackPaths(EfficientAIHome(tmp_path / "home")))


def test_servers_listen_on_loopback_unless_a_team_configures_an_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BIND_ENV, raising=False)
    monkeypatch.delenv(ADVERTISE_ENV, raising=False)
    assert listen_addresses() == ("127.0.0.1", "127.0.0.1")
    monkeypatch.setenv(BIND_ENV, "0.0.0.0")
    # every interface: the URLs handed to other machines name this host, not 0.0.0.0
    assert listen_addresses() == ("0.0.0.0", socket.gethostname())
    monkeypatch.setenv(ADVERTISE_ENV, "stack.example.internal")
    bind, advertise = listen_addresses()
    paths = StackPaths(EfficientAIHome(tmp_path / "home"))
    StackState("p", {"mlflow": 5001, "objectstore": 5002, "webserver": 5003}, {}, "p", bind,
               advertise).save(paths)  # fmt: skip
    stack = Stack(paths, StackState.load(paths) or pytest.fail("state not saved"), REPO)
    assert stack.tracking_uri == "http://stack.example.internal:5001"
    assert stack.s3_endpoint == "http://stack.example.internal:5002"
    # a state written before the addresses were configurable still reads as loopback
    old = {"prefix": "p", "ports": {"mlflow": 1}, "databases": {}, "vhost": "p"}
    paths.state_file.write_text(json.dumps(old))
    loaded = StackState.load(paths)
    assert loaded is not None and (loaded.bind, loaded.advertise) == ("127.0.0.1", "127.0.0.1")


def test_two_homes_get_distinct_database_and_broker_names(tmp_path: Path) -> None:
    first = home_prefix(EfficientAIHome(tmp_path / "a"))
    second = home_prefix(EfficientAIHome(tmp_path / "b"))
    assert first != second
    assert set(backing.database_names(first).values()).isdisjoint(
        backing.database_names(second).values()
    )


def test_the_executor_runs_in_process_unless_a_broker_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(BROKER_ENV, raising=False)
    from resources.in_process_executor import sleeping_in_process_executor

    # Dagster's in-process executor (same name and config), with a pool wait that sleeps
    assert executor_from_environment() is sleeping_in_process_executor
    assert sleeping_in_process_executor.name == dg.in_process_executor.name == "in_process"
    monkeypatch.setenv(BROKER_ENV, "pyamqp://guest:guest@127.0.0.1:5672/x")
    executor = executor_from_environment()
    assert executor.name == "celery"
    assert "guest:guest" not in str(executor.config_schema)  # read from the environment
    from dagster_celery import core_execution_loop

    # the run loop notices a finished step within a tenth of a second, not a second
    assert core_execution_loop.TICK_SECONDS == 0.1


def test_a_worker_listens_on_every_queue_given() -> None:
    command = worker_command("w", ("dagster", "heavy"))
    queues = command[command.index("-Q") + 1]
    assert queues == "dagster,heavy" and command.count("-Q") == 1


def test_a_worker_warm_up_reports_a_module_it_cannot_import_and_goes_on() -> None:
    results = warmup.preload(["json", "efficientai_no_such_module", "csv"])
    assert [r.module for r in results] == ["json", "efficientai_no_such_module", "csv"]
    assert results[0].error is None and results[2].error is None
    assert results[1].error is not None and "efficientai_no_such_module" in results[1].error


def test_the_worker_preload_list_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(warmup.PRELOAD_ENV, raising=False)
    assert warmup.preload_modules()[0] == "efficientai_assets.definitions"
    monkeypatch.setenv(warmup.PRELOAD_ENV, " pandas, mlflow ,")
    assert warmup.preload_modules() == ("pandas", "mlflow")
    monkeypatch.setenv(warmup.PRELOAD_ENV, "")
    assert warmup.preload_modules() == ()


def test_every_default_preload_module_imports_here() -> None:
    """The default list names real modules of this environment (a rename would otherwise only
    show as a warning in a worker's log)."""
    import importlib.util

    missing = [m for m in warmup.DEFAULT_PRELOAD if importlib.util.find_spec(m) is None]
    assert missing == []


def test_joining_without_the_stack_variables_names_the_missing_ones(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EFFICIENTAI", "AWS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "resources.stack", "worker", "gpu-box", "-q", "heavy"],
        env={**env, "EFFICIENTAI_HOME": str(tmp_path / "home")},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert BROKER_ENV in done.stderr and "AWS_ACCESS_KEY_ID" in done.stderr


def test_the_stack_instance_config_loads_on_postgres_with_run_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not port_open(5432):
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    names = backing.database_names(home_prefix(EfficientAIHome(tmp_path)))
    only = {"dagster": names["dagster"]}
    backing.create_databases(postgres_server_url(), only)
    try:
        write_dagster_yaml(tmp_path / "dagster", heavy_slots=3, max_runs=2, max_runtime_seconds=60)
        url = backing.database_url(postgres_server_url(), names["dagster"])
        monkeypatch.setenv(DAGSTER_POSTGRES_URL_ENV, url)
        with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            # a queued run starts within a second, not Dagster's default five
            assert instance.run_coordinator.dequeue_interval_seconds == 1  # type: ignore[attr-defined]
            queue = instance.get_concurrency_config().run_queue_config
            assert queue is not None and queue.max_concurrent_runs == 2
            assert instance.get_concurrency_config().pool_config.default_pool_limit == 3
    finally:
        backing.drop_databases(postgres_server_url(), only)
