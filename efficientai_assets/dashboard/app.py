"""The dashboard's FastAPI application: a page and a JSON endpoint per view, ``/health``, each
day's Evidently report, and the Plotly script, all read-only (no route writes to a store).

Auth follows the serving rules: when the variable named by ``token_env`` (default
``EFFICIENTAI_DASHBOARD_TOKEN``) is set, every request except ``/health``, ``/login`` and the
static scripts must carry ``Authorization: Bearer <token>`` — or, from a browser, the cookie that
``/login`` sets after the token was typed in (an HMAC of the token, never the token itself).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from importlib import resources as package_files
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from efficientai_assets.dashboard import pages, render
from efficientai_assets.dashboard.alerts import alerts as alerts_document
from efficientai_assets.dashboard.data import DashboardData, clean
from efficientai_assets.dashboard.files_reader import REPORT_FILES
from efficientai_assets.dashboard.html import BOOT_JS, esc, login_page, page
from efficientai_assets.dashboard.settings import DashboardSettings
from efficientai_assets.operations.probes import run_probes
from resources.home import DEFAULT_NAMESPACE

COOKIE = "efficientai_dashboard"
OPEN_PATHS = ("/health", "/login", "/static/plotly.min.js", "/static/dashboard.js")
MAX_LOGIN_BODY = 4096


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"efficientai-dashboard-session", hashlib.sha256).hexdigest()


def authorized(request: Request, token: str) -> bool:
    given = request.headers.get("authorization", "").encode()
    if hmac.compare_digest(given, f"Bearer {token}".encode()):
        return True
    cookie = request.cookies.get(COOKIE, "")
    return hmac.compare_digest(cookie.encode(), session_value(token).encode())


def plotly_js() -> bytes:
    """Plotly.js as the ``plotly`` package ships it: the dashboard needs no network."""
    return (package_files.files("plotly") / "package_data" / "plotly.min.js").read_bytes()


VIEWS: dict[str, tuple[Callable[..., dict[str, Any]], Callable[[dict[str, Any]], str]]] = {
    "overview": (pages.overview, render.overview),
    "experiments": (pages.experiments, render.experiments),
    "models": (pages.models, render.models),
    "monitoring": (pages.monitoring, render.monitoring),
    "hardware": (pages.hardware, render.hardware),
    "alerts": (alerts_document, render.alerts),
}


def page_document(
    data: DashboardData,
    view: str,
    namespace: str | None = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    """The JSON document of ``view`` (the experiments page of ``namespace`` at ``page_token``),
    from the page cache: built once, then rebuilt in the background when it expires."""
    if view == "experiments":
        return data.page(
            (view, namespace or "", page_token or ""),
            lambda: clean(pages.experiments(data, namespace, page_token)),
        )
    build = VIEWS[view][0]
    return data.page((view,), lambda: clean(build(data)))


def warm(data: DashboardData) -> None:
    """Build every page once (imports MLflow and Dagster, opens the stores, fills the cache), so
    the first visitor of any page waits for nothing; the experiments page of every namespace."""
    for view in VIEWS:
        if view != "experiments":
            page_document(data, view)
    for namespace in data.namespaces():
        page_document(data, "experiments", namespace)
    page_document(data, "experiments")


def create_app(settings: DashboardSettings) -> FastAPI:
    """The application over the stores of ``settings`` (a cache of ``cache_seconds``)."""
    data = DashboardData(settings)
    app = FastAPI(title="efficientai dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.data = data

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        token = settings.token()
        if token and request.url.path not in OPEN_PATHS and not authorized(request, token):
            if request.url.path.startswith("/api/"):
                return JSONResponse(
                    {
                        "error": "missing or wrong bearer token (send 'Authorization: Bearer "
                        "<token>')"
                    },
                    status_code=401,
                )
            return HTMLResponse(login_page(), status_code=401)
        response = await call_next(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.get("/health")
    def health() -> JSONResponse:
        probes = run_probes(settings.stores, full=False, include_dashboard=False)
        down = [p.component for p in probes if p.status == "down"]
        document = {
            "status": "down" if down else "up",
            "down": down,
            "components": [p.to_dict() for p in probes],
        }
        return JSONResponse(document, status_code=503 if down else 200)

    def failure(error: Exception, as_json: bool) -> Response:
        status = 404 if isinstance(error, pages.UnknownNamespace) else 400
        message = str(error).strip("'\"")
        if as_json:
            return JSONResponse({"error": message}, status_code=status)
        return HTMLResponse(page("Not here", "", f"<p>{esc(message)}</p>", False), status)

    def add_view(view: str, path: str) -> None:
        def as_json(request: Request) -> Response:
            try:
                return JSONResponse(document(view, request))
            except (pages.UnknownNamespace, ValueError) as error:
                return failure(error, True)

        def as_html(request: Request) -> Response:
            try:
                return HTMLResponse(VIEWS[view][1](document(view, request)))
            except (pages.UnknownNamespace, ValueError) as error:
                return failure(error, False)

        app.add_api_route(f"/api/{view}", as_json, methods=["GET"], name=f"api-{view}")
        app.add_api_route(path, as_html, methods=["GET"], name=view)

    def document(view: str, request: Request) -> dict[str, Any]:
        query = request.query_params
        return page_document(data, view, query.get("namespace"), query.get("page_token"))

    for view in VIEWS:
        add_view(view, "/" if view == "overview" else f"/{view}")

    def report_file(namespace: str, day: str, name: str) -> Response:
        path = data.files.report_path(namespace, day, name)
        if path is None:
            return JSONResponse(
                {"error": f"no report {name} for {day} in namespace {namespace}"}, status_code=404
            )
        # A report runs its own scripts: sandboxed into an origin of its own, it cannot read
        # the dashboard's pages or send requests with its cookie.
        return FileResponse(
            path,
            media_type=REPORT_FILES[name],
            headers={"Content-Security-Policy": "sandbox allow-scripts allow-popups"},
        )

    @app.get("/reports/{namespace}/{day}/{name}")
    def report(namespace: str, day: str, name: str) -> Response:
        """A namespace's report of a day, from that namespace's own reports folder."""
        return report_file(namespace, day, name)

    @app.get("/reports/{day}/{name}")
    def default_report(day: str, name: str) -> Response:
        """The default namespace's report (the links of earlier versions of the dashboard)."""
        return report_file(DEFAULT_NAMESPACE, day, name)

    @app.get("/static/plotly.min.js")
    def plotly() -> Response:
        return Response(plotly_js(), media_type="text/javascript")

    @app.get("/static/dashboard.js")
    def boot() -> Response:
        return Response(BOOT_JS, media_type="text/javascript")

    @app.get("/login")
    def login_form() -> HTMLResponse:
        return HTMLResponse(login_page())

    @app.post("/login")
    async def login(request: Request) -> Response:
        token = settings.token()
        if not token:
            return RedirectResponse("/", status_code=303)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_LOGIN_BODY:
                return HTMLResponse(login_page("request too large"), status_code=413)
        given = (parse_qs(body.decode(errors="replace")).get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HTMLResponse(login_page("wrong token"), status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, session_value(token), httponly=True, samesite="strict")
        return response

    return app
