"""Where a home's stores are, read from the environment the same way the code location wires its
resources (``resources/defaults.py``): the embedded defaults under ``EFFICIENTAI_HOME``, or the
team stack when its variables are set (``EFFICIENTAI_MLFLOW_TRACKING_URI``, a PostgreSQL
``storage`` block in ``dagster.yaml``, ``EFFICIENTAI_DVC_REMOTE_URL``).

Health, backup, restore and the dashboard all start from one ``StoreLocations``, so they look at
the same stores the pipeline writes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import yaml

from resources.home import EfficientAIHome

DagsterStorageKind = Literal["sqlite", "postgres", "other"]
MlflowStoreKind = Literal["sqlite", "postgresql", "server", "other"]

MLFLOW_URI_ENV = "EFFICIENTAI_MLFLOW_TRACKING_URI"
MLFLOW_USERNAME_ENV = "EFFICIENTAI_MLFLOW_USERNAME"
MLFLOW_PASSWORD_ENV = "EFFICIENTAI_MLFLOW_PASSWORD"
DVC_REMOTE_ENV = "EFFICIENTAI_DVC_REMOTE_URL"
SERVE_URLS_ENV = "EFFICIENTAI_SERVE_URLS"
DASHBOARD_URL_ENV = "DASHBOARD_URL"


class StoreConfigError(ValueError):
    """A store's configuration cannot be read; the message names the file and the key."""


@dataclass(frozen=True)
class Endpoint:
    """A server to probe. ``required``: configured explicitly, so not answering means down;
    otherwise it is a default address, and not answering means it is simply not running."""

    name: str
    url: str
    required: bool


@dataclass(frozen=True)
class DagsterStorage:
    """The Dagster instance's storage as ``dagster.yaml`` declares it."""

    kind: DagsterStorageKind
    sqlite_dir: Path | None = None  # where runs.db and the event logs live (sqlite)
    postgres_url: str | None = field(default=None, repr=False)  # may hold a password


