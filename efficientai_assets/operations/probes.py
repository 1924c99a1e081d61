"""One probe per component a home uses: is it up, how long did it take to answer, and if not, why
and what to do. ``make health`` prints them; the dashboard's ``/health`` serves them as JSON.

Probes only read: SQLite files are opened read-only (a missing store is reported, never
created), servers get a GET on their health route, the DVC remote is asked whether it holds
every object of the current versions (``remote_check``).
Every network call and subprocess has a timeout. A component the home does not use (no data
registry yet, a server that is not configured and not running) is ``off``, not ``down``.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Literal

from efficientai_assets.operations.stores import (
    Endpoint,
    StoreConfigError,
    StoreLocations,
    redacted,
)

Status = Literal["up", "down", "off"]
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Probe:
    """One component's state: ``up``, ``down`` (the home needs it and it fails) or ``off``."""

    component: str
    status: Status
    latency_ms: float
    detail: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        mark = {"up": "OK  ", "down": "DOWN", "off": "off "}[self.status]
        return f"{mark} {self.component:<16} {self.latency_ms:>8.1f} ms  {self.detail}"


class ProbeFailed(Exception):
    """Raised inside a check: the component is down, for the reason in the message."""


class ProbeOff(Exception):
    """Raised inside a check: the home does not use this component."""


def timed(component: str, check: Callable[[], str]) -> Probe:
    """Run ``check`` (returns the detail of an up component) and time it."""
    started = time.perf_counter()
    status: Status = "up"
    try:
        detail = check()
    except ProbeOff as off:
        status, detail = "off", str(off)
    except ProbeFailed as failed:
        status, detail = "down", str(failed)
    except Exception as error:  # a probe reports, it never raises
        status, detail = "down", f"{type(error).__name__}: {error}"
    return Probe(component, status, round((time.perf_counter() - started) * 1000, 1), detail)


def sqlite_count(path: Path, table: str) -> int:
    """Rows of ``table`` in the SQLite file ``path``, opened read-only (never created)."""
    if not path.is_file():
        raise ProbeFailed(f"no database at {path}")
    uri = f"file:{path}?mode=ro"
    try:
        with sqlite3.connect(uri, uri=True, timeout=TIMEOUT_SECONDS) as connection:
            return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.Error as error:
        raise ProbeFailed(f"{path} is not a readable store ({error})") from error


def postgres_count(url: str, table: str) -> int:
    import psycopg2

    try:
        connection = psycopg2.connect(url, connect_timeout=int(TIMEOUT_SECONDS))
    except psycopg2.Error as error:
        raise ProbeFailed(f"{redacted(url)} does not answer: {_first_line(error, url)}") from error
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")
            row = cursor.fetchone()
            return int(row[0]) if row else 0
    except psycopg2.Error as error:
        raise ProbeFailed(f"{redacted(url)}: {_first_line(error, url)}") from error
    finally:
        connection.close()


def _first_line(error: Exception, url: str) -> str:
    from urllib.parse import urlsplit

    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text


# -- the stores ------------------------------------------------------------------------------


def check_dagster(locations: StoreLocations) -> str:
    try:
        storage = locations.dagster_storage()
    except StoreConfigError as error:
        raise ProbeFailed(str(error)) from error
    if storage.kind == "postgres" and storage.postgres_url:
        runs = postgres_count(storage.postgres_url, "runs")
        return f"postgres {redacted(storage.postgres_url)}: {runs} runs"
    if storage.kind == "other":
        raise ProbeFailed(
            f"{locations.dagster_home / 'dagster.yaml'} declares a storage this check does not "
            "read; use a `storage: sqlite|postgres` block"
        )
    assert storage.sqlite_dir is not None
    runs_db = storage.sqlite_dir / "history" / "runs.db"
    if not runs_db.is_file():
        raise ProbeFailed(f"no Dagster run storage at {runs_db}: run `make run` or `make dev`")
    runs = sqlite_count(runs_db, "runs")
    sqlite_count(storage.sqlite_dir / "history" / "runs" / "index.db", "event_logs")
    return f"sqlite {storage.sqlite_dir}: {runs} runs"


def check_mlflow(locations: StoreLocations) -> str:
    kind = locations.mlflow_kind
    if kind == "sqlite":
        path = locations.mlflow_sqlite_path
        assert path is not None
        experiments = sqlite_count(path, "experiments")
        versions = sqlite_count(path, "model_versions")
        return f"sqlite {path}: {experiments} experiments, {versions} model versions"
    if kind == "postgresql":
        url = locations.mlflow_postgres_url()
        assert url is not None
        return f"postgresql {redacted(url)}: {postgres_count(url, 'experiments')} experiments"
    if kind == "server":
        status, body = http_get(locations.tracking_uri + "/health", locations.mlflow_credentials())
        if status != 200:
            raise ProbeFailed(
                f"{redacted(locations.tracking_uri)}/health answered {status}: {body[:120]}"
            )
        return f"server {redacted(locations.tracking_uri)}: {body.strip()[:40]}"
    raise ProbeFailed(
        f"tracking URI {redacted(locations.tracking_uri)} is not one this check reads"
    )


