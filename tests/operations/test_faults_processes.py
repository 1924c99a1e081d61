"""Faults of processes and stores, caused for real: processes killed with signals, concurrent
processes opening one fresh home, a locked SQLite store, a tracking server that refuses
connections, credentials in a tracking URI. Each test asserts what held and that nothing was lost.

Steps defined here are plain Dagster assets (no postponed annotations: Dagster reads the types).
"""

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import psutil
import pytest
from conftest import FAST_TRAINING, home_env, make_home

from resources.home import EfficientAIHome
from resources.mlflow.resource import MlflowResource
from resources.stack.processes import free_port, port_open
from resources.store_retry import is_transient, retry_transient_store_errors

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HEAVY = "heavy"
# The hardware gate must not hold the steps under test on a busy test machine.
RELAXED_GATE = {
    "hardware": {
        "config": {
            "gate": {
                "psi_cpu_some_max": 100,
                "psi_memory_some_max": 100,
                "psi_memory_full_max": 100,
            }
        }
    }
}

# A run whose only step claims the `heavy` pool, opens an MLflow run tagged with its Dagster run
# id, writes a marker file and sleeps: a stand-in for a training step, in a process of its own.
HOLDER = textwrap.dedent(
    """
    import sys, time
    import dagster as dg

    marker, seconds, tracking_uri = sys.argv[1], float(sys.argv[2]), sys.argv[3]

    @dg.asset(pool="heavy")
    def held(context: dg.AssetExecutionContext) -> None:
        if tracking_uri:
            from mlflow import MlflowClient
            client = MlflowClient(tracking_uri)
            experiment = client.get_experiment_by_name("faults")
            experiment_id = (
                experiment.experiment_id if experiment else client.create_experiment("faults")
            )
            client.create_run(experiment_id, tags={"dagster.run_id": context.run.run_id})
        with open(marker, "w") as handle:
            handle.write(context.run.run_id)
        time.sleep(seconds)

    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([held], instance=instance, raise_on_error=False)
    sys.exit(0 if result.success else 1)
    """
)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def pid_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def runs_by_status(home: EfficientAIHome) -> dict[str, dg.DagsterRunStatus]:
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        return {run.run_id: run.status for run in instance.get_runs()}


def heavy_claims(home: EfficientAIHome) -> set[str]:
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        info = instance.event_log_storage.get_concurrency_info(HEAVY)
        return {slot.run_id for slot in info.claimed_slots}


def mlflow_statuses(home: EfficientAIHome) -> dict[str, str]:
    """Dagster run id -> status of the MLflow run tagged with it (read from the SQLite store)."""
    with sqlite3.connect(home.mlflow_db) as connection:
        rows = connection.execute(
            "SELECT tags.value, runs.status FROM runs JOIN tags ON tags.run_uuid = runs.run_uuid "
            "WHERE tags.key = 'dagster.run_id'"
        ).fetchall()
    return {str(run_id): str(status) for run_id, status in rows}


@pytest.fixture
def prepared_home(tmp_path: Path) -> EfficientAIHome:
    return make_home(tmp_path / "home")


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; any still alive at the end are killed (with their children)."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
            process.wait(timeout=30)


def start_holder(
    home: EfficientAIHome,
    tmp_path: Path,
    started: list[subprocess.Popen[bytes]],
    name: str,
    seconds: float,
    tracking_uri: str = "",
    supervised: bool = False,
) -> tuple[subprocess.Popen[bytes], Path]:
    program = tmp_path / "holder.py"
    program.write_text(HOLDER)
    marker = tmp_path / f"{name}.marker"
    command = [sys.executable, str(program), str(marker), str(seconds), tracking_uri]
    if supervised:
        command = [sys.executable, "-m", "resources.supervise", "--", *command]
    process = subprocess.Popen(
        command,
        env=home_env(home),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / f"{name}.log", "wb"),  # noqa: SIM115 - closed with the process
    )
    started.append(process)
    return process, marker


# -- a dead run never blocks the home ---------------------------------------------------------


