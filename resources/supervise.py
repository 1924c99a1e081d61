"""``python -m resources.supervise -- COMMAND ...``: launch a run in-process (``make run`` runs
``dg launch`` through it) so that a dead run never blocks it and stopping it always stops it.

Before the command starts, dead runs of the home are recovered (``resources.recovery``): their
pool slots are freed, so the new run never waits on a run whose process died.

While a step waits for a pool slot, an in-process Dagster run neither sleeps nor answers SIGTERM
or Ctrl-C (Dagster 1.13: the wait loop's interval is ``min(0, ...)``, and the signal is only
recorded for the next step to raise). So a stop request (SIGTERM, SIGINT, SIGHUP) is passed on
to the command, and if it has not ended ``GRACE_SECONDS`` later it is killed and its run
recovered at once (failed, slots freed, MLflow run ended). The command dies with this process
(``resources.lifetime``), so a ``kill -9`` here leaves no run process behind either.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from resources.lifetime import die_with_parent

GRACE_SECONDS = 20.0
_POLL_SECONDS = 0.2
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _recover() -> None:
    """Recover dead runs; a failure to do so is reported and never stops the launch."""
    try:
        from resources.recovery import main as recover

        recover([])
    except Exception as error:
        print(f"supervise: run recovery failed, launching anyway: {error}", file=sys.stderr)


def supervise(command: Sequence[str], grace_seconds: float = GRACE_SECONDS) -> int:
    """Run ``command`` to its end; return its exit status (128 + signal when stopped)."""
    _recover()
    child = subprocess.Popen(list(command), preexec_fn=die_with_parent())
    requested: list[int] = []

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if not requested:
            requested.append(signum)
        if child.poll() is None:
            child.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in _STOP_SIGNALS}
    try:
        deadline: float | None = None
        while child.poll() is None:
            if requested and deadline is None:
                deadline = time.monotonic() + grace_seconds
            if deadline is not None and time.monotonic() >= deadline:
                print(
                    f"supervise: {command[0]} did not stop within {grace_seconds:g} s; killing it",
                    file=sys.stderr,
                )
                child.kill()
                child.wait()
                break
            time.sleep(_POLL_SECONDS)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if requested or child.returncode < 0:
        _recover()  # the run of a killed command: failed, slots freed, MLflow run ended
        return 128 + (requested[0] if requested else -child.returncode)
    return int(child.returncode)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit("usage: python -m resources.supervise -- COMMAND [ARGS...]")
    sys.exit(supervise(args))


if __name__ == "__main__":
    main()