def check_dvc(locations: StoreLocations, full: bool = True) -> str:
    from efficientai_assets.operations.remote_check import RemoteCheckFailed, remote_lacks

    registry = locations.home.data_registry
    if not (registry / ".dvc").is_dir():
        raise ProbeOff(f"no data registry at {registry} yet")
    remote = locations.dvc_remote_url
    if "://" not in remote and not Path(remote).is_dir():
        raise ProbeFailed(f"the DVC remote {remote} does not exist: restore it from a backup")
    if not full:
        return f"registry {registry}, remote {redacted(remote)} (sync not checked)"
    try:
        checked, lacking = remote_lacks(registry, all_commits=False)
    except RemoteCheckFailed as error:
        raise ProbeFailed(str(error)) from error
    if lacking:
        raise ProbeFailed(
            f"the remote {redacted(remote)} lacks {len(lacking)} object(s) of the current "
            f"versions ({', '.join(lacking[:3])}): run `dvc push` in {registry}"
        )
    return f"registry {registry}, remote {redacted(remote)}: holds all {checked} objects"


def bento_tags_on_disk(bentoml_home: Path) -> set[str]:
    """``name:version`` of every bento in the store (read from its folders, no BentoML)."""
    root = bentoml_home / "bentos"
    if not root.is_dir():
        return set()
    return {f"{p.parent.parent.name}:{p.parent.name}" for p in root.glob("*/*/bento.yaml")}


def check_bentoml(locations: StoreLocations) -> str:
    from resources.bentoml.records import DeploymentLog

    home = locations.bentoml_home
    if not home.is_dir():
        raise ProbeOff(f"no BentoML store at {home} yet")
    bentos = bento_tags_on_disk(home)
    folders = sorted(p for p in locations.deployments_dir.glob("*") if p.is_dir())
    for folder in folders:
        try:
            current = DeploymentLog(folder).current()
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise ProbeFailed(f"deployment records in {folder} do not read: {error}") from error
        if current is None:
            continue
        served = [current.champion, *([current.canary] if current.canary else [])]
        lacking = [s.bento_tag for s in served if s.bento_tag not in bentos]
        if lacking:
            raise ProbeFailed(
                f"deployment #{current.deployment_id} of {current.model_name} serves "
                f"{', '.join(lacking)}, which {home} lacks: rebuild with `make run` or restore"
            )
    return f"{home}: {len(bentos)} bentos, {len(folders)} deployment logs"


def http_get(
    url: str, credentials: tuple[str, str] | None = None, timeout: float = TIMEOUT_SECONDS
) -> tuple[int | None, str]:
    """(status, body) of a GET; status None when nothing answers."""
    request = urllib.request.Request(url)
    if credentials is not None:
        token = b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read(4096).decode(errors="replace")
    except urllib.error.HTTPError as error:
        return int(error.code), error.read(4096).decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:
        return None, str(getattr(error, "reason", error))


def check_endpoint(endpoint: Endpoint, path: str) -> str:
    status, body = http_get(endpoint.url + path)
    if status is None:
        if not endpoint.required:
            raise ProbeOff(f"nothing answers at {endpoint.url} (not running)")
        raise ProbeFailed(f"nothing answers at {endpoint.url}{path}: {body}")
    if status != 200:
        raise ProbeFailed(f"{endpoint.url}{path} answered {status}: {body.strip()[:120]}")
    return f"{endpoint.url}{path}: {status}"


def check_disk(locations: StoreLocations) -> str:
    folder = locations.home.root
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    free_gb = usage.free / (1 << 30)
    if usage.free < locations.min_free_bytes:
        raise ProbeFailed(
            f"{free_gb:.2f} GiB free under {folder}, below {locations.min_free_bytes / (1 << 30):g}"
            " GiB (EFFICIENTAI_MIN_FREE_GB): free space or move the home"
        )
    return f"{free_gb:.1f} GiB free of {usage.total / (1 << 30):.1f} GiB under {folder}"


def run_probes(
    locations: StoreLocations, *, full: bool = True, include_dashboard: bool = True
) -> list[Probe]:
    """Every component of the home, in a fixed order. ``full=False`` skips the slow DVC sync
    check (the dashboard's ``/health``)."""
    probes = [
        timed("dagster-storage", lambda: check_dagster(locations)),
        timed("mlflow", lambda: check_mlflow(locations)),
        timed("dvc-remote", lambda: check_dvc(locations, full)),
        timed("bentoml-store", lambda: check_bentoml(locations)),
    ]
    for server in locations.servers:
        probes.append(timed(server.name, partial(check_endpoint, server, "/readyz")))
    if include_dashboard and locations.dashboard is not None:
        dashboard = locations.dashboard
        probes.append(timed("dashboard", lambda: check_endpoint(dashboard, "/health")))
    probes.append(timed("disk", lambda: check_disk(locations)))
    return probes
