"""Background processes of the stack: started detached with a pid file and a log, awaited until
they answer, stopped by their own pid (never by name), and listed for ``status``.

A pid file records the pid and the process's start time, so a pid reused by an unrelated process
after a reboot is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


class StackError(RuntimeError):
    """A stack command could not do what was asked; the message says what to do next."""


@dataclass(frozen=True)
class Managed:
    """One background process the stack owns."""

    name: str
    pid: int
    log: Path
    log_offset: int = 0  # the log's size when this process started (logs are appended)

    def log_text(self) -> str:
        if not self.log.is_file():
            return ""
        with open(self.log, "rb") as handle:
            handle.seek(self.log_offset)
            return handle.read().decode(errors="replace")

    def alive(self) -> bool:
        try:
            process = psutil.Process(self.pid)
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def start(
    name: str,
    command: Sequence[str],
    env: Mapping[str, str],
    pids: Path,
    logs: Path,
    cwd: Path | None = None,
) -> Managed:
    """Start ``command`` in its own session (so stopping it stops its children too)."""
    existing = read(name, pids, logs)
    if existing is not None and existing.alive():
        return existing
    pids.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    offset = log_path.stat().st_size if log_path.is_file() else 0
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=str(cwd) if cwd else None,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    created = psutil.Process(process.pid).create_time()
    record = {"pid": process.pid, "created": created, "log_offset": offset}
    (pids / f"{name}.json").write_text(json.dumps(record))
    return Managed(name, process.pid, log_path, offset)


def read(name: str, pids: Path, logs: Path) -> Managed | None:
    """The recorded process ``name``, or None when none was recorded or its pid was reused."""
    pid_file = pids / f"{name}.json"
    if not pid_file.is_file():
        return None
    recorded = json.loads(pid_file.read_text())
    managed = Managed(name, int(recorded["pid"]), logs / f"{name}.log", recorded["log_offset"])
    try:
        if abs(psutil.Process(managed.pid).create_time() - recorded["created"]) > 1.0:
            return None  # the pid now belongs to another process
    except psutil.Error:
        pass  # gone: reported as not alive
    return managed


def recorded(pids: Path) -> list[str]:
    return sorted(path.stem for path in pids.glob("*.json")) if pids.is_dir() else []


def stop(name: str, pids: Path, logs: Path, grace_seconds: float = 15.0) -> bool:
    """SIGTERM the process group, SIGKILL what is left after ``grace_seconds``; True if it ran."""
    managed = read(name, pids, logs)
    (pids / f"{name}.json").unlink(missing_ok=True)
    if managed is None or not managed.alive():
        return False
    kill(managed, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and managed.alive():
        time.sleep(0.2)
    if managed.alive():
        kill(managed, signal.SIGKILL)
    _reap(managed.pid)
    return True


def kill(managed: Managed, sig: signal.Signals) -> None:
    """Signal the process's group (it leads its own session) and any child outside it."""
    try:
        children = psutil.Process(managed.pid).children(recursive=True)
    except psutil.Error:
        children = []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(managed.pid, sig)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.send_signal(sig)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(
    managed: Managed,
    ready: str | tuple[str, int],
    timeout_seconds: float,
    what: str,
    expect: int = 200,
) -> None:
    """Wait for an HTTP URL to answer ``expect`` (or a (host, port) to accept); fail with the
    log's tail."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if not managed.alive():
            raise StackError(f"{what} exited while starting; its log says:\n{tail(managed.log)}")
        if _answers(ready, expect):
            return
        time.sleep(0.25)
    raise StackError(
        f"{what} did not answer at {ready} within {timeout_seconds:.0f} s; "
        f"its log ({managed.log}) ends with:\n{tail(managed.log)}"
    )


def _answers(ready: str | tuple[str, int], expect: int) -> bool:
    if isinstance(ready, tuple):
        return port_open(ready[1], ready[0])
    try:
        with urllib.request.urlopen(ready, timeout=2) as response:
            return int(response.status) == expect
    except urllib.error.HTTPError as error:
        return error.code == expect
    except (OSError, ValueError):
        return False


def tail(log: Path, lines: int = 15) -> str:
    if not log.is_file():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
