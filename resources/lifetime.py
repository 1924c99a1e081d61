"""A child process never outlives the process that started it.

When a run process is killed outright (``kill -9``, the OOM killer, a power cut) it cannot stop
its children, and a training child left running holds the CPU, memory and files of a run that
no longer exists. Two mechanisms, both used:

- the parent-death signal (Linux ``prctl(PR_SET_PDEATHSIG)``): the kernel sends the child
  SIGKILL the moment its parent dies, with no cooperation from the child;
- a watchdog thread in the child that ends it within a second of its parent's death on any
  POSIX system (macOS has no parent-death signal): the child notices it has been re-parented.

A child whose code is ours calls ``bind_to_parent`` first thing, with the parent's pid passed in
``PARENT_PID_ENV`` (so a parent that died before the child started is noticed too). A command
whose code is not ours is started with ``preexec_fn=die_with_parent()``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

PARENT_PID_ENV = "EFFICIENTAI_PARENT_PID"
_PR_SET_PDEATHSIG = 1
# How often the orphan watchdog looks at its parent.
ORPHAN_POLL_SECONDS = 0.5


def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` on Linux, else None (loaded before any fork: never inside a child)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    prctl: Callable[..., int] = ctypes.CDLL(name, use_errno=True).prctl
    return prctl


def die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: the kernel kills the child when the calling
    process dies (Linux; a no-op elsewhere). Start the child from a thread that lives as long as
    the child (the signal follows the thread), and from a parent with no other threads running
    Python code, as ``preexec_fn`` requires."""
    parent = os.getpid()
    prctl = _prctl()

    def set_death_signal() -> None:  # runs in the child, between fork and exec
        if prctl is None:
            return
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return set_death_signal


def child_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) plus this process's pid, for a child that
    calls ``bind_to_parent``."""
    return {**(dict(os.environ) if env is None else env), PARENT_PID_ENV: str(os.getpid())}


def bind_to_parent(parent_pid: int | None = None, exit_code: int = 1) -> None:
    """In a child: die with the parent. Arms the parent-death signal (Linux), ends at once if the
    parent is already gone, and starts a watchdog thread for the systems without the signal.
    ``parent_pid``: the parent to follow (default: ``PARENT_PID_ENV``, else the current one)."""
    configured = os.environ.get(PARENT_PID_ENV, "")
    expected = parent_pid or (int(configured) if configured.isdigit() else os.getppid())
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != expected:
        os._exit(exit_code)
    exit_when_orphaned(expected, exit_code)


def exit_when_orphaned(parent_pid: int | None = None, exit_code: int = 1) -> threading.Thread:
    """Start a daemon thread that ends this process (``os._exit``) as soon as its parent is gone,
    i.e. when it has been re-parented. ``parent_pid``: the parent to watch (default: the current
    one). Returns the thread (already started)."""
    expected = parent_pid if parent_pid is not None else os.getppid()

    def watch() -> None:
        while True:
            if os.getppid() != expected:
                os._exit(exit_code)
            time.sleep(ORPHAN_POLL_SECONDS)

    thread = threading.Thread(target=watch, name="exit-when-orphaned", daemon=True)
    thread.start()
    return thread
