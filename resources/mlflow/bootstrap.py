"""Create and migrate an MLflow SQLite store once, under a file lock, before anything opens it.

MLflow creates its tables and runs its schema migrations in whichever process opens a fresh
database first. Two processes doing it at once raced: one failed, and an interrupted migration
left a table such as ``_alembic_tmp_tags`` behind that broke every later open. Here the first
opener of a database holds ``<db>.lock`` while it creates the stores; the others wait, then find
them ready. A migration's leftover ``_alembic_tmp_*`` tables are dropped under the lock, where
no migration can be running. Only ``sqlite:///`` stores are handled: a server or a PostgreSQL
backend is created by its own operator (``mlflow db upgrade``).
"""

from __future__ import annotations

import threading
from pathlib import Path

from resources.locking import file_lock

SQLITE_PREFIX = "sqlite:///"

# Databases this process has already seen ready (a store is bootstrapped once per process).
_READY: set[str] = set()
_READY_GUARD = threading.Lock()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or None for any other store."""
    if not uri.startswith(SQLITE_PREFIX):
        return None
    location = uri.removeprefix(SQLITE_PREFIX).split("?", 1)[0]
    if not location or location == ":memory:":
        return None
    return Path(location)


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def prepare_sqlite_store(uri: str, artifact_root: str | None = None) -> None:
    """Create (or finish creating) the MLflow tracking and registry tables of ``uri`` once.

    Idempotent and safe from any number of processes; a no-op for non-SQLite URIs and for a
    database this process has already prepared.
    """
    database = sqlite_path(uri)
    if database is None:
        return
    key = str(database.resolve())
    with _READY_GUARD:
        if key in _READY:
            return
        database.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(lock_path(database)):
            _create_stores(uri, artifact_root or str(database.parent / "artifacts"))
        _READY.add(key)


def _create_stores(uri: str, artifact_root: str) -> None:
    import sqlalchemy
    from mlflow.store.model_registry.sqlalchemy_store import (
        SqlAlchemyStore as RegistryStore,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.begin() as connection:
            leftovers = [
                name
                for name in sqlalchemy.inspect(connection).get_table_names()
                if name.startswith("_alembic_tmp_")
            ]
            for name in leftovers:
                connection.exec_driver_sql(f'DROP TABLE "{name}"')
    finally:
        engine.dispose()
    TrackingStore(uri, artifact_root)
    RegistryStore(uri)
