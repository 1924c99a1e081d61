"""``python -m resources.ray up|join|down|status``: the Ray nodes of ``make ray-up`` / ``ray-down``.

``up`` starts a head bound to ``--host`` (127.0.0.1 unless told) with ``--num-cpus`` CPUs on
``--port``, declaring itself node ``--node-name`` (``head`` unless told), and writes what it
started to ``--state`` (a JSON file); ``join --address <head>`` starts a worker node that joins
that cluster under its own ``--node-name`` (the machine's short host name unless told); ``down``
ends exactly the processes a state file records; ``status`` says whether the head answers.
A node's name is what the per-node replica ceiling is kept by (docs/serving.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
from collections.abc import Sequence
from pathlib import Path

from resources.ray.cluster import (
    DEFAULT_HEAD_NAME,
    NODE_CAPACITY,
    NODE_RESOURCE_PREFIX,
    RayHead,
    RayUnavailableError,
    check_node_name,
    check_reachable,
)


def default_node_name(command: str) -> str:
    """``head`` for the head; for a joining machine its short host name, made a valid name."""
    if command != "join":
        return DEFAULT_HEAD_NAME
    host = socket.gethostname().split(".")[0].lower()
    return re.sub(r"[^a-z0-9-]", "-", host).strip("-")[:32] or "node"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m resources.ray")
    parser.add_argument("command", choices=("up", "join", "down", "status"))
    parser.add_argument(
        "--state", required=True, help="file recording the head this command started"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--num-cpus", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--address", default="", help="join: the head's host:port")
    parser.add_argument("--node-name", default="", help="the name this node declares")
    args = parser.parse_args(argv)
    state = Path(args.state)
    if args.command in ("up", "join"):
        if state.exists():
            head = RayHead.from_json(state.read_text())
            raise SystemExit(
                f"a Ray node ({head.node_name}, cluster {head.address}) is recorded in {state}: "
                "stop it first (make ray-down, or `down --state` that file)"
            )
        if args.command == "join" and not args.address:
            raise SystemExit("join needs --address <head-host>:<port>")
        state.parent.mkdir(parents=True, exist_ok=True)
        try:
            name = check_node_name(args.node_name or default_node_name(args.command))
            if args.command == "up":
                head = RayHead.start(
                    host=args.host, port=args.port, num_cpus=args.num_cpus, node_name=name
                )
            else:
                head = RayHead.join(args.address, name, num_cpus=args.num_cpus, host=args.host)
        except (RayUnavailableError, ValueError) as error:
            raise SystemExit(str(error)) from error
        state.write_text(head.to_json())
        role = "head" if head.head else "worker node"
        print(
            f"Ray {role} {name!r} of {head.address} with {args.num_cpus} CPUs "
            f"(log: {head.log_path})"
        )
        print(
            "other machines join with: python -m resources.ray join "
            f"--address={head.address} --node-name=<name> --state <file>"
        )
        declared = json.dumps({f"{NODE_RESOURCE_PREFIX}<name>": NODE_CAPACITY})
        print(f"  (or: ray start --address={head.address} --resources='{declared}')")
    elif args.command == "down":
        if not state.exists():
            print(f"no Ray head recorded in {state}")
            return
        head = RayHead.from_json(state.read_text())
        head.stop()
        state.unlink()
        print(f"stopped Ray node {head.node_name} of {head.address}")
    else:
        if not state.exists():
            raise SystemExit(f"no Ray head recorded in {state}: make ray-up")
        head = RayHead.from_json(state.read_text())
        try:
            check_reachable(head.address)
        except RayUnavailableError as error:
            raise SystemExit(str(error)) from error
        print(f"Ray head at {head.address} answers")


if __name__ == "__main__":
    main()
