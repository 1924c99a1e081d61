"""``python -m resources.supervise -- COMMAND ...``: launch a run in-process (``make run`` runs
``dg launch`` through it) so that a dead run never blocks it and stopping it always stops it.

Before the command starts, dead runs of the home are recovered (``resources.recovery``): their
pool slots are freed, so the new run never waits on a run whose process died. A command that
recovers them itself once it has loaded Dagster (``efficientai_assets.launch``, ``make run``)
is started with ``--command-recovers``: this process then stays light (no Dagster import) unless
it has to recover a run it stopped.

While a step waits for a pool slot, an in-process Dagster run does not answer SIGTERM or Ctrl-C
(Dagster 1.13 records the signal for the next step to raise; the wait itself sleeps with the
project's executor, ``resources.in_process_executor``). So a stop request (SIGTERM, SIGINT,
SIGHUP) is passed on to the command, and if it has not ended ``GRACE_SECONDS`` later it is
killed and its run recovered at once (failed, slots freed, MLflow run ended). The command dies
with this process (``resources.lifetime``), so a ``kill -9`` here leaves no run process behind.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING

from resources.lifetime import die_with_parent

if TYPE_CHECKING:
    from dagster import DagsterInstance

GRACE_SECONDS = 20.0
_POLL_SECONDS = 0.2
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def recover_dead_runs(instance: DagsterInstance | None = None) -> None:
    """Recover dead runs (of ``instance``, default: ``DAGSTER_HOME``'s); a failure to do so is
    reported and never stops the launch."""
    try:
        from resources.recovery import main, recover_and_report

        if instance is None:
            main([])
        else:
            recover_and_report(instance)
    except Exception as error:
        print(f"supervise: run recovery failed, launching anyway: {error}", file=sys.stderr)


def supervise(
    command: Sequence[str], grace_seconds: float = GRACE_SECONDS, recover_first: bool = True
) -> int:
    """Run ``command`` to its end; return its exit status (128 + signal when stopped)."""
    if recover_first:
        recover_dead_runs()
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
        recover_dead_runs()  # the run of a killed command: failed, slots freed, MLflow run ended
        return 128 + (requested[0] if requested else -child.returncode)
    return int(child.returncode)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    recover_first = args[:1] != ["--command-recovers"]
    if not recover_first:
        args = args[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit("usage: python -m resources.supervise [--command-recovers] -- COMMAND [ARGS...]")
    sys.exit(supervise(args, recover_first=recover_first))


if __name__ == "__main__":
    main()
