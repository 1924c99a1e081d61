"""``python -m efficientai_assets.operations.restore ARCHIVE`` (``make restore ARCHIVE=...``):
restore a backup into an empty home, then check it (``restore_checks``).

Order of work, so that a bad archive or a wrong target leaves nothing behind:

1. refuse a target home that holds any file (restore never merges into, or replaces, a home);
2. read the whole archive against its manifest (``archive.verify``): a truncated, corrupt or
   altered archive is refused here, before anything is written;
3. on PostgreSQL, refuse a target database that already has tables;
4. extract into a staging folder beside the target, rebuild the data registry from its git
   bundle, move the stores' absolute paths from the old home to the new one (MLflow's artifact
   locations, Dagster's event metadata, the local DVC remote), then rename it into place.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from efficientai_assets.operations.archive import (
    ArchiveError,
    VerifiedArchive,
    extract,
    read_member,
    verify,
)
from efficientai_assets.operations.stores import (
    StoreConfigError,
    StoreLocations,
    postgres_url,
    redacted,
)
from resources.home import EfficientAIHome

GIT_TIMEOUT_SECONDS = 600
PG_RESTORE_TIMEOUT_SECONDS = 1800
# MLflow columns that hold artifact locations (absolute under the old home for the embedded store).
MLFLOW_PATH_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
    ("logged_models", "artifact_location"),
)


class RestoreError(RuntimeError):
    """The restore was refused or failed; the message says what was (not) written."""


def files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if not p.is_dir()] if folder.exists() else []


def rebase_sqlite(
    database: Path, old: str, new: str, columns: tuple[tuple[str, str], ...] | None = None
) -> int:
    """Replace the path prefix ``old/`` by ``new/`` in text columns (``columns``, or every text
    column of every table); returns the rows changed."""
    changed = 0
    with sqlite3.connect(database) as connection:
        if columns is None:
            tables = [
                r[0]
                for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            columns = tuple(
                (table, str(info[1]))
                for table in tables
                for info in connection.execute(f"PRAGMA table_info('{table}')")
                if str(info[2]).upper() in ("TEXT", "VARCHAR", "") or "CHAR" in str(info[2]).upper()
            )
        existing = {
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        for table, column in columns:
            if table not in existing:
                continue
            cursor = connection.execute(
                f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                f'WHERE typeof("{column}") = \'text\' AND instr("{column}", ?) > 0',
                (old + "/", new + "/", old + "/"),
            )
            changed += cursor.rowcount
    connection.close()
    return changed


def rebase_text(path: Path, old: str, new: str) -> None:
    if path.is_file():
        path.write_text(path.read_text().replace(old + "/", new + "/"))


def postgres_tables(url: str) -> int:
    import psycopg2

    connection = psycopg2.connect(url, connect_timeout=10)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            )
            row = cursor.fetchone()
            return int(row[0]) if row else 0
    finally:
        connection.close()


def rebase_postgres(url: str, old: str, new: str, columns: tuple[tuple[str, str], ...]) -> None:
    """``rebase_sqlite`` for a restored PostgreSQL database (known columns only)."""
    import psycopg2

    connection = psycopg2.connect(url, connect_timeout=10)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT table_name FROM information_schema.tables "
                           "WHERE table_schema = 'public'")  # fmt: skip
            existing = {row[0] for row in cursor.fetchall()}
            for table, column in columns:
                if table in existing:
                    cursor.execute(
                        f'UPDATE "{table}" SET "{column}" = replace("{column}", %s, %s) '
                        f'WHERE strpos("{column}", %s) > 0',
                        (old + "/", new + "/", old + "/"),
                    )
    finally:
        connection.close()


def pg_restore(dump: Path, url: str) -> None:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = parts.password
        netloc = f"{parts.username or ''}@{parts.hostname or ''}" + (
            f":{parts.port}" if parts.port else ""
        )
        url = urlunsplit(parts._replace(netloc=netloc))
    completed = subprocess.run(
        ["pg_restore", "--no-owner", "--no-privileges", f"--dbname={url}", str(dump)],
        env=env, capture_output=True, text=True, timeout=PG_RESTORE_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        raise RestoreError(
            f"pg_restore into {redacted(url)} failed: {completed.stderr.strip()[-500:]}"
        )


def target_databases(verified: VerifiedArchive, locations: StoreLocations) -> dict[str, str]:
    """The PostgreSQL databases the archive's dumps go into (each must be empty): the Dagster
    one as the archived ``dagster.yaml`` names it in this environment (``{env: VAR}`` values are
    read now), the MLflow one from ``EFFICIENTAI_MLFLOW_TRACKING_URI``."""
    import yaml

    components = verified.manifest["components"]
    targets: dict[str, str] = {}
    if components["dagster"]["kind"] == "postgres":
        config = yaml.safe_load(read_member(verified, "dagster/dagster.yaml") or b"{}") or {}
        try:
            targets["dagster"] = postgres_url((config.get("storage") or {})["postgres"])
        except (KeyError, TypeError, StoreConfigError) as error:
            raise RestoreError(
                f"the archive's dagster.yaml names no usable PostgreSQL storage ({error}); "
                "nothing was written"
            ) from error
    if components["mlflow"]["kind"] == "postgresql":
        url = locations.mlflow_postgres_url()
        if url is None:
            raise RestoreError("the archive holds a PostgreSQL MLflow store: set "
                               "EFFICIENTAI_MLFLOW_TRACKING_URI to an empty database")  # fmt: skip
        targets["mlflow"] = url
    for name, url in targets.items():
        if postgres_tables(url):
            raise RestoreError(f"the {name} database {redacted(url)} is not empty: restore "
                               "only into an empty database; nothing was written")  # fmt: skip
    return targets


def rebuild_registry(staging: Path) -> None:
    bundle = staging / "data.bundle"
    if not bundle.is_file():
        return
    completed = subprocess.run(
        ["git", "clone", "--quiet", str(bundle), str(staging / "data")],
        capture_output=True, text=True, timeout=GIT_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        raise RestoreError(f"git clone of the registry bundle failed: {completed.stderr.strip()}")
    subprocess.run(
        ["git", "-C", str(staging / "data"), "remote", "remove", "origin"],
        capture_output=True, timeout=GIT_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    bundle.unlink()


def restore(archive: Path, locations: StoreLocations) -> VerifiedArchive:
    """Restore ``archive`` into the (empty) home of ``locations``."""
    target = locations.home.root
    present = files_in(target)
    if present:
        raise RestoreError(
            f"{target} is not empty ({len(present)} files, e.g. {present[0]}): restore only "
            "into an empty home (set EFFICIENTAI_HOME to a new folder); nothing was written"
        )
    try:
        verified = verify(archive)
    except ArchiveError as error:
        text = str(error).rstrip(".")
        suffix = "" if "nothing was written" in text else "; nothing was written"
        raise RestoreError(text + suffix) from error
    manifest = verified.manifest
    databases = target_databases(verified, locations)
    staging = target.parent / f".{target.name}.restoring-{uuid.uuid4().hex[:8]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        extract(verified, staging)
        rebuild_registry(staging)
        old, new = manifest["source_home"], str(target)
        for database in sorted((staging / "dagster").rglob("*.db")):
            rebase_sqlite(database, old, new)
        rebase_text(staging / "dagster" / "dagster.yaml", old, new)
        # Each namespace's audit trail (reports/ and reports/namespaces/<ns>/) names its files.
        for trail in sorted((staging / "reports").rglob("retraining_audit.jsonl")):
            rebase_text(trail, old, new)
        if (staging / "mlflow" / "mlflow.db").is_file():
            rebase_sqlite(staging / "mlflow" / "mlflow.db", old, new, MLFLOW_PATH_COLUMNS)
        if target.exists():
            target.rmdir() if not any(target.iterdir()) else shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for name, url in databases.items():
        pg_restore(target / f"{name}.pgdump", url)
        if name == "mlflow":
            rebase_postgres(url, manifest["source_home"], str(target), MLFLOW_PATH_COLUMNS)
    point_registry_at_remote(manifest, locations)
    return verified


def point_registry_at_remote(manifest: dict[str, Any], locations: StoreLocations) -> None:
    """The restored registry pulls from the restored remote folder (or the configured one)."""
    data = manifest["components"]["data"]
    if not data.get("present"):
        return
    from resources.dvc.resource import DvcResource

    configured = os.environ.get("EFFICIENTAI_DVC_REMOTE_URL")
    if configured or data.get("remote_copied"):
        remote = configured or str(locations.home.dvc_remote)
        DvcResource(repo_path=str(locations.home.data_registry), remote_url=remote).ensure_repo()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m efficientai_assets.operations.restore",
        description="Restore a backup into an empty home (EFFICIENTAI_HOME), then check it.",
    )
    parser.add_argument("archive", type=Path, help="the .tar.gz `make backup` wrote")
    parser.add_argument("--serve", action="store_true",
                        help="also start each live deployment's servers and wait for /readyz")  # fmt: skip
    parser.add_argument("--no-checks", action="store_true", help="restore without the checks")
    args = parser.parse_args(argv)
    locations = StoreLocations.from_env()
    print(f"restoring {args.archive} into {locations.home.root}", flush=True)
    try:
        verified = restore(args.archive.resolve(), locations)
    except (RestoreError, OSError) as error:
        print(f"restore refused: {error}", file=sys.stderr)
        return 1
    print(f"restored {len(verified.manifest['files'])} files from a backup of "
          f"{verified.manifest['source_home']} made {verified.manifest['created_at']}")  # fmt: skip
    if args.no_checks:
        return 0
    from efficientai_assets.operations.restore_checks import run_checks

    failed = run_checks(locations, verified.manifest, serve=args.serve)
    if failed:
        print(f"the home is restored at {locations.home.root}, but {len(failed)} check(s) "
              f"failed: {', '.join(failed)}", file=sys.stderr)  # fmt: skip
        return 1
    print(f"home restored and checked: {EfficientAIHome(locations.home.root).root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
