"""A run waiting for a pool slot sleeps: it does not spin a core while another run holds the slot,
and it takes the slot once it is freed.

Real processes on one home's Dagster instance: a holder run whose step claims the ``heavy`` pool
and holds it until told to finish, and a waiter launched by ``dagster job execute`` (the path of
``dg launch``/``make run``) with the executor the project's jobs use. The waiter's CPU time is
read from the kernel over a few seconds while it is queued for the slot.
"""

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import psutil
import pytest
from conftest import home_env, make_home

from resources.home import EfficientAIHome

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MEASURE_SECONDS = 4.0
# A sleeping waiter wakes once per claim check (1-15 s apart) and for Dagster's event polling;
# a spinning one uses a whole core (1.0).
MOST_CORE_SHARE = 0.1

HOLDER = textwrap.dedent(
    """
    import pathlib, sys, time
    import dagster as dg

    marker, release = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])

    @dg.asset(pool="heavy")
    def held(context: dg.AssetExecutionContext) -> None:
        marker.write_text(context.run.run_id)
        while not release.exists():
            time.sleep(0.2)

    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([held], instance=instance, raise_on_error=False)
    sys.exit(0 if result.success else 1)
    """
)

# The waiter's code location: one heavy step, run by the executor under test.
WAITER = textwrap.dedent(
    """
    import pathlib, sys
    import dagster as dg
    from resources.stack.executor import executor_from_environment

    @dg.asset(pool="heavy")
    def waited(context: dg.AssetExecutionContext) -> None:
        pathlib.Path(__file__).with_suffix(".done").write_text(context.run.run_id)

    EXECUTOR = {executor}
    defs = dg.Definitions(
        assets=[waited],
        jobs=[dg.define_asset_job("waiter_job", [waited], executor_def=EXECUTOR)],
    )
    """
)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def pending_runs(home: EfficientAIHome) -> set[str]:
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        return set(instance.event_log_storage.get_concurrency_info("heavy").pending_run_ids)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; any still alive at the end are killed."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def core_share_while_waiting(
    home: EfficientAIHome, tmp_path: Path, started: list[subprocess.Popen[bytes]], executor: str
) -> tuple[float, subprocess.Popen[bytes], Path, Path]:
    """Start a holder and a waiter (with ``executor``); the waiter's CPU seconds per wall second
    while it is queued behind the holder. Returns it with the waiter, its done file and the
    holder's release file."""
    name = "project" if "environment" in executor else "stock"
    holder_program, waiter_program = tmp_path / f"holder_{name}.py", tmp_path / f"{name}.py"
    holder_program.write_text(HOLDER)
    waiter_program.write_text(WAITER.format(executor=executor))
    marker, release = tmp_path / f"{name}.marker", tmp_path / f"{name}.release"
    env = home_env(home, PYTHONPATH=str(ROOT))
    holder = subprocess.Popen(
        [sys.executable, str(holder_program), str(marker), str(release)], env=env, cwd=ROOT
    )
    started.append(holder)
    wait_for(marker.exists, 180, "the holder to claim the heavy slot")
    holder_run = marker.read_text()
    waiter = subprocess.Popen(
        [str(BIN / "dagster"), "job", "execute", "-f", str(waiter_program), "-j", "waiter_job"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / f"{name}.log", "wb"),  # noqa: SIM115 - closed with the process
    )
    started.append(waiter)
    wait_for(lambda: pending_runs(home) - {holder_run}, 180, "the waiter to queue for the slot")
    process = psutil.Process(waiter.pid)
    before, wall = process.cpu_times(), time.monotonic()
    time.sleep(MEASURE_SECONDS)
    after, elapsed = process.cpu_times(), time.monotonic() - wall
    used = (after.user - before.user) + (after.system - before.system)
    return used / elapsed, waiter, waiter_program.with_suffix(".done"), release


def test_a_run_waiting_for_the_heavy_pool_sleeps_and_then_takes_the_slot(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    home = make_home(tmp_path / "home")
    share, waiter, done, release = core_share_while_waiting(
        home, tmp_path, started, "executor_from_environment()"
    )
    print(f"waiting run with the project's executor: {share:.1%} of a core")
    assert share < MOST_CORE_SHARE, f"the waiting run used {share:.0%} of a core"
    assert waiter.poll() is None and not done.exists()

    release.touch()  # the holder's step ends and frees the slot
    assert waiter.wait(timeout=120) == 0
    assert done.exists(), "the waiter's step ran once the slot was free"


def test_the_stock_executor_spins_while_it_waits(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    """The baseline the fix is measured against: Dagster's own in-process executor, same
    processes, spins (Dagster 1.13.27). When an upgrade fixes it, this test says so."""
    home = make_home(tmp_path / "home")
    share, waiter, _, release = core_share_while_waiting(
        home, tmp_path, started, "dg.in_process_executor"
    )
    print(f"waiting run with Dagster's in-process executor: {share:.1%} of a core")
    release.touch()
    waiter.kill()
    assert share > 3 * MOST_CORE_SHARE
