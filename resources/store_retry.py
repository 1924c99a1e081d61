"""Retry a step when a store fails transiently, and only then.

A SQLite store busy with another writer ("database is locked"), a tracking server that is
restarting (connection refused, 502/503/504, 429) or a DVC lock held by another command are
worth another attempt a little later; a data error (a bad value, a missing column, a refused
model) fails the same way every time, and retrying it only hides it. ``is_transient`` tells them
apart by the error's type and cause chain; ``retry_transient_store_errors`` wraps a step so that
a transient error becomes Dagster's ``RetryRequested`` (exponential backoff with jitter, at most
``MAX_RETRIES`` more attempts) while every other error fails the step as before.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast, overload

import dagster as dg

MAX_RETRIES = 3
BASE_DELAY_SECONDS = 2.0
MAX_DELAY_SECONDS = 30.0
# Each wait is the exponential delay times a factor drawn from [1 - JITTER, 1 + JITTER], so
# steps that failed together do not retry together.
JITTER = 0.5

# Errors that are data errors whatever caused them: never retried.
_DATA_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    LookupError,
    AssertionError,
    ArithmeticError,
)
# Exception classes (by name, in the MRO) of network and lock failures in the libraries the
# stores use: requests, urllib3, http.client, DVC.
_TRANSIENT_CLASS_NAMES = frozenset(
    {
        "ConnectTimeout",
        "ReadTimeout",
        "NewConnectionError",
        "MaxRetryError",
        "ProtocolError",
        "RemoteDisconnected",
        "IncompleteRead",
        "LockError",  # dvc.lock.LockError: another DVC command holds the repository
    }
)
_TRANSIENT_MODULES = ("requests", "urllib3", "http", "dvc")
# Messages of driver errors (sqlite3, SQLAlchemy, psycopg2, MLflow's wrapping of them) that
# describe a busy or unreachable store rather than the data.
_TRANSIENT_MESSAGE = re.compile(
    r"database is locked|database table is locked|database schema is locked"
    r"|could not connect to server|connection refused|connection reset"
    r"|server closed the connection unexpectedly|terminating connection due to administrator"
    r"|failed with error code (?:429|502|503|504)\b",
    re.IGNORECASE,
)
# MLflow's HTTP statuses of a busy or restarting server.
_TRANSIENT_HTTP_STATUSES = frozenset({429, 502, 503, 504})


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, then what caused it (``__cause__``, else ``__context__``), at most 16 deep."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _transient_by_itself(error: BaseException) -> bool:
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    for cls in type(error).__mro__:
        if cls.__name__ in _TRANSIENT_CLASS_NAMES and cls.__module__.startswith(_TRANSIENT_MODULES):
            return True
        if cls.__name__ in ("ConnectionError", "Timeout") and cls.__module__.startswith("requests"):
            return True
    status = getattr(error, "get_http_status_code", None)
    if callable(status):
        try:
            if int(status()) in _TRANSIENT_HTTP_STATUSES:
                return True
        except (TypeError, ValueError):
            pass
    is_driver_error = any(
        cls.__name__ in ("OperationalError", "MlflowException", "InterfaceError")
        for cls in type(error).__mro__
    )
    return is_driver_error and bool(_TRANSIENT_MESSAGE.search(str(error)))


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is a store being busy or unreachable (worth retrying), judged on the
    error and its causes. A data error (``ValueError``, ``TypeError``, ``LookupError``, ...) at
    the top is never transient, whatever it was raised from."""
    if isinstance(error, _DATA_ERRORS) or not isinstance(error, Exception):
        return False
    return any(_transient_by_itself(link) for link in _chain(error))


def backoff_seconds(
    retry_number: int,
    base_delay_seconds: float = BASE_DELAY_SECONDS,
    rng: random.Random | None = None,
) -> float:
    """The wait before retry ``retry_number + 1``: exponential, capped, with jitter."""
    delay = min(MAX_DELAY_SECONDS, base_delay_seconds * 2**retry_number)
    factor = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return delay * factor


F = TypeVar("F", bound=Callable[..., Any])


def _context_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    candidate = kwargs.get("context", args[0] if args else None)
    return candidate if hasattr(candidate, "retry_number") else None


@overload
def retry_transient_store_errors(step: F) -> F: ...


@overload
def retry_transient_store_errors(
    *, max_retries: int = ..., base_delay_seconds: float = ...
) -> Callable[[F], F]: ...


def retry_transient_store_errors(
    step: F | None = None,
    *,
    max_retries: int = MAX_RETRIES,
    base_delay_seconds: float = BASE_DELAY_SECONDS,
) -> F | Callable[[F], F]:
    """Decorate a step function (under ``@dg.asset``/``@dg.op``, taking ``context`` first): a
    transient store error is retried, at most ``max_retries`` times, after an exponential wait
    from ``base_delay_seconds`` with jitter; any other error propagates as it is (no retry).
    Use bare (``@retry_transient_store_errors``) or with arguments."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except (dg.RetryRequested, dg.Failure):
                raise
            except Exception as error:
                context = _context_of(args, kwargs)
                if context is None or not is_transient(error):
                    raise
                retry_number = int(context.retry_number)
                if retry_number >= max_retries:
                    raise
                wait = backoff_seconds(retry_number, base_delay_seconds)
                first_line = str(error).splitlines()[0][:300] if str(error) else ""
                context.log.warning(
                    "transient store error (%s), attempt %d of %d; retrying in %.1f s: %s",
                    type(error).__name__,
                    retry_number + 1,
                    max_retries + 1,
                    wait,
                    first_line,
                )
                raise dg.RetryRequested(max_retries=max_retries, seconds_to_wait=wait) from error

        return cast(F, wrapper)

    return decorate(step) if step is not None else decorate