def test_a_run_killed_by_sigkill_is_failed_its_slot_freed_and_its_mlflow_run_ended(
    prepared_home: EfficientAIHome, tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    home = prepared_home
    holder, marker = start_holder(
        home, tmp_path, started, "holder", 600, tracking_uri=home.mlflow_tracking_uri
    )
    wait_for(marker.exists, 180, "the holder's step to start")
    run_id = marker.read_text()
    assert heavy_claims(home) == {run_id}

    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    # Killed outright, the run records nothing: this is what every later run used to wait on.
    assert runs_by_status(home)[run_id] == dg.DagsterRunStatus.STARTED
    assert mlflow_statuses(home)[run_id] == "RUNNING"

    recovery = subprocess.run(
        [sys.executable, "-m", "resources.recovery"],
        env=home_env(home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert run_id in recovery.stderr and "is gone" in recovery.stderr
    assert runs_by_status(home)[run_id] == dg.DagsterRunStatus.FAILURE
    assert heavy_claims(home) == set()
    assert mlflow_statuses(home)[run_id] == "FAILED"


LAUNCHABLE = textwrap.dedent(
    """
    import dagster as dg

    @dg.asset(pool="heavy")
    def after_the_dead_run() -> None:
        pass

    defs = dg.Definitions(
        assets=[after_the_dead_run],
        jobs=[dg.define_asset_job("after_the_dead_run_job", [after_the_dead_run])],
    )
    """
)


def test_a_run_submitted_like_the_uis_recovers_the_dead_run_first_and_gets_its_slot(
    prepared_home: EfficientAIHome, tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    """`make dev` runs go through the home's run coordinator (``dagster.yaml``): submitted to the
    queue, dequeued by the daemon once their pool has a slot, launched, as here."""
    home = prepared_home
    holder, marker = start_holder(home, tmp_path, started, "holder", 600)
    wait_for(marker.exists, 180, "the holder's step to start")
    dead_run = marker.read_text()
    holder.kill()
    holder.wait(timeout=30)
    assert heavy_claims(home) == {dead_run}

    program = tmp_path / "launchable.py"
    program.write_text(LAUNCHABLE)
    # The daemon of `make dev`: it dequeues the submitted run and launches it.
    started.append(
        subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-f", str(program)],
            env=home_env(home),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "daemon.log", "wb"),  # noqa: SIM115 - closed with the process
        )
    )
    subprocess.run(
        [str(BIN / "dagster"), "job", "launch", "-f", str(program), "-j", "after_the_dead_run_job"],
        env=home_env(home),
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
        check=True,
    )

    def finished() -> dict[str, dg.DagsterRunStatus] | None:
        statuses = runs_by_status(home)
        done = [
            s for r, s in statuses.items() if r != dead_run and s.name in ("SUCCESS", "FAILURE")
        ]
        return statuses if done else None

    statuses = wait_for(finished, 300, "the launched run to finish")
    assert statuses[dead_run] == dg.DagsterRunStatus.FAILURE
    assert sorted(s.name for r, s in statuses.items() if r != dead_run) == ["SUCCESS"]
    assert heavy_claims(home) == set()


def test_recovery_leaves_a_live_run_alone_and_a_stop_request_ends_a_run_waiting_on_the_pool(
    prepared_home: EfficientAIHome, tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    from resources.supervise import GRACE_SECONDS

    home = prepared_home
    holder, holder_marker = start_holder(home, tmp_path, started, "holder", 900)
    wait_for(holder_marker.exists, 180, "the holder's step to start")
    holder_run = holder_marker.read_text()

    # The waiter runs as `make run` runs a launch: supervised (recovery first, then the command).
    supervisor, waiter_marker = start_holder(home, tmp_path, started, "waiter", 1, supervised=True)

    def waiter_blocked() -> str | None:
        with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
            pending = instance.event_log_storage.get_concurrency_info(HEAVY).pending_run_ids
        return next(iter(pending - {holder_run}), None)

    waiter_run = wait_for(waiter_blocked, 180, "the waiter to queue for the heavy slot")
    # The supervisor's recovery ran while the holder lived: its run and slot are untouched.
    assert runs_by_status(home)[holder_run] == dg.DagsterRunStatus.STARTED
    assert heavy_claims(home) == {holder_run}
    waiter = psutil.Process(supervisor.pid).children()[0]
    cpu = waiter.cpu_percent(interval=3.0)
    print(f"CPU of a run waiting on the heavy pool (Dagster 1.13.27 in-process): {cpu:.0f} %")

    stopped_at = time.monotonic()
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=GRACE_SECONDS + 120) == 128 + signal.SIGTERM
    print(f"the waiting launch ended {time.monotonic() - stopped_at:.1f} s after SIGTERM")
    assert pid_gone(waiter.pid)
    assert not waiter_marker.exists()
    statuses = runs_by_status(home)
    assert statuses[waiter_run] == dg.DagsterRunStatus.FAILURE
    assert statuses[holder_run] == dg.DagsterRunStatus.STARTED
    assert heavy_claims(home) == {holder_run}
    holder.kill()


def test_a_child_that_watches_its_parent_exits_when_the_parent_is_killed(tmp_path: Path) -> None:
    """The watchdog half of "a child never outlives its parent" (macOS has no PDEATHSIG)."""
    child_pid_file = tmp_path / "child.pid"
    parent_program = textwrap.dedent(
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", (
            "import os, time\\n"
            "from resources.lifetime import exit_when_orphaned\\n"
            "exit_when_orphaned()\\n"
            "open({str(child_pid_file)!r}, 'w').write(str(os.getpid()))\\n"
            "time.sleep(600)\\n"
        )])
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_program], cwd=ROOT)
    try:
        wait_for(child_pid_file.exists, 60, "the child to start")
        child_pid = int(wait_for(child_pid_file.read_text, 10, "the child's pid"))
        parent.kill()
        parent.wait(timeout=10)
        wait_for(lambda: pid_gone(child_pid), 10, "the orphaned child to exit")
    finally:
        parent.kill()


