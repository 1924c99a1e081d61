"""``python -m resources.ray up|down|status``: the local Ray head of ``make ray-up`` / ``ray-down``.

``up`` starts a head bound to ``--host`` (127.0.0.1 unless told) with ``--num-cpus`` CPUs on
``--port`` and writes what it started to ``--state`` (a JSON file); ``down`` ends exactly those
processes; ``status`` says whether the head answers. Other machines join with
``ray start --address=<host>:<port>`` (docs/serving.md).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from resources.ray.cluster import RayHead, RayUnavailableError, check_reachable


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m resources.ray")
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument(
        "--state", required=True, help="file recording the head this command started"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--num-cpus", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    args = parser.parse_args(argv)
    state = Path(args.state)
    if args.command == "up":
        if state.exists():
            head = RayHead.from_json(state.read_text())
            raise SystemExit(
                f"a Ray head is recorded at {head.address} ({state}): make ray-down first"
            )
        state.parent.mkdir(parents=True, exist_ok=True)
        try:
            head = RayHead.start(host=args.host, port=args.port, num_cpus=args.num_cpus)
        except RayUnavailableError as error:
            raise SystemExit(str(error)) from error
        state.write_text(head.to_json())
        print(f"Ray head at {head.address} with {args.num_cpus} CPUs (log: {head.log_path})")
        print(f"other machines join with: ray start --address={head.address}")
    elif args.command == "down":
        if not state.exists():
            print(f"no Ray head recorded in {state}")
            return
        head = RayHead.from_json(state.read_text())
        head.stop()
        state.unlink()
        print(f"stopped the Ray head at {head.address}")
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
