"""Bringing a home's stack up and down, adding workers, and reporting what runs.

``up`` is idempotent: it reuses the ports and names of ``state.json``, creates what is missing
(databases, the broker's virtual host, credentials, configs) and starts what is not running.
``down`` stops every process the stack started and, unless asked to keep them, drops its
databases and virtual host and deletes ``$EFFICIENTAI_HOME/stack/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from resources.home import EfficientAIHome
from resources.stack import backing, processes
from resources.stack.configs import write_dagster_yaml, write_mlflow_auth_ini
from resources.stack.processes import Managed, StackError
from resources.stack.services import SERVICES, Stack, worker_command
from resources.stack.settings import (
    ADMIN_USER,
    DEFAULT_QUEUE,
    HEAVY_QUEUE,
    HEAVY_SLOTS_ENV,
    MAX_RUNS_ENV,
    MLFLOW_ADMIN_PASSWORD_ENV,
    MLFLOW_PASSWORD_ENV,
    PIPELINE_USER,
    StackPaths,
    StackState,
    ensure_credentials,
    home_prefix,
    listen_addresses,
    load_credentials,
    postgres_server_url,
)

_MAX_RUNTIME_SECONDS = 4 * 3600


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    queues: tuple[str, ...]


DEFAULT_WORKERS = (
    WorkerSpec("worker-light", (DEFAULT_QUEUE,)),
    WorkerSpec("worker-heavy", (HEAVY_QUEUE,)),
)


def _new_state(home: EfficientAIHome) -> StackState:
    prefix = home_prefix(home)
    ports = {name: processes.free_port() for name in ("objectstore", "mlflow", "webserver")}
    bind, advertise = listen_addresses()
    return StackState(
        prefix, ports, backing.database_names(prefix), prefix, bind=bind, advertise=advertise
    )


def up(
    home: EfficientAIHome, workspace: Path, workers: tuple[WorkerSpec, ...] = DEFAULT_WORKERS
) -> Stack:
    """Create what is missing and start what is not running; wait until every piece answers."""
    if not workspace.is_file():
        raise StackError(f"no workspace file at {workspace}: run from the project's root")
    paths = StackPaths(home)
    state = StackState.load(paths) or _new_state(home)
    state.save(paths)
    credentials = ensure_credentials(paths)
    server = postgres_server_url()
    backing.create_databases(server, state.databases)
    backing.create_vhost(state.vhost)
    heavy_slots = int(os.environ.get(HEAVY_SLOTS_ENV, "2"))
    max_runs = int(os.environ.get(MAX_RUNS_ENV, "2"))
    write_dagster_yaml(paths.dagster_home, heavy_slots, max_runs, _MAX_RUNTIME_SECONDS)
    write_mlflow_auth_ini(
        paths.mlflow_auth_ini,
        backing.database_url(server, state.databases["mlflow_auth"], "psycopg2"),
        ADMIN_USER,
    )
    stack = Stack(paths, state, workspace.resolve())
    EfficientAIHome(stack.work_home).ensure_layout()
    if not paths.registry_git.is_dir():
        subprocess.run(
            ["git", "init", "-q", "--bare", "-b", "main", str(paths.registry_git)],
            check=True,
            timeout=60,
        )

    try:
        started = {name: stack.start_service(name) for name in SERVICES}
        for spec in workers:
            started[spec.name] = start_worker(stack, spec, wait=False)
        for name, managed in started.items():
            stack.wait_ready(name, managed)
        ensure_mlflow_user(stack, PIPELINE_USER, credentials[MLFLOW_PASSWORD_ENV])
        warm_tracking_server(stack, PIPELINE_USER, credentials[MLFLOW_PASSWORD_ENV])
    except BaseException:
        stop_processes(stack)  # no half-started stack: `up` again after fixing the cause
        raise
    return stack


def start_worker(
    stack: Stack,
    spec: WorkerSpec,
    home: Path | None = None,
    cwd: Path | None = None,
    wait: bool = True,
    extra_env: dict[str, str] | None = None,
) -> Managed:
    """One more Celery worker of this stack, optionally with its own home and working folder
    (as on another machine: nothing shared with the stack's processes but the network)."""
    extra = {**(extra_env or {}), **({"EFFICIENTAI_HOME": str(home)} if home else {})}
    if home:
        EfficientAIHome(home).ensure_layout()
        extra["BENTOML_HOME"] = str(home / "bentoml")
    env = stack.process_env(**extra)
    managed = processes.start(
        spec.name,
        worker_command(spec.name, spec.queues),
        env,
        stack.paths.pids,
        stack.paths.logs,
        cwd=cwd or stack.workspace.parent,
    )
    if wait:
        stack.wait_ready(spec.name, managed)
    return managed


def ensure_mlflow_user(stack: Stack, username: str, password: str) -> None:
    """Create ``username`` on the tracking server (as the admin), once; a later ``up`` finds it."""
    admin = (ADMIN_USER, load_credentials(stack.paths)[MLFLOW_ADMIN_PASSWORD_ENV])
    base = f"{stack.tracking_uri}/api/2.0/mlflow/users"
    with httpx.Client(auth=admin, timeout=30) as client:
        found = client.get(f"{base}/get", params={"username": username})
        if found.status_code == 200:
            return
        if found.status_code in (401, 403):
            raise StackError(
                f"the tracking server at {stack.tracking_uri} refused the admin user "
                f"{ADMIN_USER!r} (HTTP {found.status_code}): {MLFLOW_ADMIN_PASSWORD_ENV} differs "
                "from the one the user database was created with"
            )
        created = client.post(f"{base}/create", json={"username": username, "password": password})
        if created.status_code != 200:
            raise StackError(
                f"could not create MLflow user {username!r} at {stack.tracking_uri}: "
                f"HTTP {created.status_code}"
            )


# One read per store the tracking server opens lazily: the tracking and registry stores (their
# database engines) and the artifact proxy (its S3 client). Each costs a second or more the first
# time; asked here, no step of the first run waits for it.
_WARM_UP_READS: tuple[tuple[str, dict[str, str]], ...] = (
    ("/api/2.0/mlflow/experiments/get-by-name", {"experiment_name": "Default"}),
    ("/api/2.0/mlflow/registered-models/search", {"max_results": "1"}),
    ("/api/2.0/mlflow/model-versions/search", {"max_results": "1"}),
    ("/api/2.0/mlflow-artifacts/artifacts", {}),
)


def warm_tracking_server(stack: Stack, username: str, password: str) -> list[str]:
    """Ask the tracking server one read of each store as ``username``; returns the reads that
    did not answer 200 (the server still serves: a later request retries the store)."""
    failed: list[str] = []
    with httpx.Client(auth=(username, password), timeout=60) as client:
        for path, params in _WARM_UP_READS:
            try:
                status = client.get(f"{stack.tracking_uri}{path}", params=params).status_code
            except httpx.HTTPError as error:
                failed.append(f"{path}: {type(error).__name__}")
                continue
            if status != 200:
                failed.append(f"{path}: HTTP {status}")
    return failed


def stop_processes(stack: Stack) -> list[str]:
    """Stop workers first (they finish writing to the services), then the services."""
    names = [name for name in stack.running() if name not in SERVICES]
    stopped: list[str] = []
    failures: list[str] = []
    for name in [*names, *reversed(SERVICES)]:
        try:  # one process that cannot be stopped must not leave the others running
            if stack.stop_service(name):
                stopped.append(name)
        except Exception as error:
            failures.append(f"{name}: {error}")
    if failures:
        raise StackError(f"could not stop {'; '.join(failures)}; stopped {', '.join(stopped)}")
    return stopped


def down(home: EfficientAIHome, workspace: Path, keep_data: bool = False) -> list[str]:
    """Stop everything; unless ``keep_data``, drop the databases and vhost and the stack folder."""
    paths = StackPaths(home)
    state = StackState.load(paths)
    if state is None:
        return []
    stack = Stack(paths, state, workspace)
    stopped = stop_processes(stack)
    if not keep_data:
        backing.drop_databases(postgres_server_url(), state.databases)
        backing.delete_vhost(state.vhost)
        shutil.rmtree(paths.root, ignore_errors=True)
    return stopped


def status(home: EfficientAIHome, workspace: Path) -> tuple[bool, list[str]]:
    """Whether every service and worker runs, and one line per piece for people."""
    stack = Stack.load(home, workspace)
    lines: list[str] = []
    healthy = True
    urls = {
        "objectstore": stack.s3_endpoint,
        "mlflow": stack.tracking_uri,
        "webserver": stack.webserver_url,
        "daemon": "",
    }
    for name, managed in stack.running().items():
        alive = managed is not None and managed.alive()
        healthy &= alive
        where = urls.get(name, "")
        pid = f"pid {managed.pid}" if managed is not None and alive else "stopped"
        lines.append(f"{name:<14} {'up' if alive else 'DOWN':<5} {pid:<12} {where}")
    present = backing.existing_databases(postgres_server_url(), stack.state.databases)
    healthy &= len(present) == len(stack.state.databases)
    lines.append(f"{'postgresql':<14} {'up' if present else 'DOWN':<5} {', '.join(present)}")
    lines.append(f"{'broker':<14} {'':<5} {stack.broker.split('@', 1)[-1]}")
    lines.append(f"{'state':<14} {'':<5} {stack.paths.root}")
    return healthy, lines