# -- concurrency on a fresh home --------------------------------------------------------------

FIRST_USE = textwrap.dedent(
    """
    import sys, time
    start_at, mode, index = float(sys.argv[1]), sys.argv[2], sys.argv[3]
    import dagster as dg
    from mlflow import MlflowClient
    from resources.home import default_home, main as make_home_command
    from resources.mlflow.resource import MlflowResource

    home = default_home()
    resource = MlflowResource(tracking_uri=home.mlflow_tracking_uri)
    while time.time() < start_at:
        time.sleep(0.01)
    if mode == "make":  # `make run` and `make dev` begin with `python -m resources.home`
        make_home_command()
    else:  # a script that goes straight to MLflow, then to Dagster
        with resource.run("first-use", f"early-{index}"):
            pass
        home.ensure_layout()
    with dg.DagsterInstance.get() as instance:
        @dg.asset
        def first_use() -> None:
            pass
        assert dg.materialize([first_use], instance=instance).success
    with resource.run("first-use", f"process-{index}") as run_id:
        resource.log_params(run_id, {"process": index})
    MlflowClient(home.mlflow_tracking_uri).search_registered_models()
    """
)


def test_concurrent_first_uses_of_a_fresh_home_all_succeed(tmp_path: Path) -> None:
    home = EfficientAIHome(tmp_path / "fresh")  # nothing created yet
    program = tmp_path / "first_use.py"
    program.write_text(FIRST_USE)
    start_at = time.time() + 25  # every process imported its libraries and waits for this moment
    modes = ["make", "script", "make", "script", "make", "script"]
    processes = [
        subprocess.Popen(
            [sys.executable, str(program), str(start_at), mode, str(index)],
            env=home_env(home),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index, mode in enumerate(modes)
    ]
    outcomes = [process.communicate(timeout=600) for process in processes]
    failures = [
        f"process {index} ({modes[index]}): exit {process.returncode}\n{err[-1500:]}"
        for index, (process, (_out, err)) in enumerate(zip(processes, outcomes, strict=True))
        if process.returncode != 0
    ]
    assert not failures, "\n".join(failures)

    # Nothing half-made: no migration leftovers, every run recorded once, the stores still open.
    with sqlite3.connect(home.mlflow_db) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        names = {row[0] for row in connection.execute("SELECT name FROM runs")}
    assert not [table for table in tables if table.startswith("_alembic_tmp_")]
    assert names == {f"process-{index}" for index in range(len(modes))} | {
        f"early-{index}" for index, mode in enumerate(modes) if mode == "script"
    }
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        assert len(instance.get_runs()) == len(modes)


# -- transient store errors -------------------------------------------------------------------


def _attempts(result: "dg.ExecuteInJobResult") -> int:
    return 1 + len(
        [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    )


def test_a_step_retries_a_locked_sqlite_store_and_succeeds_once_it_frees(
    prepared_home: EfficientAIHome,
) -> None:

    home = prepared_home
    mlflow = MlflowResource(tracking_uri=home.mlflow_tracking_uri)

    @dg.asset
    @retry_transient_store_errors(base_delay_seconds=1.0)
    def writes_to_mlflow(context: dg.AssetExecutionContext, mlflow: MlflowResource) -> None:
        mlflow.ensure_experiment(f"locked-{context.retry_number}")

    # Another process holds the write lock for 30 s: longer than MLflow waits for it (20 s), so the
    # first attempt fails "database is locked"; the retry finds it free within its own 20 s.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(home.mlflow_db)!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with dg.instance_for_test() as instance:
            result = dg.materialize(
                [writes_to_mlflow], resources={"mlflow": mlflow}, instance=instance
            )
            warnings = [
                entry.user_message
                for entry in instance.all_logs(result.run_id)
                if "transient store error" in entry.user_message
            ]
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert result.success
    assert _attempts(result) >= 2
    assert warnings and "database is locked" in warnings[0]


def _relay(listener: socket.socket, target_port: int, stop: threading.Event) -> None:
    """Pass every connection accepted on ``listener`` through to ``target_port``."""

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            client, _ = listener.accept()
        except TimeoutError:
            continue
        upstream = socket.create_connection(("127.0.0.1", target_port))
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(source, sink), daemon=True).start()
    listener.close()


def test_a_step_retries_a_tracking_server_that_refuses_connections_until_it_answers(
    tmp_path: Path,
) -> None:
    # A real tracking server, reached through a port where nothing listens at first (the
    # connection is refused, as by a server that is restarting) and that opens after the
    # step's first attempt failed.
    server_port, public_port = free_port(), free_port()
    server = subprocess.Popen(
        [
            *(str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(server_port)),
            *("--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}"),
            *("--default-artifact-root", str(tmp_path / "artifacts"), "--workers", "1"),
        ],
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    stop = threading.Event()
    mlflow = MlflowResource(
        tracking_uri=f"http://127.0.0.1:{public_port}", http_max_retries=0, http_timeout_seconds=30
    )

    @dg.asset
    @retry_transient_store_errors(base_delay_seconds=1.0)
    def talks_to_server(context: dg.AssetExecutionContext, mlflow: MlflowResource) -> None:
        if context.retry_number == 1:  # the first attempt was refused: the server is back
            listener = socket.create_server(("127.0.0.1", public_port))
            threading.Thread(target=_relay, args=(listener, server_port, stop), daemon=True).start()
        mlflow.ensure_experiment("refused-at-first")

    try:
        wait_for(lambda: port_open(server_port), 300, "the tracking server to start")
        assert not port_open(public_port)
        with dg.instance_for_test() as instance:
            result = dg.materialize(
                [talks_to_server],
                resources={"mlflow": mlflow},
                instance=instance,
                raise_on_error=False,
            )
            refused = [
                entry.user_message
                for entry in instance.all_logs(result.run_id)
                if "transient store error" in entry.user_message
            ]
        assert result.success, "the step did not succeed once the server answered"
        assert _attempts(result) == 2
        assert "NewConnectionError" in refused[0]  # the port refused the connection
    finally:
        stop.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


def test_a_data_error_fails_its_step_at_once_without_a_retry(
    prepared_home: EfficientAIHome,
) -> None:

    mlflow = MlflowResource(tracking_uri=prepared_home.mlflow_tracking_uri)

    @dg.asset
    @retry_transient_store_errors
    def refuses_its_data(mlflow: MlflowResource) -> None:
        mlflow.ensure_experiment("data-errors")
        raise ValueError("column 'pixel_3' holds 1e39, outside float32")

    @dg.asset
    @retry_transient_store_errors
    def asks_for_a_missing_run(context: dg.AssetExecutionContext, mlflow: MlflowResource) -> None:
        mlflow.client().get_run("0" * 32)  # RESOURCE_DOES_NOT_EXIST: not a busy store

    with dg.instance_for_test() as instance:
        for step in (refuses_its_data, asks_for_a_missing_run):
            result = dg.materialize(
                [step], resources={"mlflow": mlflow}, instance=instance, raise_on_error=False
            )
            assert not result.success
            assert _attempts(result) == 1


def test_errors_are_classified_transient_only_when_the_store_is_busy_or_unreachable(
    prepared_home: EfficientAIHome,
) -> None:
    from mlflow import MlflowClient

    caught: dict[str, BaseException] = {}
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    try:
        MlflowClient(f"http://127.0.0.1:{free_port()}").search_experiments()
    except Exception as error:
        caught["refused"] = error
    connection = sqlite3.connect(prepared_home.mlflow_db, timeout=0.1, isolation_level=None)
    other = sqlite3.connect(prepared_home.mlflow_db, timeout=0.1, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    try:
        other.execute("SELECT count(*) FROM runs")
    except sqlite3.OperationalError as error:
        caught["locked"] = error
    finally:
        connection.rollback()
    try:
        MlflowClient(prepared_home.mlflow_tracking_uri).get_run("0" * 32)
    except Exception as error:
        caught["missing"] = error
    try:
        try:
            raise caught["locked"]
        except sqlite3.OperationalError as cause:
            raise ValueError("a validation failure raised while the store was busy") from cause
    except ValueError as error:
        caught["data"] = error

    assert is_transient(caught["refused"])
    assert is_transient(caught["locked"])
    assert not is_transient(caught["missing"])
    assert not is_transient(caught["data"])
    assert not is_transient(json.JSONDecodeError("bad", "x", 0))


# -- secrets ----------------------------------------------------------------------------------


def test_credentials_in_the_tracking_uri_are_refused_and_never_reach_a_run_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resources.defaults import build_resources

    uri = "http://ml:s3cret-Pa55@127.0.0.1:5000"
    monkeypatch.setenv("EFFICIENTAI_MLFLOW_TRACKING_URI", uri)
    with pytest.raises(ValueError) as refused:
        build_resources("test", make_home(tmp_path / "home"))
    message = str(refused.value)
    assert "s3cret-Pa55" not in message
    assert "EFFICIENTAI_MLFLOW_TRACKING_URI" in message
    assert "EFFICIENTAI_MLFLOW_USERNAME" in message and "EFFICIENTAI_MLFLOW_PASSWORD" in message

    # Configured directly (run config, a script), the resource refuses it too, without echoing it.
    for bad in (uri, "https://token@tracking.example", "postgresql://ml:s3cret-Pa55@db/mlflow"):
        with pytest.raises(ValueError) as direct:
            MlflowResource(tracking_uri=bad)
        assert "s3cret-Pa55" not in str(direct.value) and "token@" not in str(direct.value)
    assert MlflowResource(tracking_uri="postgresql://postgres@127.0.0.1:5432/mlflow")

    # The code location refuses to load: no run, so no snapshot, can ever hold the password.
    loaded = subprocess.run(
        [sys.executable, "-c", "import efficientai_assets.definitions"],
        env={**os.environ, "EFFICIENTAI_MLFLOW_TRACKING_URI": uri},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.returncode != 0
    assert "EFFICIENTAI_MLFLOW_PASSWORD" in loaded.stderr
    assert "s3cret-Pa55" not in loaded.stderr


# -- the whole case, as a user meets it -------------------------------------------------------


def _launch(home: EfficientAIHome, selection: str, training: dict[str, Any]) -> list[str]:
    config = {"resources": RELAXED_GATE, "ops": {"candidate_model": {"config": training}}}
    return [str(BIN / "dg"), "launch", "--assets", selection, "--config-json", json.dumps(config)]


def _training_child(run_process: psutil.Process) -> psutil.Process | None:
    for child in run_process.children(recursive=True):
        try:
            if "efficientai_assets.defs.training.train_worker" in " ".join(child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


@pytest.mark.slow
def test_make_run_after_a_run_killed_mid_training_proceeds_and_nothing_is_left_running(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    home = make_home(tmp_path / "home")
    long_training = {"epochs": 5000, "hidden_units": [64], "batch_size": 64}
    first = subprocess.Popen(
        _launch(home, "raw_dataset,dataset_splits,candidate_model", long_training),
        env=home_env(home),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started.append(first)
    worker = wait_for(
        lambda: _training_child(psutil.Process(first.pid)), 600, "the training child to start"
    )
    wait_for(lambda: "RUNNING" in mlflow_statuses(home).values(), 60, "the MLflow run")
    dead_run = next(iter(heavy_claims(home)))

    first.send_signal(signal.SIGKILL)  # an OOM kill or a power cut of the run process
    first.wait(timeout=30)
    wait_for(lambda: pid_gone(worker.pid), 10, "the training child to die with its parent")

    # The next `make run`: supervised launch, recovery first. It must not wait on the dead run.
    began = time.monotonic()
    second = subprocess.run(
        [
            *(sys.executable, "-m", "resources.supervise", "--"),
            *_launch(home, "candidate_model", FAST_TRAINING),
        ],
        env=home_env(home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    elapsed = time.monotonic() - began
    assert second.returncode == 0, second.stderr[-3000:]
    print(f"the next launch after the kill finished in {elapsed:.0f} s")
    assert f"run {dead_run}" in second.stderr and "is gone" in second.stderr

    statuses = runs_by_status(home)
    assert statuses[dead_run] == dg.DagsterRunStatus.FAILURE
    assert sorted(statuses.values(), key=str) == sorted(
        [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS], key=str
    )
    assert heavy_claims(home) == set()
    mlflow_runs = mlflow_statuses(home)
    assert mlflow_runs[dead_run] == "FAILED"
    assert sorted(mlflow_runs.values()) == ["FAILED", "FINISHED"]


@pytest.fixture(scope="module")
def deployed_home(tmp_path_factory: pytest.TempPathFactory) -> EfficientAIHome:
    """A home whose current deployment is its champion's bento."""
    from conftest import resources_for_tests, training_run_config

    from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
    from efficientai_assets.defs.serving.assets import deployment, model_bento
    from efficientai_assets.defs.training.assets import candidate_model, champion_model
    from resources.bentoml.store import BentoMLResource

    home = make_home(tmp_path_factory.mktemp("serve") / "home")
    resources = {
        **resources_for_tests("faults", home),
        "bentoml": BentoMLResource(bentoml_home=str(home.bentoml_home), port=0),
    }
    with dg.instance_for_test(temp_dir=str(home.dagster_home)) as instance:
        dg.materialize(
            [raw_dataset, dataset_splits, candidate_model, champion_model, model_bento, deployment],
            resources=resources,
            instance=instance,
            run_config=training_run_config(),
        )
    return home


def _serve(
    home: EfficientAIHome, tmp_path: Path, started: list[subprocess.Popen[bytes]], via_shell: bool
) -> tuple[subprocess.Popen[bytes], psutil.Process, list[psutil.Process], int]:
    """``make serve``'s command (under a shell standing in for make when ``via_shell``): the
    serving process, its bento servers once ready, and the port."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    command = [
        *(sys.executable, "-m", "efficientai_assets.defs.serving.serve_cli", "serve"),
        *("--port", str(port), "--stop-with-parent"),
    ]
    if via_shell:  # `; exit` keeps the shell as the parent instead of exec-ing the command
        command = ["/bin/sh", "-c", " ".join(command) + f" > {log} 2>&1; exit $?"]
    process = subprocess.Popen(
        command,
        env=home_env(home, EFFICIENTAI_PROJECT="faults"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL if via_shell else open(log, "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    started.append(process)
    wait_for(lambda: log.exists() and "serving " in log.read_text(), 300, "the deployment")
    assert port_open(port)
    top = psutil.Process(process.pid)
    serving = top.children()[0] if via_shell else top
    servers = serving.children(recursive=True)
    assert servers, "no bento server process found"
    return process, serving, servers, port


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["SIGTERM", "SIGHUP", "the parent's death"])
def test_stopping_make_serve_stops_its_bento_servers_and_frees_the_port(
    deployed_home: EfficientAIHome,
    tmp_path: Path,
    started: list[subprocess.Popen[bytes]],
    stop: str,
) -> None:
    parent_dies = stop == "the parent's death"
    process, serving, servers, port = _serve(deployed_home, tmp_path, started, parent_dies)
    if parent_dies:
        process.send_signal(signal.SIGKILL)  # make killed outright: the serving process remains
        process.wait(timeout=10)
    else:
        serving.send_signal(getattr(signal, stop))
    wait_for(lambda: pid_gone(serving.pid), 90, "the serving process to end")
    pids = [server.pid for server in servers]
    wait_for(lambda: all(pid_gone(pid) for pid in pids), 30, f"the servers {pids} to stop")
    assert not port_open(port)
