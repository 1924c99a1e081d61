"""Advisory file locks and atomic writes for state that several processes may create at once.

A home is opened by every ``make run``, ``make dev`` process, client and test; two of them
creating the same store at the same moment used to race each other's schema migrations. The
lock here is ``flock`` on a lock file beside the store: the kernel drops it when its holder
dies (even by ``kill -9``), so a dead process never blocks the next one, and waiting sleeps
instead of spinning.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# How often a waiting process tries the lock again; small next to any store creation.
_POLL_SECONDS = 0.05


class LockTimeout(TimeoutError):
    """The lock stayed held for longer than the caller's bound; the message names the file."""


@contextmanager
def file_lock(path: Path, timeout_seconds: float = 300.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the body of the block.

    Waits at most ``timeout_seconds`` for another holder, sleeping between attempts, then raises
    ``LockTimeout`` naming the file. The lock is released when the block ends or its process
    dies. Without ``fcntl`` (not a POSIX system) the body runs unlocked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - POSIX only (Linux, macOS)
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"{path} stayed locked by another process for {timeout_seconds:g} s; "
                        "if no other efficientai process is running, delete the file and retry"
                    ) from None
                time.sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so a reader (or a crash)
    never sees a half-written file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
