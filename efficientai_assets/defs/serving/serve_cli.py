"""``make serve``: serve the current deployment (champion, plus a canary if one is set) until Ctrl-C.

``python -m efficientai_assets.defs.serving.serve_cli serve [--port N] [--host H] [--model-name M]``
reads the newest deployment record of the project's model and serves it: the champion's bento
alone, or both bentos behind the router for a canary or shadow record.
``python -m efficientai_assets.defs.serving.serve_cli list`` lists the bentos of the home.

Dagster loads every module of the defs folder, so this one imports only light modules at the top.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence

from efficientai_assets.defs.serving.packaging import router_program
from efficientai_assets.names import MODEL_NAME
from resources.bentoml.store import BentoMLResource
from resources.defaults import DEFAULT_NAMESPACE

PROG = "python -m efficientai_assets.defs.serving.serve_cli"


def parser() -> argparse.ArgumentParser:
    """The command line: ``serve`` and ``list``."""
    parsed = argparse.ArgumentParser(prog=PROG)
    commands = parsed.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the current deployment (champion [+ canary])")
    serve.add_argument("--model-name", default="", help="registered model (default: the project's)")
    serve.add_argument("--host", default="", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 3000)")
    commands.add_parser("list", help="list the bentos of this home")
    return parsed


def list_bentos(resource: BentoMLResource) -> None:
    for info in resource.list_bentos():
        print(f"{info.tag}  {info.size_bytes / 1e6:.2f} MB  {json.dumps(info.labels)}")


def serve_current(resource: BentoMLResource, model_name: str, host: str, port: int | None) -> None:
    """Serve the newest deployment record of ``model_name`` until Ctrl-C or a server exits."""
    record = resource.current_deployment(model_name)
    if record is None:
        raise SystemExit(
            f"no deployment of {model_name} in {resource.resolved_home()}: run `make run` "
            "(or materialize the deployment asset) first"
        )
    with resource.serve_deployment(
        record, router_program(), port=port, host=host or None
    ) as server:
        server.wait_until_ready()
        print(f"serving {record.summary()} on {server.url} (Ctrl-C stops)", flush=True)
        try:
            while all(s.process.poll() is None for s in [*server.bentos, server.front]):
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    resource = BentoMLResource()
    if args.command == "list":
        list_bentos(resource)
        return
    namespace = os.environ.get("EFFICIENTAI_PROJECT", DEFAULT_NAMESPACE)
    model_name = args.model_name or f"{namespace}-{MODEL_NAME}"
    serve_current(resource, model_name, args.host, args.port)


if __name__ == "__main__":
    main()
