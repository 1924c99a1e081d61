"""The shared measuring kit: repetitions and medians, child processes with peak RSS, result rows.

Every benchmark measures its baseline in the same run and reports a ratio against it, because
absolute times on a shared machine say little. A case that needs its own memory figure or its own
environment (a preloaded BLAS, a cold import) runs in a child process via :func:`run_child`.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
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


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def reset_peak_rss() -> bool:
    """Lower this process's high-water mark to its current RSS (Linux ``clear_refs``), so a later
    :func:`high_water_mb` covers only what follows; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def high_water_mb() -> float:
    """Peak RSS since the last :func:`reset_peak_rss` (Linux ``VmHWM``), else since the start."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def current_rss_mb() -> float:
    """This process's resident set size now, in MiB (the floor for a peak increment)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except OSError:
        import psutil

        return float(psutil.Process().memory_info().rss) / (1024 * 1024)


@dataclass(frozen=True)
class ChildResult:
    data: dict[str, Any]
    peak_rss_mb: float


def run_child(
    function: str,
    kwargs: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 1800,
) -> ChildResult:
    """Call ``module:function(**kwargs)`` in a fresh interpreter; return its dict and peak RSS."""
    done = subprocess.run(
        _child_command(function, kwargs),
        capture_output=True,
        text=True,
        env=_child_env(env),
        timeout=timeout,
        check=False,
        cwd=REPO_ROOT,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(CHILD_RESULT_MARKER)]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-6:])
        raise BenchmarkError(f"{function} exited with {done.returncode}: {tail}")
    payload = json.loads(lines[-1][len(CHILD_RESULT_MARKER) :])
    return ChildResult(data=payload["data"], peak_rss_mb=float(payload["peak_rss_mb"]))


def _child_command(function: str, kwargs: Mapping[str, Any] | None) -> list[str]:
    return [sys.executable, "-m", "benchmarks._child", function, json.dumps(dict(kwargs or {}))]


def _child_env(env: Mapping[str, str] | None) -> dict[str, str]:
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    return child_env


def wait_for_turn() -> None:
    """In an interleaved child: block until the parent says this child may run its next step."""
    if not sys.stdin.readline():
        raise SystemExit("benchmark parent went away")


def report_step(value: float) -> None:
    """In an interleaved child: hand one step's measurement back to the parent."""
    print(CHILD_STEP_MARKER + json.dumps(value), flush=True)


class InterleavedChildren:
    """Several warm children that take turns, one step each per round.

    On a shared machine, load changes over seconds; running one step of every configuration per
    round (only one child busy at a time, a short pause between turns so one child's idle BLAS
    threads stop spinning before the next starts) exposes all of them to the same conditions,
    which sequential runs cannot.
    """

    def __init__(
        self,
        children: Mapping[str, tuple[str, Mapping[str, Any], Mapping[str, str]]],
        pause: float = 0.2,
        timeout: float = 1800,
    ) -> None:
        self.pause, self.timeout = pause, timeout
        # stderr to files: a chatty child must never block on a full pipe nobody reads
        self.stderr = {
            name: tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in close()
            for name in children
        }
        self.procs = {
            name: subprocess.Popen(
                _child_command(function, kwargs),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr[name],
                text=True,
                env=_child_env(env),
                cwd=REPO_ROOT,
            )
            for name, (function, kwargs, env) in children.items()
        }

    def _read_marked(self, name: str, marker: str) -> str:
        proc = self.procs[name]
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(marker):
                return line[len(marker) :]
        proc.wait(timeout=self.timeout)
        self.stderr[name].seek(0)
        stderr = self.stderr[name].read()
        tail = "\n".join(stderr.strip().splitlines()[-6:])
        raise BenchmarkError(f"{name} exited with {proc.returncode}: {tail}")

    def round(self) -> dict[str, float]:
        """Each child runs one step, in turn; returns each one's reported value."""
        values = {}
        for name, proc in self.procs.items():
            time.sleep(self.pause)
            assert proc.stdin is not None
            try:
                proc.stdin.write("go\n")
                proc.stdin.flush()
            except BrokenPipeError:
                pass  # the child died: reading its output below raises with its stderr
            values[name] = float(json.loads(self._read_marked(name, CHILD_STEP_MARKER)))
        return values

    def finish(self) -> dict[str, ChildResult]:
        """Collect every child's final dict and peak RSS."""
        results = {}
        for name, proc in self.procs.items():
            assert proc.stdin is not None
            proc.stdin.close()
            payload = json.loads(self._read_marked(name, CHILD_RESULT_MARKER))
            proc.wait(timeout=self.timeout)
            results[name] = ChildResult(payload["data"], float(payload["peak_rss_mb"]))
        return results

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for handle in self.stderr.values():
            handle.close()


def time_command(
    commands: Mapping[str, Sequence[str]], *, reps: int, warmup: int = 1, timeout: float = 300
) -> dict[str, list[float]]:
    """Wall seconds of each command, interleaved rep by rep so drift hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for rep in range(warmup + reps):
        for name, argv in commands.items():
            started = time.perf_counter()
            done = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                cwd=REPO_ROOT,
            )
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                tail = "\n".join(done.stderr.strip().splitlines()[-4:])
                raise BenchmarkError(f"{name} exited with {done.returncode}: {tail}")
            if rep >= warmup:
                times[name].append(elapsed)
    return times


# -- results --------------------------------------------------------------------------------


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
