"""Measuring in other processes: peak RSS, children that run one function in a fresh interpreter,
children that take turns with each other, and timed commands."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.harness import (
    CHILD_RESULT_MARKER,
    CHILD_STEP_MARKER,
    REPO_ROOT,
    BenchmarkError,
)


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
        self.stderr = {name: tempfile.TemporaryFile("w+") for name in children}  # noqa: SIM115 - closed in close()
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
