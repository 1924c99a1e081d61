"""DVC versioning vs a raw md5 of the same bytes: one large file, and many small files.

The product's path is ``DvcResource.version`` (``dvc add`` → ``dvc push`` to the local remote →
``git commit`` of the pointer); ``dvc add`` alone is shown too, to separate hashing and caching from
the push. Every repetition versions into a fresh registry (so nothing is already cached), from the
same bytes hard-linked in, with the page cache warm for both sides and dirty pages flushed before
each timed operation. Target: ≤ 1.5× md5.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Target, compare, median
from benchmarks.processes import run_child

if TYPE_CHECKING:
    from benchmarks.harness import Row
    from benchmarks.run import Context

TITLE = "DVC versioning vs raw md5"
NAME = "dvc_versioning"
TARGET = Target("<=", 1.5)
CHUNK = 1 << 20


def _md5_tree(path: Path) -> int:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    total = 0
    for file in files:
        digest = hashlib.md5(usedforsecurity=False)
        with open(file, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
                total += len(chunk)
    return total


def _link_into(source: Path, target: Path) -> None:
    if source.is_file():
        os.link(source, target)
    else:
        shutil.copytree(source, target, copy_function=os.link)


def version_child(data: str, work: str, reps: int) -> dict[str, Any]:
    """In a child: md5 baseline, ``DvcResource.version`` and ``Repo.add`` on fresh registries.

    Dirty pages are flushed before every timed operation and the two DVC operations alternate
    their order, so neither pays for the other's write-back.
    """
    from dvc.repo import Repo

    from resources.dvc.resource import DvcResource

    source, work_dir = Path(data), Path(work)
    _md5_tree(source)  # warm-up: the page cache holds the bytes for every side below

    def timed(operation: Callable[[], object]) -> float:
        os.sync()
        started = time.perf_counter()
        operation()
        return time.perf_counter() - started

    def version(rep: int) -> float:
        registry = DvcResource(
            repo_path=str(work_dir / f"registry-{rep}"), remote_url=str(work_dir / f"remote-{rep}")
        )
        root = registry.ensure_repo()
        _link_into(source, root / source.name)
        return timed(lambda: registry.version(source.name, "benchmark version"))

    def add_only(rep: int) -> float:
        registry = DvcResource(
            repo_path=str(work_dir / f"add-{rep}"), remote_url=str(work_dir / f"addremote-{rep}")
        )
        root = registry.ensure_repo()
        _link_into(source, root / source.name)
        with Repo(str(root)) as repo:
            return timed(lambda: repo.add(str(root / source.name)))

    times: dict[str, list[float]] = {"md5": [], "version": [], "add": []}
    for rep in range(reps + 1):  # rep 0 is the warm-up (lazy imports inside DVC)
        measured = {"md5": timed(lambda: _md5_tree(source))}
        order = [("version", version), ("add", add_only)]
        for name, operation in order if rep % 2 else order[::-1]:
            measured[name] = operation(rep)
        for folder in work_dir.iterdir():
            if folder.name.startswith(("registry-", "remote-", "add-", "addremote-")):
                shutil.rmtree(folder, ignore_errors=True)
        if rep:
            for name, seconds in measured.items():
                times[name].append(seconds)
    return times


def _write_large(path: Path, size: int) -> None:
    block = os.urandom(CHUNK)
    with open(path, "wb") as f:
        for i in range(size // CHUNK):
            # distinct blocks, so no filesystem or cache can deduplicate them
            f.write(i.to_bytes(8, "little") + block[8:])


def _write_small(folder: Path, count: int) -> None:
    folder.mkdir()
    for i in range(count):
        sub = folder / f"{i // 1000:02d}"
        sub.mkdir(exist_ok=True)
        (sub / f"item-{i:05d}.json").write_bytes(os.urandom(512 + (i % 7) * 256))


def _case(
    ctx: Context, case: str, source: Path, reps: int, size_label: str, target: Target | None
) -> list[Row]:
    ctx.log(f"{case}: {reps} reps")
    child = run_child(
        "benchmarks.bench_dvc_versioning:version_child",
        {"data": str(source), "work": str(ctx.scratch), "reps": reps},
    )
    md5 = median(child.data["md5"])
    add = median(child.data["add"])
    note = f"{size_label}; median of {reps}; fresh registry per rep"
    version = compare(
        NAME,
        f"{case}: DvcResource.version (add+push+commit)",
        subject="version",
        subject_value=median(child.data["version"]),
        baseline="raw md5",
        baseline_value=md5,
        unit="s",
        target=target,
        peak_rss_mb=child.peak_rss_mb,
        note=note,
        extra=child.data,
    )
    if version.met is False:
        version.note += (
            "; limited by work beyond hashing: DVC copies the bytes into its cache, the push "
            "copies them again to the remote, and git commits the pointer"
        )
    only_add = compare(
        NAME,
        f"{case}: dvc add only",
        subject="dvc add",
        subject_value=add,
        baseline="raw md5",
        baseline_value=md5,
        unit="s",
        peak_rss_mb=child.peak_rss_mb,
        note=note,
    )
    return [version, only_add]


def run(ctx: Context) -> list[Row]:
    size = (64 if ctx.quick else 1024) * CHUNK
    count = 500 if ctx.quick else 10_000
    reps = 2 if ctx.quick else 5
    large = ctx.scratch / "dataset.bin"
    _write_large(large, size)
    rows = _case(ctx, f"one {size // CHUNK} MiB file", large, reps, f"{size // CHUNK} MiB", TARGET)
    large.unlink()
    small = ctx.scratch / "many"
    _write_small(small, count)
    rows += _case(ctx, f"{count:,} small files", small, reps, f"{count:,} files of 0.5–2 KiB", None)
    return rows
