"""The servers the stack uses but does not run: PostgreSQL (its databases) and RabbitMQ (its
virtual host). Both are created on ``up`` and dropped on ``down``; both names carry the home's
prefix so that stacks of different homes on one server never meet.
"""

from __future__ import annotations

import shutil
import subprocess
from urllib.parse import quote, urlsplit

from resources.stack.processes import StackError

_RABBITMQCTL_TIMEOUT_SECONDS = 60
DATABASE_ROLES = ("dagster", "mlflow", "mlflow_auth")


def database_names(prefix: str) -> dict[str, str]:
    return {role: f"{prefix}_{role}" for role in DATABASE_ROLES}


def database_url(server_url: str, database: str, driver: str = "") -> str:
    """``postgresql[+driver]://user[:password]@host:port/database`` on the stack's server."""
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return f"{scheme}://{server_url.split('://', 1)[1]}/{database}"


def _admin(server_url: str, statement: str) -> list[tuple[object, ...]]:
    import psycopg2

    try:
        connection = psycopg2.connect(f"{server_url}/postgres", connect_timeout=5)
    except psycopg2.OperationalError as error:
        raise StackError(
            f"PostgreSQL does not answer at {_safe(server_url)}: {str(error).strip()}; start it, "
            "or point EFFICIENTAI_STACK_POSTGRES_URL at one"
        ) from error
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
            return list(cursor.fetchall()) if cursor.description else []
    finally:
        connection.close()


def _safe(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@")


def create_databases(server_url: str, names: dict[str, str]) -> None:
    """Create each database that does not exist yet (idempotent)."""
    existing = {str(row[0]) for row in _admin(server_url, "SELECT datname FROM pg_database")}
    for name in names.values():
        if name not in existing:
            _admin(server_url, f'CREATE DATABASE "{name}"')


def drop_databases(server_url: str, names: dict[str, str]) -> None:
    for name in names.values():
        _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def existing_databases(server_url: str, names: dict[str, str]) -> list[str]:
    rows = _admin(server_url, "SELECT datname FROM pg_database")
    present = {str(row[0]) for row in rows}
    return [name for name in names.values() if name in present]


def drop_connections(server_url: str, names: dict[str, str]) -> int:
    """End every session on the stack's databases — what clients see when the server restarts."""
    listed = ", ".join(f"'{name}'" for name in names.values())
    rows = _admin(
        server_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname IN ({listed}) AND pid <> pg_backend_pid()",
    )
    return len(rows)


# -- RabbitMQ ---------------------------------------------------------------------------------


def broker_url(server: str, vhost: str) -> str:
    return f"{server.rstrip('/')}/{quote(vhost, safe='')}"


def _rabbitmqctl(*args: str) -> str:
    executable = shutil.which("rabbitmqctl")
    if executable is None:
        raise StackError(
            "rabbitmqctl is not on PATH, so the stack cannot create its broker virtual host; "
            "install RabbitMQ's tools, or set EFFICIENTAI_CELERY_BROKER to a broker URL with a "
            "virtual host of your own"
        )
    completed = subprocess.run(
        [executable, "-q", *args],
        capture_output=True,
        text=True,
        timeout=_RABBITMQCTL_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        raise StackError(f"rabbitmqctl {' '.join(args)} failed: {completed.stderr.strip()}")
    return completed.stdout


def create_vhost(vhost: str, user: str = "guest") -> None:
    if vhost not in _rabbitmqctl("list_vhosts").split():
        _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")


def delete_vhost(vhost: str) -> None:
    if vhost in _rabbitmqctl("list_vhosts").split():
        _rabbitmqctl("delete_vhost", vhost)
