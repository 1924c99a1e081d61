"""``make serve``: serve the current deployment (champion, plus a canary if one is set) until
Ctrl-C, SIGTERM or SIGHUP, which stop the bento servers too.

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
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from types import FrameType

from efficientai_assets.defs.serving.packaging import router_program
from efficientai_assets.names import MODEL_NAME
from resources.bentoml.store import BentoMLResource
from resources.bentoml.types import DeploymentRecord
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
    serve.add_argument(
        "--stop-with-parent",
        action="store_true",
        help="stop serving when the parent process (make) dies",
    )
    commands.add_parser("list", help="list the bentos of this home")
    ray = commands.add_parser(
        "serve-ray", help="serve a Ray-backed deployment on the cluster; lower replicas when hot"
    )
    ray.add_argument("--model-name", default="", help="registered model (default: the project's)")
    ray.add_argument(
        "--interval", type=float, default=10.0, help="seconds between rounds of node readings"
    )
    ray.add_argument("--once", action="store_true", help="deploy and exit (no hardware watch)")
    return parsed


def list_bentos(resource: BentoMLResource) -> None:
    for info in resource.list_bentos():
        print(f"{info.tag}  {info.size_bytes / 1e6:.2f} MB  {json.dumps(info.labels)}")


class StopServing(Exception):
    """A stop request (SIGTERM, SIGHUP, the parent's death) reached the serving loop."""


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    # Further stop requests are ignored: they must not interrupt the servers' shutdown.
    for stop_signal in _STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)
    raise StopServing(signal.Signals(signum).name)


def _stop_when_orphaned(parent: int) -> None:
    """A daemon thread that sends this process SIGTERM once its parent is gone (re-parented)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stop-with-parent", daemon=True).start()


def serve_current(
    resource: BentoMLResource,
    model_name: str,
    host: str,
    port: int | None,
    stop_with_parent: bool = False,
) -> None:
    """Serve the newest deployment record of ``model_name`` until Ctrl-C, SIGTERM, SIGHUP (or,
    with ``stop_with_parent``, the parent's death) or a server exits; the servers (in sessions of
    their own, which no terminal signal reaches) are stopped on the way out in every case."""
    record = resource.current_deployment(model_name)
    if record is None:
        raise SystemExit(
            f"no deployment of {model_name} in {resource.resolved_home()}: run `make run` "
            "(or materialize the deployment asset) first"
        )
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread
        for stop_signal in _STOP_SIGNALS:
            signal.signal(stop_signal, _raise_stop)
    if stop_with_parent:
        _stop_when_orphaned(os.getppid())
    try:
        with resource.serve_deployment(
            record, router_program(), port=port, host=host or None
        ) as server:
            server.wait_until_ready()
            print(f"serving {record.summary()} on {server.url} (Ctrl-C stops)", flush=True)
            while all(s.process.poll() is None for s in [*server.bentos, server.front]):
                time.sleep(1.0)
    except StopServing as stop:
        print(f"stopped by {stop}; servers stopped", flush=True)


def serve_ray(
    resource: BentoMLResource, model_name: str, namespace: str, interval: float, once: bool
) -> None:
    """Deploy the newest (Ray-backed) record on the cluster's declared nodes, then every
    ``interval`` seconds read each node through its probe and apply the hardware gate's replica
    ceiling per node, until Ctrl-C (the application keeps serving). A node that joins gets its
    own model deployments; one that leaves loses them; a newer deployment record is served as
    soon as it appears."""
    import dagster as dg

    from efficientai_assets.defs.serving.ray_backend import (
        RayBackendError,
        RayServeSettings,
        deploy_record,
        live_nodes,
    )
    from efficientai_assets.defs.serving.ray_scaling import (
        NodeCeilingWatcher,
        observation_recorder,
        rule_for,
    )
    from efficientai_assets.gate.policy import GatePolicy
    from resources.hardware.resource import HardwareResource

    record = _ray_record(resource, model_name)
    try:
        settings = RayServeSettings.from_env()
        print(
            f"serving {record.summary()} on {deploy_record(resource, record, namespace, settings)}"
        )
    except RayBackendError as error:
        raise SystemExit(str(error)) from error
    if once:
        return
    from efficientai_assets.ray_service.probe import NodeProbes

    hardware = HardwareResource()
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    live = {"record": record}

    def apply(ceilings: Mapping[str, int]) -> None:
        """Serve the newest record (a promote or rollback since is kept) under ``ceilings``."""
        live["record"] = _ray_record(resource, model_name)
        deploy_record(resource, live["record"], namespace, settings, ceilings, list(ceilings))

    watcher = NodeCeilingWatcher(
        GatePolicy.from_resource(hardware),
        rule_for(settings),
        apply,
        observation_recorder(instance, namespace) if instance else lambda _: None,
    )
    probes = NodeProbes(hardware.model_dump(exclude={"gate"}))
    try:
        while True:
            newest = resource.current_deployment(model_name)
            if newest is not None and newest.deployment_id != live["record"].deployment_id:
                watcher.forget_applied()  # the asset redeployed: put the ceilings back on it
            try:
                probes.sync(live_nodes(settings, namespace))
            except RayBackendError as error:
                print(f"cluster not readable this round: {error}", flush=True)
            else:
                for decision in watcher.observe(probes.read()).changed:
                    print(decision.summary(), flush=True)
            time.sleep(interval)
    except KeyboardInterrupt:
        probes.stop()


def _ray_record(resource: BentoMLResource, model_name: str) -> DeploymentRecord:
    record = resource.current_deployment(model_name)
    if record is None or record.backend != "ray":
        live = f"#{record.deployment_id} is served by {record.backend}" if record else "none yet"
        raise SystemExit(
            f"no Ray-backed deployment of {model_name} ({live}): materialize the deployment "
            'asset with config {"backend": "ray"} (docs/serving.md), or use `make serve`'
        )
    return record


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    resource = BentoMLResource()
    if args.command == "list":
        list_bentos(resource)
        return
    namespace = os.environ.get("EFFICIENTAI_PROJECT", DEFAULT_NAMESPACE)
    model_name = args.model_name or f"{namespace}-{MODEL_NAME}"
    if args.command == "serve-ray":
        serve_ray(resource, model_name, namespace, args.interval, args.once)
        return
    serve_current(resource, model_name, args.host, args.port, args.stop_with_parent)


if __name__ == "__main__":
    main()
