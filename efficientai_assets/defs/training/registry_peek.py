"""A read-only look at the model registry that loads no MLflow: which version an alias points at
and that version's tags, read straight from the embedded SQLite store.

A re-run with nothing changed only needs to confirm what the previous run recorded (the
challenger is still version N, its fingerprint and quality tags are as written). ``import
mlflow`` and the SQLite store's set-up cost ~2-3 s per process; this query costs milliseconds.
Only the default store (``sqlite:///...``) is read this way: for a tracking server or another
database, and whenever the file, a table or a column is not as expected, :func:`peek_aliases`
returns None and the caller takes its ordinary MLflow path. It never writes (the database is
opened ``mode=ro``); tests/test_rerun.py holds its answers to MLflow's own.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from efficientai_assets.defs.training.origin import FetchedModel
from efficientai_assets.defs.training.promotion import Origin
from resources.mlflow.resource import MlflowResource

# MLflow marks a deleted model version with this stage and keeps the row.
_DELETED_STAGE = "Deleted_Internal"
_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class PeekedVersion:
    """A registered version as the store holds it now: number, tags, artifact location."""

    name: str
    version: str
    tags: Mapping[str, str] = field(default_factory=dict)
    storage_location: str = ""
    run_id: str = ""


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or None for any other store."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    # sqlite:////abs/path.db is absolute; sqlite:///rel/path.db is relative, as SQLAlchemy reads it.
    path = unquote(tracking_uri[len(prefix) :].split("?", 1)[0])
    return Path(path) if path else None


def peek_aliases(
    mlflow: MlflowResource, model_name: str, aliases: tuple[str, ...]
) -> dict[str, PeekedVersion | None] | None:
    """The version each alias of ``model_name`` points at, with its tags (None for an alias that
    is unset or whose version was deleted); None when the store is not SQLite or cannot be read."""
    path = sqlite_path(mlflow.resolved_tracking_uri())
    if path is None or not path.is_file():
        return None
    try:
        uri = f"file:{quote(str(path))}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=_TIMEOUT_SECONDS) as connection:
            return {alias: _read(connection, model_name, alias) for alias in aliases}
    except sqlite3.Error:
        return None


def _read(connection: sqlite3.Connection, model_name: str, alias: str) -> PeekedVersion | None:
    row = connection.execute(
        "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
        (model_name, alias),
    ).fetchone()
    if row is None:
        return None
    version = int(row[0])
    found = connection.execute(
        "SELECT current_stage, storage_location, run_id FROM model_versions "
        "WHERE name = ? AND version = ?",
        (model_name, version),
    ).fetchone()
    if found is None or found[0] == _DELETED_STAGE:
        return None
    tags = dict(
        connection.execute(
            "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ?",
            (model_name, version),
        ).fetchall()
    )
    return PeekedVersion(
        name=model_name,
        version=str(version),
        tags={str(k): str(v) for k, v in tags.items()},
        storage_location=str(found[1] or ""),
        run_id=str(found[2] or ""),
    )


def peek_registered(mlflow: MlflowResource, version: PeekedVersion) -> FetchedModel | None:
    """``version`` as :func:`~efficientai_assets.defs.training.origin.fetch_registered` gives it —
    its origin (run tags and status from the store, flavour, run and signature from its
    ``MLmodel``) over its files where they lie — when the store is SQLite and the artifacts are
    local files; else None (then download through MLflow). Nothing is executed or copied."""
    import yaml

    parts = urlsplit(version.storage_location)
    path = sqlite_path(mlflow.resolved_tracking_uri())
    if parts.scheme != "file" or path is None or not path.is_file():
        return None
    folder = Path(unquote(parts.path))
    try:
        model = yaml.safe_load((folder / "MLmodel").read_text())
        uri = f"file:{quote(str(path))}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=_TIMEOUT_SECONDS) as connection:
            status = connection.execute(
                "SELECT status FROM runs WHERE run_uuid = ?", (version.run_id,)
            ).fetchone()
            run_tags = connection.execute(
                "SELECT key, value FROM tags WHERE run_uuid = ?", (version.run_id,)
            ).fetchall()
        signature = (model.get("signature") or {}).get("inputs")
        columns = tuple(spec["name"] for spec in json.loads(signature)) if signature else None
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        sqlite3.Error,
        yaml.YAMLError,
    ):
        return None
    origin = Origin(
        version=version.version,
        version_tags=dict(version.tags),
        run_id=version.run_id,
        run_tags={str(k): str(v) for k, v in run_tags} if status is not None else None,
        run_status=str(status[0]) if status is not None else "",
        model_run_id=str(model.get("run_id") or ""),
        flavour=(model.get("flavors") or {}).get("python_function"),
        input_columns=columns,
    )
    return FetchedModel(origin=origin, folder=folder)
