"""``python -m efficientai_assets.operations.backup`` (``make backup``): one archive of every
store of the home, consistent while runs go on; its path is printed on the last line.

First, before anything is written, the DVC remote must hold every version any commit of the
data registry references (``remote_check``). Then, in this order (each later part is a superset
of what the earlier ones refer to):

1. the Dagster instance — SQLite databases through SQLite's online backup API (a consistent
   snapshot of each file even while a run writes), or ``pg_dump`` on PostgreSQL — and the rest
   of its folder (``dagster.yaml``, compute logs);
2. the MLflow store — online backup of ``mlflow.db``, or ``pg_dump`` (a tracking server backs
   up its own store: recorded, not copied);
3. the data registry's whole git history (``git bundle --all``);
4. the BentoML store (bentos, models, deployment records), the DVC remote when it is a folder,
   MLflow's artifacts and the reports.

The manifest records the source home and the counts the restore checks against.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from efficientai_assets.operations.archive import write_archive
from efficientai_assets.operations.probes import postgres_count
from efficientai_assets.operations.remote_check import RemoteCheckFailed, remote_lacks
from efficientai_assets.operations.stores import StoreLocations, redacted
from resources.bentoml.records import DeploymentLog

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
SKIPPED_BENTOML = ("tmp", "logs")
PG_DUMP_TIMEOUT_SECONDS = 1800
GIT_TIMEOUT_SECONDS = 600


class BackupError(RuntimeError):
    """The backup cannot be made; nothing was left behind. The message says what to do."""


def sqlite_backup(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (its writers keep going)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=60)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def copy_tree(
    source: Path, target: Path, skip_top: tuple[str, ...] = (), skip_suffixes: tuple[str, ...] = ()
) -> int:
    """Copy the files under ``source``; a file that vanishes while copying is skipped (a run
    replaced it). SQLite's side files and half-written temporaries never go. Returns the number
    of files copied."""
    skipped = (*SQLITE_SIDE_FILES, ".tmp", ".partial", *skip_suffixes)
    copied = 0
    for path in sorted(source.rglob("*")) if source.is_dir() else []:
        relative = path.relative_to(source)
        if relative.parts[0] in skip_top or not path.is_file() or path.is_symlink():
            continue
        if path.name.endswith(skipped):
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(path, destination)
        except FileNotFoundError:
            continue
        copied += 1
    return copied


def pg_dump(url: str, target: Path) -> None:
    """``pg_dump --format=custom`` of the database ``url``; the password goes by environment."""
    parts = urlsplit(url)
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = parts.password
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}@{host}" + (f":{parts.port}" if parts.port else "")
        url = urlunsplit(parts._replace(netloc=netloc))
    try:
        completed = subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
             f"--file={target}", f"--dbname={url}"],
            env=env, capture_output=True, text=True, timeout=PG_DUMP_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
    except FileNotFoundError as error:
        raise BackupError("pg_dump is not installed: install postgresql-client") from error
    except subprocess.TimeoutExpired as error:
        raise BackupError(f"pg_dump of {redacted(url)} timed out") from error
    if completed.returncode != 0:
        raise BackupError(f"pg_dump of {redacted(url)} failed: {completed.stderr.strip()[-500:]}")


def sqlite_rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return list(connection.execute(query).fetchall())


def back_up_dagster(locations: StoreLocations, staging: Path) -> dict[str, Any]:
    storage = locations.dagster_storage()
    target = staging / "dagster"
    if storage.kind == "postgres" and storage.postgres_url:
        runs = postgres_count(storage.postgres_url, "runs")  # at least this many are dumped
        pg_dump(storage.postgres_url, staging / "dagster.pgdump")
        copy_tree(locations.dagster_home, target)
        return {"kind": "postgres", "source": redacted(storage.postgres_url), "runs": runs}
    if storage.kind != "sqlite" or storage.sqlite_dir != locations.dagster_home:
        raise BackupError("dagster.yaml declares a storage the backup does not know: use the "
                          "default SQLite storage or a `storage: postgres` block")  # fmt: skip
    runs_db = locations.dagster_home / "history" / "runs.db"
    if not runs_db.is_file():
        raise BackupError(f"no Dagster run storage at {runs_db}: nothing to back up")
    # Runs first, then the event logs: the logs may be ahead of a run's status, never behind.
    databases = [runs_db, *sorted(p for p in locations.dagster_home.rglob("*.db") if p != runs_db)]
    for database in databases:
        sqlite_backup(database, target / database.relative_to(locations.dagster_home))
    copied = copy_tree(locations.dagster_home, target, skip_suffixes=(".db",))
    runs = sqlite_rows(target / "history" / "runs.db", "SELECT count(*) FROM runs")[0][0]
    return {"kind": "sqlite", "runs": int(runs), "databases": len(databases), "files": copied}


def back_up_mlflow(locations: StoreLocations, staging: Path) -> dict[str, Any]:
    kind = locations.mlflow_kind
    if kind == "sqlite":
        source = locations.mlflow_sqlite_path
        assert source is not None
        if not source.is_file():
            raise BackupError(f"no MLflow store at {source}: nothing to back up")
        target = staging / "mlflow" / "mlflow.db"
        sqlite_backup(source, target)
        champions = sqlite_rows(
            target, "SELECT name, version FROM registered_model_aliases WHERE alias = 'champion'"
        )
        return {"kind": "sqlite", "champions": {str(n): str(v) for n, v in champions}}
    if kind == "postgresql":
        url = locations.mlflow_postgres_url()
        assert url is not None
        pg_dump(url, staging / "mlflow.pgdump")
        return {"kind": "postgresql", "source": redacted(url), "champions": {}}
    return {"kind": kind, "source": redacted(locations.tracking_uri), "champions": {},
            "note": "a tracking server backs up its own store"}  # fmt: skip


def check_remote(locations: StoreLocations) -> int:
    """Refuse when the DVC remote lacks a version any registry commit references; returns the
    number of objects checked."""
    registry = locations.home.data_registry
    if not (registry / ".git").is_dir():
        return 0
    try:
        checked, lacking = remote_lacks(registry, all_commits=True)
    except RemoteCheckFailed as error:
        raise BackupError(f"cannot check the DVC remote: {error}") from error
    if lacking:
        raise BackupError(
            f"the DVC remote {redacted(locations.dvc_remote_url)} lacks {len(lacking)} object(s) "
            f"of versions the registry references ({', '.join(lacking[:3])}): push them with "
            f"`dvc push --all-commits` in {registry} from a cache that still holds them, or "
            "restore the remote from an older backup; nothing was written"
        )
    return checked


def back_up_registry(locations: StoreLocations, staging: Path) -> dict[str, Any]:
    """The registry's whole history as one git bundle (its data is on the DVC remote)."""
    registry = locations.home.data_registry
    if not (registry / ".git").is_dir():
        return {"present": False}
    bundle = staging / "data.bundle"
    completed = subprocess.run(
        ["git", "-C", str(registry), "bundle", "create", str(bundle), "--all"],
        capture_output=True, text=True, timeout=GIT_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        raise BackupError(f"git bundle of {registry} failed: {completed.stderr.strip()[-500:]}")
    commits = subprocess.run(
        ["git", "-C", str(registry), "rev-list", "--all", "--count"],
        capture_output=True, text=True, timeout=GIT_TIMEOUT_SECONDS, check=True,
    ).stdout.strip()  # fmt: skip
    remote = locations.dvc_remote_url
    local_remote = "://" not in remote and Path(remote).is_dir()
    return {"present": True, "commits": int(commits or 0), "remote": redacted(remote),
            "remote_copied": local_remote}  # fmt: skip


def back_up(locations: StoreLocations, backup_dir: Path) -> Path:
    """Write the archive into ``backup_dir`` and return its path."""
    if not locations.home.root.is_dir():
        raise BackupError(f"no home at {locations.home.root}: nothing to back up")
    checked = check_remote(locations)  # before anything is written
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = backup_dir / f"efficientai-backup-{stamp}.tar.gz"
    with tempfile.TemporaryDirectory(prefix=".efficientai-backup-", dir=backup_dir) as scratch:
        staging = Path(scratch)
        components = {
            "dagster": back_up_dagster(locations, staging),
            "mlflow": back_up_mlflow(locations, staging),
            "data": {**back_up_registry(locations, staging), "remote_objects_checked": checked},
        }
        live = {}
        folders = locations.deployments_dir.glob("*") if locations.deployments_dir.is_dir() else []
        for folder in sorted(folders):
            current = DeploymentLog(folder).current()
            if current is not None:
                live[current.model_name] = current.deployment_id
        copy_tree(locations.bentoml_home, staging / "bentoml", SKIPPED_BENTOML)
        components["bentoml"] = {"deployments": live}
        if components["data"].get("remote_copied"):
            copy_tree(Path(locations.dvc_remote_url), staging / "dvc-remote")
        copy_tree(locations.artifacts_dir, staging / "mlflow" / "artifacts")
        copy_tree(locations.home.reports, staging / "reports")
        manifest = {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source_home": str(locations.home.root),
            "components": components,
        }
        return write_archive(staging, manifest, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m efficientai_assets.operations.backup",
        description="Back up every store of the home into one verified archive.",
    )
    parser.add_argument("--dir", default=os.environ.get("BACKUP_DIR", "backups"),
                        help="where the archive goes (BACKUP_DIR, default backups/)")  # fmt: skip
    args = parser.parse_args(argv)
    locations = StoreLocations.from_env()
    print(f"backing up {locations.home.root}", flush=True)
    try:
        path = back_up(locations, Path(args.dir).resolve())
    except BackupError as error:
        print(f"backup failed: {error}", file=sys.stderr)
        return 1
    print(f"{path.stat().st_size / 1e6:.1f} MB, manifest with checksums inside")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
