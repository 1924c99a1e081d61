"""Ray Serve applications on a connected cluster: start the HTTP proxy, run, update, inspect and
delete one application, and the autoscaling block Serve takes.

One application per name (the project passes its namespace) under its own route prefix, so
several projects share one cluster and one HTTP port. Ray is imported inside functions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


class ServeError(RuntimeError):
    """An application did not reach RUNNING, or was not found."""


@dataclass(frozen=True)
class Autoscaling:
    """Serve's autoscaling block: replicas between ``min_replicas`` and ``max_replicas``, aiming at
    ``target_ongoing_requests`` in flight per replica."""

    min_replicas: int = 1
    max_replicas: int = 2
    target_ongoing_requests: float = 4.0
    upscale_delay_s: float = 3.0
    downscale_delay_s: float = 30.0

    def __post_init__(self) -> None:
        if self.min_replicas < 0 or self.max_replicas < 1:
            raise ValueError(
                f"replicas must be min >= 0 and max >= 1, got {self.min_replicas}..{self.max_replicas}"
            )
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas {self.min_replicas} exceeds max_replicas {self.max_replicas}"
            )
        if self.target_ongoing_requests <= 0:
            raise ValueError("target_ongoing_requests must be positive")

    def with_ceiling(self, ceiling: int) -> Autoscaling:
        """The same policy with at most ``ceiling`` replicas (the floor follows it down)."""
        top = max(1, min(self.max_replicas, ceiling))
        return Autoscaling(
            min(self.min_replicas, top),
            top,
            self.target_ongoing_requests,
            self.upscale_delay_s,
            self.downscale_delay_s,
        )

    def to_config(self) -> dict[str, Any]:
        """As ``autoscaling_config`` of a Serve deployment. The first replicas start at the floor
        (at least one, so the application is ready when ``run`` returns)."""
        return {
            "min_replicas": self.min_replicas,
            "initial_replicas": max(1, self.min_replicas),
            "max_replicas": self.max_replicas,
            "target_ongoing_requests": self.target_ongoing_requests,
            "upscale_delay_s": self.upscale_delay_s,
            "downscale_delay_s": self.downscale_delay_s,
        }


def start_http(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Start Serve (idempotent) with its HTTP proxy bound to ``host:port`` on the head node."""
    from ray import serve

    serve.start(http_options={"host": host, "port": port, "location": "HeadOnly"})


def http_url() -> str:
    """Where the Serve proxy listens, as started on this cluster."""
    from ray import serve

    client = serve.context._get_global_client()  # no public accessor in 2.60
    if client is None:
        raise ServeError("Serve is not started on this cluster: call start_http first")
    options = client.http_config
    return f"http://{options.host}:{options.port}"


def run_application(app: Any, name: str, route_prefix: str, timeout_s: float = 120.0) -> None:
    """Deploy (or update in place) application ``name`` under ``route_prefix`` and wait until it
    is RUNNING; a failed deployment raises with Serve's own message."""
    from ray import serve

    serve.run(app, name=name, route_prefix=route_prefix, blocking=False)
    wait_running(name, timeout_s)


def wait_running(name: str, timeout_s: float = 120.0) -> None:
    from ray import serve

    deadline = time.monotonic() + timeout_s
    while True:
        status = serve.status().applications.get(name)
        state = str(status.status) if status else "NOT_FOUND"
        if state.endswith("RUNNING"):
            return
        if state.endswith("DEPLOY_FAILED") or time.monotonic() > deadline:
            message = status.message if status else "not deployed"
            raise ServeError(f"Serve application {name} is {state}: {message}")
        time.sleep(0.25)


def delete_application(name: str) -> None:
    from ray import serve

    if name in serve.status().applications:
        serve.delete(name)


def running_replicas(app_name: str, deployment: str) -> int:
    """How many replicas of ``deployment`` in ``app_name`` are RUNNING now."""
    from ray import serve

    status = serve.status().applications.get(app_name)
    if status is None or deployment not in status.deployments:
        return 0
    counts = status.deployments[deployment].replica_states
    return int(sum(n for state, n in counts.items() if str(state).endswith("RUNNING")))


def replica_actor_names(app_name: str, deployment: str) -> list[str]:
    """Names of the live replica actors of ``deployment`` (Serve names them in its namespace)."""
    import ray

    prefix = f"SERVE_REPLICA::{app_name}#{deployment}#"
    named = ray.util.list_named_actors(all_namespaces=True)
    return sorted(str(actor["name"]) for actor in named if str(actor["name"]).startswith(prefix))


def kill_replica(actor_name: str) -> None:
    """End one replica as a crash would (Serve notices and starts another)."""
    import ray

    ray.kill(ray.get_actor(actor_name, namespace="serve"), no_restart=True)


def deployment_names(app_name: str) -> list[str]:
    """The deployments application ``app_name`` has now."""
    from ray import serve

    status = serve.status().applications.get(app_name)
    return sorted(status.deployments) if status is not None else []