@dataclass(frozen=True)
class StoreLocations:
    """Every store and server of one home."""

    home: EfficientAIHome
    tracking_uri: str = field(repr=False)  # may hold a password
    dagster_home: Path
    bentoml_home: Path
    dvc_remote_url: str
    servers: tuple[Endpoint, ...] = ()
    dashboard: Endpoint | None = None
    min_free_bytes: int = 1 << 30

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StoreLocations:
        env = os.environ if environ is None else environ
        configured = env.get("EFFICIENTAI_HOME")
        root = Path(configured) if configured else Path.cwd() / ".efficientai"
        home = EfficientAIHome(root.expanduser().resolve())
        locations = cls.for_home(home, env)
        dagster_home = env.get("DAGSTER_HOME")
        bentoml_home = env.get("BENTOML_HOME")
        return replace(
            locations,
            dagster_home=Path(dagster_home).resolve() if dagster_home else home.dagster_home,
            bentoml_home=Path(bentoml_home).resolve() if bentoml_home else home.bentoml_home,
        )

    @classmethod
    def for_home(
        cls, home: EfficientAIHome, environ: Mapping[str, str] | None = None
    ) -> StoreLocations:
        """The stores of ``home``; remote stores and servers still come from ``environ``."""
        env = os.environ if environ is None else environ
        servers = tuple(
            Endpoint(f"server {url}", url.rstrip("/"), True)
            for url in (u.strip() for u in env.get(SERVE_URLS_ENV, "").split(","))
            if url
        ) or (Endpoint("server", f"http://127.0.0.1:{env.get('SERVE_PORT', '3001')}", False),)
        dashboard_url = env.get(DASHBOARD_URL_ENV, "").strip()
        dashboard = Endpoint(
            "dashboard",
            (dashboard_url or f"http://127.0.0.1:{env.get('DASHBOARD_PORT', '8000')}").rstrip("/"),
            bool(dashboard_url),
        )
        free_gb = float(env.get("EFFICIENTAI_MIN_FREE_GB", "1") or 1)
        return cls(
            home=home,
            tracking_uri=env.get(MLFLOW_URI_ENV) or home.mlflow_tracking_uri,
            dagster_home=home.dagster_home,
            bentoml_home=home.bentoml_home,
            dvc_remote_url=env.get(DVC_REMOTE_ENV) or str(home.dvc_remote),
            servers=servers,
            dashboard=dashboard,
            min_free_bytes=int(free_gb * (1 << 30)),
        )

    # -- MLflow ---------------------------------------------------------------------------

    @property
    def mlflow_kind(self) -> MlflowStoreKind:
        uri = self.tracking_uri
        if uri.startswith("sqlite:///"):
            return "sqlite"
        if uri.startswith(("postgresql://", "postgresql+psycopg2://", "postgres://")):
            return "postgresql"
        if uri.startswith(("http://", "https://")):
            return "server"
        return "other"

    @property
    def mlflow_sqlite_path(self) -> Path | None:
        return (
            Path(self.tracking_uri.removeprefix("sqlite:///"))
            if self.mlflow_kind == "sqlite"
            else None
        )

    def mlflow_postgres_url(self) -> str | None:
        """The tracking URI as libpq takes it (no SQLAlchemy driver suffix)."""
        if self.mlflow_kind != "postgresql":
            return None
        return "postgresql://" + self.tracking_uri.split("://", 1)[1]

    def mlflow_credentials(self) -> tuple[str, str] | None:
        user, password = os.environ.get(MLFLOW_USERNAME_ENV), os.environ.get(MLFLOW_PASSWORD_ENV)
        return (user, password) if user and password else None

    @property
    def artifacts_dir(self) -> Path:
        """The embedded artifact root (used for every database backend the resource wires)."""
        return self.home.mlflow_artifacts

    # -- Dagster ----------------------------------------------------------------------------

    def dagster_storage(self) -> DagsterStorage:
        """What ``dagster.yaml`` says; no file (or no storage block) means SQLite in the home."""
        config_path = self.dagster_home / "dagster.yaml"
        try:
            config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
        except (OSError, yaml.YAMLError) as error:
            raise StoreConfigError(f"cannot read {config_path}: {error}") from error
        storage = (config or {}).get("storage")
        if not storage:
            if any(k in (config or {}) for k in ("run_storage", "event_log_storage")):
                return DagsterStorage("other")
            return DagsterStorage("sqlite", sqlite_dir=self.dagster_home)
        if "postgres" in storage:
            return DagsterStorage("postgres", postgres_url=postgres_url(storage["postgres"]))
        if "sqlite" in storage:
            base = (storage["sqlite"] or {}).get("base_dir")
            return DagsterStorage(
                "sqlite", sqlite_dir=Path(_resolve(base)) if base else self.dagster_home
            )
        return DagsterStorage("other")

    # -- serving ------------------------------------------------------------------------------

    @property
    def deployments_dir(self) -> Path:
        return self.bentoml_home / "deployments"


def _resolve(value: Any) -> str:
    """A ``dagster.yaml`` scalar: a literal, or ``{env: NAME}`` read from the environment."""
    if isinstance(value, Mapping) and "env" in value:
        name = str(value["env"])
        if name not in os.environ:
            raise StoreConfigError(
                f"dagster.yaml reads {name} from the environment, which is unset"
            )
        return os.environ[name]
    return "" if value is None else str(value)


def postgres_url(config: Mapping[str, Any]) -> str:
    """A libpq URL from Dagster's ``postgres_url`` or ``postgres_db`` block."""
    if "postgres_url" in config:
        return "postgresql://" + _resolve(config["postgres_url"]).split("://", 1)[-1]
    db = config.get("postgres_db") or {}
    try:
        user, host, name = (_resolve(db[k]) for k in ("username", "hostname", "db_name"))
    except KeyError as error:
        raise StoreConfigError(f"dagster.yaml postgres_db lacks {error}") from error
    password = _resolve(db.get("password"))
    port = _resolve(db.get("port")) or "5432"
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return f"postgresql://{auth}@{host}:{port}/{name}"


def redacted(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages, logs and manifests)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=f"{parts.username or ''}:***@{netloc}").geturl()
