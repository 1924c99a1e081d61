"""The client's edge: any error from underneath leaves as an ``MLOpsClientError``.

``translate`` maps an exception of the tools the client drives (MLflow, DVC, Evidently, BentoML,
the standard library) to the client's error of the same meaning (``errors.py``), keeping the
message and chaining the original. MLflow's exceptions become ``TrackingError`` naming the action,
the run and the tracking URI, with any password removed. ``guarded`` applies it to a method or
function; a user's own exception raised inside a ``start_run`` block is never translated.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit

from efficientai_assets.client.errors import (
    ArgumentTypeError,
    DatasetVersioningError,
    DriftInputError,
    InvalidArgumentError,
    MLOpsClientError,
    PathNotFoundError,
    TrackingError,
)
from resources.dvc.resource import DvcVersioningError
from resources.evidently.types import DriftInputError as FrameError

P = ParamSpec("P")
R = TypeVar("R")


class ErrorContext(Protocol):
    """What an object offers the translation: its tracking URI, secrets and current run."""

    def error_context(self) -> dict[str, Any]: ...


def redact(text: str, uri: str | None = None, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the URI's password and every given secret replaced by ``***``."""
    hidden = [urlsplit(uri).password if uri else None, *secrets]
    for secret in hidden:
        if secret:
            text = text.replace(secret, "***")
    return text


def _is_mlflow_error(error: BaseException) -> bool:
    return any(kind.__module__.startswith("mlflow") for kind in type(error).__mro__)


def translate(
    error: Exception,
    action: str,
    *,
    uri: str | None = None,
    display_uri: str | None = None,
    run_id: str | None = None,
    secrets: Iterable[str | None] = (),
) -> MLOpsClientError:
    """The client's error for ``error`` raised while doing ``action`` (already one: itself)."""
    if isinstance(error, MLOpsClientError):
        return error
    hidden = tuple(secrets)
    message = redact(str(error) or type(error).__name__, uri, hidden)
    if _is_mlflow_error(error):
        where = f" (run {run_id})" if run_id else ""
        store = display_uri or (redact(uri, uri, hidden) if uri else "the tracking store")
        return TrackingError(f"cannot {action}{where}: MLflow at {store} answered: {message}")
    if isinstance(error, FrameError):
        return DriftInputError(message)
    if isinstance(error, DvcVersioningError):
        return DatasetVersioningError(message)
    if isinstance(error, FileNotFoundError):
        return PathNotFoundError(message)
    if isinstance(error, TypeError):
        return ArgumentTypeError(message)
    if isinstance(error, ValueError):
        return InvalidArgumentError(message)
    return MLOpsClientError(f"cannot {action}: {type(error).__name__}: {message}")


def _context_of(owner: object) -> dict[str, Any]:
    method = getattr(owner, "error_context", None)
    if method is None:
        return {}
    try:
        return dict(method())
    except Exception:  # a half-built object (its __init__ failed) has no context yet
        return {}


def guarded(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Translate what a method (or function) raises into the client's errors. A method's owner
    may offer ``error_context()`` (tracking URI, run id, secrets) for the message."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except MLOpsClientError:
                raise
            except Exception as error:
                context = _context_of(args[0]) if args else {}
                raise translate(error, action, **context) from error

        return wrapper

    return decorate


async def guarded_await(awaitable: Awaitable[R], action: str, context: dict[str, Any]) -> R:
    """Await ``awaitable``, translating what it raises (for calls that return a coroutine)."""
    try:
        return await awaitable
    except MLOpsClientError:
        raise
    except Exception as error:
        raise translate(error, action, **context) from error
