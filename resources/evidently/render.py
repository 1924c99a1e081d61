"""The Evidently report of a drift verdict, rendered in a child process once the verdict is out.

A drift step decides from statistics computed directly (:mod:`resources.evidently.direct`) and
writes ``<stem>.json`` with the verdict at once; the HTML report, the product's artifact for a
person, needs Evidently (seconds to import, about a second of fixed work per report), so
:func:`start_render` hands it to ``python -m resources.evidently.render <request>``, a detached
child that must finish within ``timeout_seconds`` (it stops itself). The child runs Evidently on
the same profile and rows, writes ``<stem>.html`` through a temporary file, then rewrites
``<stem>.json`` whole with Evidently's metrics added and whether Evidently reached the same
verdict column by column (it must: tests hold the two to it). A failure leaves the verdict as it
was, with ``report.status = "failed"`` and the reason. :func:`wait_for_report` waits for either.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from resources.evidently.types import DriftResult, DriftSchema, DriftSettings, write_text_atomic

RENDERING, RENDERED, FAILED = "rendering", "rendered", "failed"
DEFAULT_TIMEOUT_SECONDS = 600.0


def report_paths(folder: Path, stem: str) -> tuple[Path, Path]:
    return folder / f"{stem}.html", folder / f"{stem}.json"


def start_render(
    result: DriftResult,
    schema: DriftSchema,
    *,
    profile_folder: Path,
    current_path: Path,
    folder: Path,
    stem: str = "drift",
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> tuple[Path, Path]:
    """Write ``<stem>.json`` (the verdict, report ``rendering``) and start the child that renders
    ``<stem>.html`` from the stored profile in ``profile_folder`` and the batch at
    ``current_path``. Returns both paths; the HTML exists once the child is done."""
    folder.mkdir(parents=True, exist_ok=True)
    html_path, json_path = report_paths(folder, stem)
    render_id = uuid.uuid4().hex
    request = {
        "render_id": render_id,
        "profile_folder": str(profile_folder),
        "current_path": str(current_path),
        "schema": schema.to_json(),
        "settings": result.settings.to_json(),
        "folder": str(folder),
        "stem": stem,
        "timeout_seconds": timeout_seconds,
        "summary": result.summary(),
    }
    request_path = folder / f".{stem}.render-request.json"
    write_text_atomic(request_path, json.dumps(request))
    report = {"status": RENDERING, "html": str(html_path), "render_id": render_id}
    _write_document(json_path, result.summary(), None, report)
    with open(folder / f".{stem}.render.log", "wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "resources.evidently.render", str(request_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives the step; bounded by its own timeout
        )
    write_text_atomic(folder / f".{stem}.render.pid", f"{child.pid} {render_id}")
    return html_path, json_path


def rendering_alive(folder: Path, stem: str = "drift") -> bool:
    """Whether the report is still being rendered by a live child for the current verdict (so a
    step may answer from its record now; the HTML follows)."""
    _, json_path = report_paths(folder, stem)
    report = report_status(json_path)
    try:
        pid, render_id = (folder / f".{stem}.render.pid").read_text().split()
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    return report.get("status") == RENDERING and report.get("render_id") == render_id


def report_status(json_path: Path) -> dict[str, Any]:
    """The ``report`` entry of a verdict document (``{}`` when unreadable or absent)."""
    try:
        report = json.loads(json_path.read_text()).get("report")
    except (OSError, ValueError, AttributeError):
        return {}
    return report if isinstance(report, dict) else {}


def is_current(json_path: Path, render_id: str) -> bool:
    """Whether the verdict document still belongs to the render ``render_id``."""
    return report_status(json_path).get("render_id") == render_id


def wait_for_report(folder: Path, stem: str = "drift", timeout_seconds: float = 300.0) -> str:
    """Wait until the child has rendered or failed; returns the status (``rendering`` when the
    wait ran out)."""
    _, json_path = report_paths(folder, stem)
    deadline = time.monotonic() + timeout_seconds
    while True:
        status = str(report_status(json_path).get("status", RENDERED))
        if status != RENDERING or time.monotonic() >= deadline:
            return status
        time.sleep(0.2)


def _write_document(
    json_path: Path, summary: dict[str, Any], evidently: Any, report: dict[str, Any]
) -> None:
    document = {"summary": summary, "evidently": evidently, "report": report}
    write_text_atomic(json_path, json.dumps(document, indent=1))


def _disagreements(summary: dict[str, Any], rendered: DriftResult) -> list[str]:
    """Columns on which Evidently's verdict differs from the one the step gave."""
    ours = {c["column"]: bool(c["drifted"]) for c in summary.get("columns", [])}
    return [c.column for c in rendered.columns if ours.get(c.column) != c.drifted]


def render(request: dict[str, Any]) -> dict[str, Any]:
    """Run Evidently on the request's profile and batch, write the HTML, rewrite the JSON."""
    import pandas as pd

    from resources.evidently.engine import compute_drift
    from resources.evidently.profile import load_profile

    folder, stem = Path(request["folder"]), str(request["stem"])
    html_path, json_path = report_paths(folder, stem)
    profile = load_profile(Path(request["profile_folder"]))
    if profile is None:
        raise RuntimeError(f"no stored reference profile in {request['profile_folder']}")
    schema = DriftSchema.from_json(request["schema"])
    settings = DriftSettings(**request["settings"])
    current = pd.read_parquet(request["current_path"])
    rendered = compute_drift(profile, current, schema, settings)
    tmp_html = folder / f".{stem}.html.{os.getpid()}.tmp"
    rendered.snapshot.save_html(str(tmp_html))
    if not is_current(json_path, request["render_id"]):
        tmp_html.unlink(missing_ok=True)  # a later verdict replaced this one: its child renders
        return {"status": "superseded"}
    os.replace(tmp_html, html_path)
    differences = _disagreements(request["summary"], rendered)
    report = {
        "status": RENDERED,
        "html": str(html_path),
        "render_id": request["render_id"],
        "evidently_agrees": not differences,
        "evidently_drifted_differently": differences,
    }
    _write_document(json_path, request["summary"], json.loads(rendered.snapshot.json()), report)
    return report


def _timed_out(signum: int, frame: Any) -> None:
    raise TimeoutError("the report took longer than its timeout_seconds")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m resources.evidently.render <request.json>", file=sys.stderr)
        return 2
    request_path = Path(args[0])
    request = json.loads(request_path.read_text())
    signal.signal(signal.SIGALRM, _timed_out)
    signal.alarm(max(1, int(float(request.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)))))
    _, json_path = report_paths(Path(request["folder"]), str(request["stem"]))
    try:
        render(request)
    except Exception as error:  # the verdict stands; say why there is no report
        failed = {"status": FAILED, "error": f"{type(error).__name__}: {error}"}
        if is_current(json_path, request["render_id"]):
            _write_document(json_path, request["summary"], None, failed)
        print(f"drift report not rendered: {error}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
        request_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
