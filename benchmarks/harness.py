"""The shared measuring kit: repetitions and medians, child processes with peak RSS, result rows.

Every benchmark measures its baseline in the same run and reports a ratio against it, because
absolute times on a shared machine say little. A case that needs its own memory figure or its own
environment (a preloaded BLAS, a cold import) runs in a child process via :func:`run_child`.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

CHILD_RESULT_MARKER = "@@benchmark-result@@ "
CHILD_STEP_MARKER = "@@benchmark-step@@ "
REPO_ROOT = Path(__file__).resolve().parent.parent

Status = Literal["measured", "info", "skipped", "pending", "error"]


class BenchmarkError(RuntimeError):
    """A benchmark's child process failed; the message carries its last error lines."""


@dataclass(frozen=True)
class Target:
    """A ratio bound: ``op`` is ``>=`` (throughput-like) or ``<=`` (time/memory-like)."""

    op: Literal[">=", "<="]
    value: float

    def met(self, ratio: float) -> bool:
        return ratio >= self.value if self.op == ">=" else ratio <= self.value

    def __str__(self) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {self.value:g}×"


@dataclass
class Row:
    """One line of the results table."""

    benchmark: str
    case: str
    subject: str
    baseline: str = ""
    subject_value: float | None = None
    baseline_value: float | None = None
    unit: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    peak_rss_mb: float | None = None
    status: Status = "measured"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def compare(
    benchmark: str,
    case: str,
    *,
    subject: str,
    subject_value: float,
    baseline: str,
    baseline_value: float,
    unit: str,
    target: Target | None = None,
    peak_rss_mb: float | None = None,
    note: str = "",
    extra: Mapping[str, Any] | None = None,
) -> Row:
    """A measured row: ratio = subject / baseline, checked against ``target`` when given."""
    r = ratio(subject_value, baseline_value)
    return Row(
        benchmark=benchmark,
        case=case,
        subject=subject,
        baseline=baseline,
        subject_value=subject_value,
        baseline_value=baseline_value,
        unit=unit,
        ratio=r,
        target=str(target) if target else "",
        met=target.met(r) if target else None,
        peak_rss_mb=peak_rss_mb,
        status="measured" if target else "info",
        note=note,
        extra=dict(extra or {}),
    )


def not_measured(
    benchmark: str, case: str, *, status: Status, note: str, target: Target | None = None
) -> Row:
    """A skipped, pending or failed row: it keeps its place in the table and says why."""
    return Row(
        benchmark, case, subject="", target=str(target) if target else "", status=status, note=note
    )


def ratio(subject: float, baseline: float) -> float:
    """``subject / baseline``; refuses a baseline that is not a positive number."""
    if not baseline > 0:
        raise ValueError(f"baseline must be positive to form a ratio, got {baseline!r}")
    return subject / baseline


def median(samples: Sequence[float]) -> float:
    if not samples:
        raise ValueError("median of no samples")
    return float(statistics.median(samples))


def repeat(fn: Callable[[], object], *, reps: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``reps`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if unit == "s":
        text = f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
        return text
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def _met_cell(row: Row) -> str:
    if row.status in ("pending", "skipped", "error"):
        return row.status
    if row.met is None:
        return "info"
    return "yes" if row.met else "**no**"


def markdown_table(rows: Sequence[Row]) -> str:
    """The results as one markdown table, in the rows' order."""
    header = (
        "| Benchmark | Case | Measured | Baseline | Ratio | Target | Met | Peak RSS | Note |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for row in rows:
        measured = f"{row.subject}: {_fmt(row.subject_value, row.unit)}" if row.subject else "—"
        baseline = f"{row.baseline}: {_fmt(row.baseline_value, row.unit)}" if row.baseline else "—"
        cells = [
            row.benchmark,
            row.case,
            measured,
            baseline,
            f"{row.ratio:.2f}×" if row.ratio is not None else "—",
            row.target or "—",
            _met_cell(row),
            f"{row.peak_rss_mb:,.0f} MiB" if row.peak_rss_mb is not None else "—",
            row.note,
        ]
        lines.append(
            "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"
        )
    return header + "\n".join(lines) + "\n"


def write_results(
    out_dir: Path,
    stem: str,
    sections: Mapping[str, Mapping[str, Any]],
    machine: Mapping[str, Any],
) -> tuple[Path, Path]:
    """Merge ``sections`` (benchmark name → title, rows, timing) into ``<stem>.json`` and
    rewrite ``<stem>.md``; benchmarks not run this time keep their previous rows."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    merged: dict[str, Any] = {}
    if json_path.exists():
        try:
            merged = json.loads(json_path.read_text()).get("benchmarks", {})
        except (json.JSONDecodeError, AttributeError):
            merged = {}
    for name, section in sections.items():
        merged[name] = {
            **section,
            "rows": [asdict(r) if isinstance(r, Row) else r for r in section["rows"]],
        }
    document = {"machine": dict(machine), "benchmarks": merged}
    _atomic_write(json_path, json.dumps(document, indent=2, sort_keys=False) + "\n")

    rows = [Row(**r) for section in merged.values() for r in section["rows"]]
    parts = [
        f"# Benchmark results ({stem})\n",
        "Ratios against a baseline measured in the same run; times are medians after warm-up. "
        "Peak RSS is the measuring process's high-water mark. See docs/performance.md.\n",
        "| Benchmark | When | Took |\n|---|---|---|\n"
        + "".join(
            f"| {name} | {s.get('finished', '')} | {s.get('seconds', 0):.0f} s |\n"
            for name, s in merged.items()
        ),
        markdown_table(rows),
        "Machine: " + ", ".join(f"{k}: {v}" for k, v in machine.items()) + "\n",
    ]
    _atomic_write(md_path, "\n".join(parts))
    return json_path, md_path


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
