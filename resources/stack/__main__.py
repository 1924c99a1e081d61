"""``python -m resources.stack``: the team stack's command line (the Makefile's stack-* targets).

up                       start the stack of $EFFICIENTAI_HOME (idempotent)
down [--keep-data]       stop it; drop its databases, vhost and state unless --keep-data
status                   what runs where (exit 1 when a piece is down)
worker NAME [-q a,b]     one more Celery worker; --home/--cwd as on another machine
env [--secrets]          the variables a process needs to use the stack, as `export` lines
exec -- CMD...           run CMD with those variables
launch JOB [--partition] submit a run through the webserver's queue and wait for it
start|stop SERVICE       one service (objectstore, mlflow, webserver, daemon, worker-…)
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from resources.home import EfficientAIHome
from resources.stack import launch, lifecycle
from resources.stack.configs import DAGSTER_POSTGRES_URL_ENV
from resources.stack.processes import StackError
from resources.stack.services import Stack, worker_command
from resources.stack.settings import (
    BROKER_ENV,
    DEFAULT_QUEUE,
    DVC_REMOTE_ENV,
    REGISTRY_GIT_ENV,
    S3_ENDPOINT_ENV,
    S3_KEY_ID_ENV,
    S3_SECRET_ENV,
    TRACKING_URI_ENV,
    StackPaths,
    venv_bin,
)

# What a machine needs to join a stack as a worker.
JOIN_VARIABLES = (
    BROKER_ENV,
    DAGSTER_POSTGRES_URL_ENV,
    TRACKING_URI_ENV,
    DVC_REMOTE_ENV,
    REGISTRY_GIT_ENV,
    S3_ENDPOINT_ENV,
    S3_KEY_ID_ENV,
    S3_SECRET_ENV,
)

_EXEC_TIMEOUT_SECONDS = 4 * 3600


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m resources.stack", description=__doc__)
    parser.add_argument("--workspace", default="workspace.yaml", help="Dagster workspace file")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up")
    down = commands.add_parser("down")
    down.add_argument("--keep-data", action="store_true")
    commands.add_parser("status")
    worker = commands.add_parser("worker")
    worker.add_argument("name")
    worker.add_argument("-q", "--queues", default=DEFAULT_QUEUE, help="comma-separated queues")
    worker.add_argument("--home", help="this worker's own EFFICIENTAI_HOME")
    worker.add_argument("--cwd", help="this worker's own working folder")
    env = commands.add_parser("env")
    env.add_argument("--secrets", action="store_true", help="include passwords and keys")
    run = commands.add_parser("exec")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    submit = commands.add_parser("launch")
    submit.add_argument("job")
    submit.add_argument("--partition")
    submit.add_argument("--config-json")
    submit.add_argument("--timeout", type=float, default=3600.0)
    for name in ("start", "stop"):
        commands.add_parser(name).add_argument("service")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    home = EfficientAIHome.from_env()
    workspace = Path(args.workspace).resolve()
    try:
        return _dispatch(args, home, workspace)
    except StackError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, home: EfficientAIHome, workspace: Path) -> int:
    if args.command == "up":
        stack = lifecycle.up(home, workspace)
        print(f"stack up: Dagster {stack.webserver_url}  MLflow {stack.tracking_uri}")
        print(f"          S3 {stack.s3_endpoint}  state {stack.paths.root}")
        return 0
    if args.command == "down":
        stopped = lifecycle.down(home, workspace, keep_data=args.keep_data)
        print(f"stack down: stopped {', '.join(stopped) or 'nothing'}")
        return 0
    if args.command == "status":
        healthy, lines = lifecycle.status(home, workspace)
        print("\n".join(lines))
        return 0 if healthy else 1
    if args.command == "worker" and not StackPaths(home).state_file.is_file():
        return _join(args)
    stack = Stack.load(home, workspace)
    if args.command == "worker":
        spec = lifecycle.WorkerSpec(args.name, tuple(q for q in args.queues.split(",") if q))
        managed = lifecycle.start_worker(
            stack,
            spec,
            home=Path(args.home).resolve() if args.home else None,
            cwd=Path(args.cwd).resolve() if args.cwd else None,
        )
        print(f"{spec.name} on {','.join(spec.queues)}: pid {managed.pid}, log {managed.log}")
        return 0
    if args.command == "env":
        for name, value in sorted(stack.client_env(secrets=args.secrets).items()):
            print(f"export {name}={shlex.quote(value)}")
        return 0
    if args.command == "exec":
        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not argv:
            raise StackError("nothing to run: python -m resources.stack exec -- COMMAND ...")
        env = stack.process_env()
        return subprocess.run(argv, env=env, timeout=_EXEC_TIMEOUT_SECONDS, check=False).returncode
    if args.command == "launch":
        config = launch.parse_config(args.config_json)
        run_id = launch.submit(stack, args.job, args.partition, config)
        print(f"{args.job}: run {run_id} queued at {stack.webserver_url}/runs/{run_id}")
        status = launch.wait(stack, run_id, args.timeout)
        print(f"{args.job}: run {run_id} {status}")
        return 0
    if args.command == "start":
        managed = stack.start_service(args.service)
        stack.wait_ready(args.service, managed)
        return 0
    if args.command == "stop":
        stack.stop_service(args.service)
        return 0
    raise StackError(f"unknown command {args.command!r}")


def _join(args: argparse.Namespace) -> int:
    """A worker on a machine that runs no stack: everything comes from the environment (the
    variables of ``env --secrets`` on the stack's machine); runs in the foreground."""
    missing = [name for name in JOIN_VARIABLES if not os.environ.get(name)]
    if missing:
        raise StackError(
            f"no stack here and {', '.join(missing)} not set: to join a stack from another "
            "machine, set the variables `python -m resources.stack env --secrets` prints there"
        )
    queues = tuple(q for q in args.queues.split(",") if q)
    env = {**os.environ, "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}"}
    if args.home:
        env["EFFICIENTAI_HOME"] = str(Path(args.home).resolve())
    command = worker_command(args.name, queues)
    os.execvpe(command[0], command, env)  # replaces this process: the worker's signals are its own


if __name__ == "__main__":
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    sys.exit(main())
