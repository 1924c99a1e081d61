"""A child process never outlives the process that started it.

When a run process is killed outright (``kill -9``, the OOM killer, a power cut) it cannot stop
its children, and a training child left running holds the CPU, memory and files of a run that
no longer exists. Two mechanisms, both needed:

- ``die_with_parent()`` (a ``preexec_fn``): on Linux the kernel sends the child SIGKILL the moment
  its parent dies (``prctl(PR_SET_PDEATHSIG)``), with no cooperation from the child.
- ``exit_when_orphaned`` (called in the child): a daemon thread that ends the child within a
  second of its parent's death on any POSIX system (macOS has no PDEATHSIG); the child notices
  because it is re-parented.
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

_PR_SET_PDEATHSIG = 1
# How often the orphan watchdog looks at its parent.
ORPHAN_POLL_SECONDS = 0.5


def die_with_parent() -> Callable[[], None]:
    """``subprocess.Popen(..., preexec_fn=die_with_parent())``: the kernel kills the child when
    the calling process dies (Linux). The parent must start the child from a thread that lives as
    long as the child (PDEATHSIG follows the thread); a blocking ``subprocess.run`` does. Elsewhere
    a no-op; ``exit_when_orphaned`` in the child covers those systems."""
    parent = os.getpid()
    libc_name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None

    def set_death_signal() -> None:  # runs in the child, between fork and exec
        if libc_name is None:
            return
        libc = ctypes.CDLL(libc_name, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody will send the signal.
        if os.getppid() != parent:
            os._exit(1)

    return set_death_signal


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
