"""Run the benchmarks and write ``benchmarks/results/<latest|quick>.{json,md}``.

    python -m benchmarks                 # full sizes -> results/latest.*
    python -m benchmarks --quick         # small sizes, a couple of minutes -> results/quick.*
    python -m benchmarks --only drift --only dvc_versioning
    python -m benchmarks --list

Adding a benchmark: create ``benchmarks/bench_<name>.py`` with ``TITLE = "..."`` and
``def run(ctx: Context) -> list[Row]``; it is discovered by name. Re-running some benchmarks
replaces only their rows in the results file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks.harness import REPO_ROOT, Row, not_measured, write_results

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results"
PREFIX = "bench_"


@dataclass(frozen=True)
class Context:
    """What a benchmark gets: the size mode and a scratch folder removed afterwards."""

    quick: bool
    scratch: Path

    def log(self, message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)


def discover() -> dict[str, ModuleType]:
    """``bench_<name>`` modules in this package, by name, in file order."""
    package_dir = Path(__file__).parent
    names = sorted(
        m.name[len(PREFIX) :]
        for m in pkgutil.iter_modules([str(package_dir)])
        if m.name.startswith(PREFIX)
    )
    return {name: importlib.import_module(f"benchmarks.{PREFIX}{name}") for name in names}


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    from efficientai_assets.defs.training.blas import describe_blas

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        sha = ""
    versions = {}
    for dist in ("mlx", "numpy", "torch", "mlflow", "evidently", "dvc", "dagster", "scipy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "absent"
    try:
        import psutil

        memory = f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    except ImportError:
        memory = "unknown"
    blas = describe_blas()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "training_blas": f"{blas.source} ({blas.library})",
        "git": sha or "unknown",
        "versions": " ".join(f"{k}={v}" for k, v in versions.items()),
    }


def main(argv: list[str] | None = None, benchmarks: dict[str, ModuleType] | None = None) -> int:
    """The command line; ``benchmarks`` replaces discovery (for the harness's own tests)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (a couple of minutes)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this benchmark (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)

    available = discover() if benchmarks is None else benchmarks
    if args.list:
        for name, module in available.items():
            print(f"{name:20} {module.TITLE}")
        return 0
    unknown = sorted(set(args.only) - available.keys())
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {sorted(available)}")
    selected = {n: m for n, m in available.items() if not args.only or n in args.only}

    stem = "quick" if args.quick else "latest"
    machine = machine_info()
    failures = 0
    for name, module in selected.items():
        print(f"[{name}] {module.TITLE}", file=sys.stderr, flush=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"efficientai-bench-{name}-"))
        started = time.perf_counter()
        try:
            rows: list[Row] = module.run(Context(quick=args.quick, scratch=scratch))
        except Exception as error:  # one broken benchmark must not lose the others' results
            failures += 1
            traceback.print_exc()
            rows = [
                not_measured(
                    name,
                    "run",
                    status="error",
                    note=f"{type(error).__name__}: "
                    f"{str(error).splitlines()[-1] if str(error) else ''}",
                )
            ]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        section = {
            "title": module.TITLE,
            "mode": stem,
            "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": round(time.perf_counter() - started, 1),
            "machine": machine,
            "rows": rows,
        }
        _, md_path = write_results(args.out, stem, {name: section}, machine)
        print(f"  -> {md_path}", file=sys.stderr, flush=True)
    print(md_path.read_text() if selected else "nothing selected")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
