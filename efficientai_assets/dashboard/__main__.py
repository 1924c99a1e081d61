"""``python -m efficientai_assets.dashboard`` (``make dashboard``): serve the dashboard.

Binds ``DASHBOARD_HOST`` (127.0.0.1) on ``DASHBOARD_PORT`` (8000). The stores are read once
before the server listens (imports and every page), so the first visitor waits for nothing;
afterwards an expired page is rebuilt behind the request that finds it expired.
"""

from __future__ import annotations

import argparse
import sys
import time

from efficientai_assets.dashboard.settings import DashboardSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m efficientai_assets.dashboard",
        description="Serve the dashboard over the home's stores (read-only).",
    )
    parser.add_argument("--host", help="bind address (default DASHBOARD_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default DASHBOARD_PORT or 8000)")
    args = parser.parse_args(argv)
    try:
        settings = DashboardSettings.from_env()
    except ValueError as error:
        print(f"dashboard: {error}", file=sys.stderr)
        return 2
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.token():
        print(
            f"dashboard: binding {host} with no token: anyone who reaches it reads every store. "
            f"Set {settings.token_env} to require one.",
            file=sys.stderr,
        )

    import uvicorn

    from efficientai_assets.dashboard.app import create_app, warm

    app = create_app(settings)
    started = time.perf_counter()
    warm(app.state.data)  # imports MLflow and Dagster, opens the stores, builds every page
    print(
        f"dashboard over {settings.stores.home.root} on http://{host}:{port} "
        f"(stores read in {time.perf_counter() - started:.1f}s)",
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
