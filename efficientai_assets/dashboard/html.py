"""The HTML frame of every page: navigation, tables, links, store-down banners and the Plotly
charts (their figures embedded as JSON and drawn by ``/static/dashboard.js``).

Everything from a store is escaped; links are only relative or http(s).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from typing import Any

PAGES = (
    ("/", "Overview"),
    ("/experiments", "Experiments"),
    ("/models", "Models"),
    ("/monitoring", "Monitoring"),
    ("/hardware", "Hardware"),
    ("/alerts", "Alerts"),
)

STYLE = """
body{font-family:system-ui,-apple-system,sans-serif;margin:0;color:#1d232b;background:#f6f7f9}
header{background:#1d2a3a;color:#fff;padding:10px 24px;display:flex;gap:18px;align-items:center}
header a{color:#cfe0f5;text-decoration:none}header a.on{color:#fff;font-weight:600}
main{padding:16px 24px}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;background:#fff;margin:8px 0 16px;font-size:.9em}
th,td{border:1px solid #dde2e8;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}.down{background:#fde8e8;border:1px solid #e0a0a0;padding:8px 12px}
.open{color:#b00020;font-weight:600}.ok{color:#1b7a3a}.muted{color:#6b7580}
.chart{background:#fff;border:1px solid #dde2e8;margin:8px 0;min-height:340px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid #dde2e8;
padding:8px 14px}.card b{display:block;font-size:1.5em}
"""

BOOT_JS = """
document.querySelectorAll("div.chart").forEach(function (el) {
  var source = document.getElementById(el.dataset.figure);
  var figure = JSON.parse(source.textContent);
  Plotly.newPlot(el, figure.data, figure.layout, {displaylogo: false, responsive: true});
});
"""


def esc(value: object) -> str:
    """Text for HTML; missing values show as a dash."""
    if value is None or value == "":
        return "—"
    return html.escape(str(value))


def number(value: object, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return esc(value)
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def link(url: object, text: object) -> str:
    target = str(url or "")
    if not target.startswith(("/", "http://", "https://")):
        return esc(text)
    return f'<a href="{html.escape(target, quote=True)}">{esc(text)}</a>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str = "nothing yet") -> str:
    """A table of cells that are already HTML (escape with ``esc`` when building them)."""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="muted">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def down(section: dict[str, Any], what: str) -> str | None:
    """The banner of a section whose store is down, or None when it is up."""
    if section.get("status") != "down":
        return None
    return (
        f'<div class="down" data-store="{esc(section.get("store"))}"><b>{esc(what)}: '
        f"{esc(section.get('store'))} is down</b> — {esc(section.get('error'))}</div>"
    )


class Charts:
    """Numbers the figures of one page and embeds each as JSON beside its div."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, figure: dict[str, Any], name: str) -> str:
        self.count += 1
        figure_id = f"figure-{self.count}"
        # ``</`` must not close the script element that carries the JSON.
        payload = json.dumps(figure, allow_nan=False, default=str).replace("</", "<\\/")
        return (
            f'<div class="chart" id="chart-{esc(name)}" data-figure="{figure_id}"></div>'
            f'<script type="application/json" id="{figure_id}">{payload}</script>'
        )


def page(title: str, path: str, body: str, charts: bool = True) -> str:
    nav = "".join(
        f'<a href="{href}"{" class=on" if href == path else ""}>{esc(name)}</a>'
        for href, name in PAGES
    )
    api = "/api/overview" if path == "/" else f"/api{path}"
    scripts = (
        '<script src="/static/plotly.min.js"></script><script src="/static/dashboard.js"></script>'
        if charts
        else ""
    )
    return (
        # No favicon request: a page makes no request the dashboard does not answer.
        '<!doctype html><html lang=en><head><meta charset=utf-8><link rel=icon href="data:,">'
        f"<title>{esc(title)} · efficientai</title><style>{STYLE}</style></head><body>"
        f'<header><b>efficientai</b>{nav}<a href="{api}">JSON</a>'
        '<a href="/health">health</a></header>'
        f"<main><h1>{esc(title)}</h1>{body}</main>{scripts}</body></html>"
    )


def login_page(message: str = "") -> str:
    note = f'<p class="open">{esc(message)}</p>' if message else ""
    body = (
        f"{note}<p>This dashboard needs its token (the server's EFFICIENTAI_DASHBOARD_TOKEN).</p>"
        '<form method="post" action="/login"><input type="password" name="token" '
        'autocomplete="current-password" autofocus> <button type="submit">Open</button></form>'
    )
    return page("Sign in", "/login", body, charts=False)
