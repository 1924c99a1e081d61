"""The dashboard's settings: which stores it reads (``operations.stores``), where it binds, its
optional token, and the knobs of its pages. Everything comes from the environment (``make
dashboard`` passes the home); tests build one for a given home with ``for_locations``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from efficientai_assets.operations.stores import StoreLocations

DEFAULT_TOKEN_ENV = "EFFICIENTAI_DASHBOARD_TOKEN"


@dataclass(frozen=True)
class DashboardSettings:
    """What the dashboard reads and how it serves it."""

    stores: StoreLocations
    host: str = "127.0.0.1"
    port: int = 8000
    namespaces: tuple[str, ...] = ()  # empty: every namespace found in the stores
    token_env: str = DEFAULT_TOKEN_ENV
    cache_seconds: float = 10.0
    stale_seconds: float = 300.0  # an expired page is served (and rebuilt behind it) this long
    page_size: int = 20
    hold_alert_seconds: float = 600.0
    events_per_asset: int = 500
    dagster_ui_url: str = "http://127.0.0.1:3000"
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    timeout_seconds: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DashboardSettings:
        env = os.environ if environ is None else environ
        return cls.for_locations(StoreLocations.from_env(env), env)

    @classmethod
    def for_locations(
        cls, stores: StoreLocations, environ: Mapping[str, str] | None = None
    ) -> DashboardSettings:
        env = os.environ if environ is None else environ
        token_env = env.get("EFFICIENTAI_DASHBOARD_TOKEN_ENV", DEFAULT_TOKEN_ENV)
        if not token_env.replace("_", "").isalnum():
            raise ValueError(
                f"EFFICIENTAI_DASHBOARD_TOKEN_ENV must name an environment variable, got "
                f"{token_env!r}"
            )
        namespaces = tuple(
            n.strip() for n in env.get("DASHBOARD_NAMESPACES", "").split(",") if n.strip()
        )
        return cls(
            stores=stores,
            host=env.get("DASHBOARD_HOST", "127.0.0.1"),
            port=_int(env, "DASHBOARD_PORT", 8000, maximum=65535),
            namespaces=namespaces,
            token_env=token_env,
            cache_seconds=_float(env, "DASHBOARD_CACHE_SECONDS", 10.0),
            stale_seconds=_float(env, "DASHBOARD_STALE_SECONDS", 300.0),
            page_size=_int(env, "DASHBOARD_PAGE_SIZE", 20, minimum=1),
            events_per_asset=_int(env, "DASHBOARD_EVENTS_PER_ASSET", 500, minimum=1),
            hold_alert_seconds=_float(env, "DASHBOARD_HOLD_ALERT_SECONDS", 600.0),
            dagster_ui_url=env.get("DAGSTER_UI_URL", "http://127.0.0.1:3000").rstrip("/"),
            mlflow_ui_url=env.get("MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/"),
        )

    def token(self) -> str | None:
        """The bearer token, read when asked (never stored in settings, logs or pages)."""
        return os.environ.get(self.token_env) or None


def _int(
    env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value
