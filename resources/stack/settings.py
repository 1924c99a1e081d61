"""Where the stack's state lives, which variables configure it, and how its names are derived.

Every name a stack owns (databases, the broker's virtual host) carries a prefix derived from the
home's path, so two homes on one PostgreSQL and RabbitMQ server — two developers, or tests running
side by side — never share a database or a queue.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resources.home import EfficientAIHome
from resources.stack.processes import StackError

# -- variables the stack reads (docs/operations.md lists them all) ----------------------------
POSTGRES_URL_ENV = "EFFICIENTAI_STACK_POSTGRES_URL"  # the server the stack creates databases on
BROKER_ENV = "EFFICIENTAI_CELERY_BROKER"  # selects the Celery executor when set
BACKEND_ENV = "EFFICIENTAI_CELERY_BACKEND"  # Celery result backend (default rpc://)
HEAVY_SLOTS_ENV = "EFFICIENTAI_STACK_HEAVY_SLOTS"  # Dagster pool limit = heavy workers
MAX_RUNS_ENV = "EFFICIENTAI_STACK_MAX_RUNS"  # queued run coordinator limit
TRACKING_URI_ENV = "EFFICIENTAI_MLFLOW_TRACKING_URI"
MLFLOW_USER_ENV = "EFFICIENTAI_MLFLOW_USERNAME"
MLFLOW_PASSWORD_ENV = "EFFICIENTAI_MLFLOW_PASSWORD"
MLFLOW_ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"
MLFLOW_SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"  # the auth app's CSRF key
DVC_REMOTE_ENV = "EFFICIENTAI_DVC_REMOTE_URL"
REGISTRY_GIT_ENV = "EFFICIENTAI_DVC_REGISTRY_GIT_URL"  # the shared registry's git remote
S3_KEY_ID_ENV = "AWS_ACCESS_KEY_ID"
S3_SECRET_ENV = "AWS_SECRET_ACCESS_KEY"
S3_ENDPOINT_ENV = "AWS_ENDPOINT_URL"
# Where the stack's own servers listen, and the address other machines reach them by. Loopback
# unless a team configures otherwise (a second machine joining needs a reachable address).
BIND_ENV = "EFFICIENTAI_STACK_BIND"
ADVERTISE_ENV = "EFFICIENTAI_STACK_ADVERTISE"
LOOPBACK = "127.0.0.1"

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_BROKER_SERVER = "pyamqp://guest:guest@127.0.0.1:5672"
BUCKET = "efficientai"
PIPELINE_USER = "efficientai"
ADMIN_USER = "admin"
DEFAULT_QUEUE = "dagster"  # dagster-celery's default queue: every light step
HEAVY_QUEUE = "heavy"  # training and bento builds (the assets' op tag)

# Credentials the stack generates on first `up` when the environment does not give them.
SECRET_VARIABLES = (
    MLFLOW_ADMIN_PASSWORD_ENV,
    MLFLOW_SECRET_KEY_ENV,
    MLFLOW_PASSWORD_ENV,
    S3_KEY_ID_ENV,
    S3_SECRET_ENV,
)


def venv_bin() -> Path:
    """The folder of this interpreter's console scripts (celery, mlflow, dagster, rclone)."""
    return Path(sys.executable).parent


@dataclass(frozen=True)
class StackPaths:
    """The stack's files under ``$EFFICIENTAI_HOME/stack/``."""

    home: EfficientAIHome

    @property
    def root(self) -> Path:
        return self.home.root / "stack"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def credentials_file(self) -> Path:
        return self.root / "credentials.env"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def object_store(self) -> Path:
        return self.root / "s3"

    @property
    def registry_git(self) -> Path:
        """The bare git repository every home's registry clone pushes pointers to."""
        return self.root / "registry.git"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def mlflow_auth_ini(self) -> Path:
        return self.root / "mlflow-auth.ini"


def home_prefix(home: EfficientAIHome) -> str:
    """``efficientai_<8 hex>``: a database- and vhost-safe name unique to this home's path."""
    digest = hashlib.sha256(str(home.root).encode()).hexdigest()[:8]
    return f"efficientai_{digest}"


@dataclass
class StackState:
    """What ``up`` decided and later commands reuse: ports, database names, broker vhost."""

    prefix: str
    ports: dict[str, int]
    databases: dict[str, str]
    vhost: str
    bind: str = LOOPBACK
    advertise: str = LOOPBACK

    @classmethod
    def load(cls, paths: StackPaths) -> StackState | None:
        if not paths.state_file.is_file():
            return None
        raw: dict[str, Any] = json.loads(paths.state_file.read_text())
        return cls(
            raw["prefix"],
            raw["ports"],
            raw["databases"],
            raw["vhost"],
            raw.get("bind", LOOPBACK),
            raw.get("advertise", LOOPBACK),
        )

    def save(self, paths: StackPaths) -> None:
        paths.root.mkdir(parents=True, exist_ok=True)
        paths.state_file.write_text(json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n")


def listen_addresses() -> tuple[str, str]:
    """(bind, advertise) from the environment: the servers listen on ``EFFICIENTAI_STACK_BIND``
    (default loopback) and are named by ``EFFICIENTAI_STACK_ADVERTISE`` in every URL the stack
    hands out (default: the bind address, or this host's name when binding every interface)."""
    bind = os.environ.get(BIND_ENV, "").strip() or LOOPBACK
    advertise = os.environ.get(ADVERTISE_ENV, "").strip()
    if not advertise:
        advertise = socket.gethostname() if bind in ("0.0.0.0", "::") else bind
    return bind, advertise


def postgres_server_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL).rstrip("/")


def load_credentials(paths: StackPaths) -> dict[str, str]:
    """The stack's credentials: the environment's where set, else the generated file's."""
    stored = load_credentials_file_only(paths)
    return {name: os.environ.get(name) or stored.get(name, "") for name in SECRET_VARIABLES}


def ensure_credentials(paths: StackPaths) -> dict[str, str]:
    """Generate, once, every credential the environment does not set, into a file only its owner
    can read; the environment always wins, so a team sets its own and the file is never used."""
    current = load_credentials(paths)
    missing = [name for name, value in current.items() if not value]
    if missing:
        generated = {name: secrets.token_urlsafe(24) for name in missing}
        if S3_KEY_ID_ENV in generated:
            generated[S3_KEY_ID_ENV] = "EAI" + secrets.token_hex(8).upper()
        stored = {**load_credentials_file_only(paths), **generated}
        paths.root.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(paths.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write("# Generated by `python -m resources.stack up`; the environment wins.\n")
            handle.writelines(f"{name}={value}\n" for name, value in sorted(stored.items()))
        current = load_credentials(paths)
    if len(current[MLFLOW_ADMIN_PASSWORD_ENV]) < 12:
        raise StackError(
            f"{MLFLOW_ADMIN_PASSWORD_ENV} must be at least 12 characters (MLflow refuses shorter "
            "admin passwords): set a longer one, or unset it to have the stack generate one"
        )
    return current


def load_credentials_file_only(paths: StackPaths) -> dict[str, str]:
    if not paths.credentials_file.is_file():
        return {}
    pairs = (line.partition("=") for line in paths.credentials_file.read_text().splitlines())
    return {name.strip(): value.strip() for name, _, value in pairs if name and name[0] != "#"}
