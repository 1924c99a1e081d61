"""The stack's own processes: what each one runs, with which environment, and when it is ready.

``Stack`` is one home's stack once ``up`` has chosen its ports and names (``state.json``). The
processes are the object store (``rclone serve s3``), the MLflow tracking server with its
basic-auth app, the Dagster webserver and daemon, and Celery workers; PostgreSQL and RabbitMQ
are the machine's (``backing``).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from resources.home import EfficientAIHome
from resources.stack import backing, processes
from resources.stack.configs import DAGSTER_POSTGRES_URL_ENV
from resources.stack.processes import Managed, StackError
from resources.stack.settings import (
    BROKER_ENV,
    BUCKET,
    DEFAULT_QUEUE,
    DVC_REMOTE_ENV,
    MLFLOW_ADMIN_PASSWORD_ENV,
    MLFLOW_PASSWORD_ENV,
    MLFLOW_SECRET_KEY_ENV,
    MLFLOW_USER_ENV,
    PIPELINE_USER,
    REGISTRY_GIT_ENV,
    S3_ENDPOINT_ENV,
    S3_KEY_ID_ENV,
    S3_SECRET_ENV,
    TRACKING_URI_ENV,
    StackPaths,
    StackState,
    load_credentials,
    postgres_server_url,
    venv_bin,
)

SERVICES = ("objectstore", "mlflow", "webserver", "daemon")
READY_TIMEOUT_SECONDS = 180.0
_QUIET = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DAGSTER_DISABLE_TELEMETRY": "1",
    "DVC_NO_ANALYTICS": "1",
    "BENTOML_DO_NOT_TRACK": "true",
    "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class Stack:
    """One home's stack: its paths, chosen ports and names, and credentials."""

    paths: StackPaths
    state: StackState
    workspace: Path

    @classmethod
    def load(cls, home: EfficientAIHome, workspace: Path) -> Stack:
        paths = StackPaths(home)
        state = StackState.load(paths)
        if state is None:
            raise StackError(
                f"no stack in {paths.root}: run `make stack-up` (python -m resources.stack up)"
            )
        return cls(paths, state, workspace)

    # -- addresses ------------------------------------------------------------------------

    @property
    def work_home(self) -> Path:
        """The EFFICIENTAI_HOME of the stack's own processes (registry clone, bentos, reports)."""
        return self.paths.root / "home"

    @property
    def tracking_uri(self) -> str:
        return f"http://{self.state.advertise}:{self.state.ports['mlflow']}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.state.advertise}:{self.state.ports['objectstore']}"

    @property
    def webserver_url(self) -> str:
        return f"http://{self.state.advertise}:{self.state.ports['webserver']}"

    @property
    def broker(self) -> str:
        return backing.broker_url(backing_server(), self.state.vhost)

    def dagster_postgres_url(self) -> str:
        return backing.database_url(postgres_server_url(), self.state.databases["dagster"])

    # -- environments ---------------------------------------------------------------------

    def client_env(self, secrets: bool = True) -> dict[str, str]:
        """What a pipeline process, a worker or a client needs to use this stack."""
        env = {
            "EFFICIENTAI_HOME": str(self.work_home),
            "DAGSTER_HOME": str(self.paths.dagster_home),
            "BENTOML_HOME": str(self.work_home / "bentoml"),
            TRACKING_URI_ENV: self.tracking_uri,
            MLFLOW_USER_ENV: PIPELINE_USER,
            DVC_REMOTE_ENV: f"s3://{BUCKET}/dvc",
            REGISTRY_GIT_ENV: str(self.paths.registry_git),
            S3_ENDPOINT_ENV: self.s3_endpoint,
            BROKER_ENV: self.broker,
            DAGSTER_POSTGRES_URL_ENV: self.dagster_postgres_url(),
            **_QUIET,
        }
        if secrets:
            credentials = load_credentials(self.paths)
            env.update(
                {
                    MLFLOW_PASSWORD_ENV: credentials[MLFLOW_PASSWORD_ENV],
                    S3_KEY_ID_ENV: credentials[S3_KEY_ID_ENV],
                    S3_SECRET_ENV: credentials[S3_SECRET_ENV],
                }
            )
        return env

    def process_env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, **self.client_env(), **extra}
        env["PATH"] = f"{venv_bin()}{os.pathsep}{env.get('PATH', '')}"
        return env

    # -- services -------------------------------------------------------------------------

    def _start(self, name: str, command: Sequence[str], env: dict[str, str]) -> Managed:
        return processes.start(
            name, command, env, self.paths.pids, self.paths.logs, cwd=self.workspace.parent
        )

    def start_objectstore(self) -> Managed:
        (self.paths.object_store / BUCKET).mkdir(parents=True, exist_ok=True)
        credentials = load_credentials(self.paths)
        # The key pair goes through rclone's environment, never its command line (visible in ps).
        env = self.process_env(
            # A repeatable flag read from the environment is CSV: quote the pair.
            RCLONE_AUTH_KEY=f'"{credentials[S3_KEY_ID_ENV]},{credentials[S3_SECRET_ENV]}"'
        )
        command = [
            str(venv_bin() / "rclone"),
            "serve",
            "s3",
            "--addr",
            f"{self.state.bind}:{self.state.ports['objectstore']}",
            "--config",
            "/dev/null",
            str(self.paths.object_store),
        ]
        return self._start("objectstore", command, env)

    def start_mlflow(self) -> Managed:
        credentials = load_credentials(self.paths)
        env = self.process_env(
            MLFLOW_AUTH_CONFIG_PATH=str(self.paths.mlflow_auth_ini),
            MLFLOW_AUTH_ADMIN_PASSWORD=credentials[MLFLOW_ADMIN_PASSWORD_ENV],
            MLFLOW_FLASK_SERVER_SECRET_KEY=credentials[MLFLOW_SECRET_KEY_ENV],
            MLFLOW_S3_ENDPOINT_URL=self.s3_endpoint,
            # MLflow 3 starts a job runner next to the server (Huey consumers for GenAI scorers and
            # trace roll-ups, which this stack does not use); during a pipeline run it took about
            # 45% of a core, slowing every step beside it on a 2-core machine.
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        )
        backend = backing.database_url(
            postgres_server_url(), self.state.databases["mlflow"], "psycopg2"
        )
        command = [
            str(venv_bin() / "mlflow"),
            "server",
            "--host",
            self.state.bind,
            "--port",
            str(self.state.ports["mlflow"]),
            "--backend-store-uri",
            backend,
            "--serve-artifacts",
            "--artifacts-destination",
            f"s3://{BUCKET}/mlflow",
            "--app-name",
            "basic-auth",
            "--workers",
            "1",
        ]
        return self._start("mlflow", command, env)

    def start_webserver(self) -> Managed:
        command = [
            str(venv_bin() / "dagster-webserver"),
            "-h",
            self.state.bind,
            "-p",
            str(self.state.ports["webserver"]),
            "-w",
            str(self.workspace),
        ]
        return self._start("webserver", command, self.process_env())

    def start_daemon(self) -> Managed:
        command = [str(venv_bin() / "dagster-daemon"), "run", "-w", str(self.workspace)]
        return self._start("daemon", command, self.process_env())

    def start_service(self, name: str) -> Managed:
        starters = {
            "objectstore": self.start_objectstore,
            "mlflow": self.start_mlflow,
            "webserver": self.start_webserver,
            "daemon": self.start_daemon,
        }
        if name not in starters:
            raise StackError(f"no service {name!r}: choose one of {', '.join(SERVICES)}")
        return starters[name]()

    def wait_ready(self, name: str, managed: Managed, timeout: float = READY_TIMEOUT_SECONDS):
        ready: dict[str, str | tuple[str, int]] = {
            "objectstore": (self.state.advertise, self.state.ports["objectstore"]),
            "mlflow": f"{self.tracking_uri}/health",
            "webserver": f"{self.webserver_url}/server_info",
        }
        if name in ready:
            processes.wait_until(managed, ready[name], timeout, what=name)
        elif name.startswith("worker-"):
            wait_for_log(managed, " ready.", timeout, what=name)
        else:
            time.sleep(1.0)
            if not managed.alive():
                raise StackError(f"{name} exited; its log says:\n{processes.tail(managed.log)}")

    def stop_service(self, name: str) -> bool:
        return processes.stop(name, self.paths.pids, self.paths.logs)

    def running(self) -> dict[str, Managed | None]:
        names = [*SERVICES, *(n for n in processes.recorded(self.paths.pids) if n not in SERVICES)]
        return {name: processes.read(name, self.paths.pids, self.paths.logs) for name in names}


def backing_server() -> str:
    from resources.stack.settings import DEFAULT_BROKER_SERVER

    return os.environ.get("EFFICIENTAI_STACK_BROKER_SERVER", DEFAULT_BROKER_SERVER)


def worker_command(name: str, queues: Sequence[str]) -> list[str]:
    """A Celery worker on ``queues`` (one ``-Q a,b`` argument: every queue is consumed), one
    step at a time in the worker process itself, named ``name@<this host>``."""
    return [
        str(venv_bin() / "celery"),
        "-A",
        "resources.stack.worker_app",
        "worker",
        "-Q",
        ",".join(queues or [DEFAULT_QUEUE]),
        "-n",
        f"{name}@{socket.gethostname()}",
        "--pool",
        "solo",
        "--prefetch-multiplier",
        "1",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
    ]


def wait_for_log(managed: Managed, marker: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not managed.alive():
            raise StackError(f"{what} exited; its log says:\n{processes.tail(managed.log)}")
        if marker in managed.log_text():
            return
        time.sleep(0.25)
    raise StackError(f"{what} not ready in {timeout:.0f} s:\n{processes.tail(managed.log)}")
