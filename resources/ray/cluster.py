"""Ray nodes on this machine, the node each one declares itself to be, and connecting to a cluster.

``RayHead.start`` runs ``ray start --head --block`` in a session of its own, bound to one address,
with the CPUs it may use and free ports, and records its pid so ``RayHead.stop`` (``make ray-down``)
ends exactly the processes it started — never ``ray stop``, which ends every Ray process of the
user on the machine. ``RayHead.join`` starts a worker node the same way (another machine, or a
second node on this one in tests).

Every node declares a custom resource naming it, ``efficientai_node:<name>`` with a large
capacity (``NODE_CAPACITY``): an actor that asks for a little of it can only run on that node.
Ray's automatic ``node:<ip>`` resource cannot do this when two nodes share an address (two nodes
on one machine), and a name survives a node's restart with a new IP. ``declared_nodes`` lists the
live nodes by name. ``check_reachable`` answers within seconds when nothing listens at an address
(``ray.init`` would otherwise wait for a minute), so "Ray is not running" is a clear error.

Ray is imported only inside functions: importing it costs about a second.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_ADDRESS = "127.0.0.1:6379"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
AUTH_MODE_ENV = "RAY_AUTH_MODE"
NODE_RESOURCE_PREFIX = "efficientai_node:"
NODE_CAPACITY = 10_000  # far more replicas and probes than a node will ever hold
DEFAULT_HEAD_NAME = "head"
_NODE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_STARTED_LINE = b"Ray runtime started"


class RayUnavailableError(RuntimeError):
    """No Ray cluster answers at the address; the message names it and what to do."""


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` → (host, port), refusing anything else with the expected form."""
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailableError(
            f"Ray address {address!r} is not host:port (for example {DEFAULT_ADDRESS})"
        )
    return host, int(port)


def check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """Raise ``RayUnavailableError`` naming ``address`` unless its GCS port accepts a connection."""
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except OSError as error:
        raise RayUnavailableError(
            f"no Ray cluster at {address} ({error.strerror or error}): start one with "
            "`make ray-up`, or set EFFICIENTAI_RAY_ADDRESS to the head's host:port"
        ) from error


def check_node_name(name: str) -> str:
    """A node name as deployments and resources carry it: lowercase letters, digits, dashes."""
    if not _NODE_NAME.match(name):
        raise ValueError(
            f"node name {name!r} must be 1-32 lowercase letters, digits or dashes, "
            "starting with a letter or digit (for example 'head' or 'gpu-box-2')"
        )
    return name


def node_resource(name: str) -> str:
    """The custom resource node ``name`` declares (``efficientai_node:<name>``)."""
    return NODE_RESOURCE_PREFIX + check_node_name(name)


def node_resources_flag(name: str) -> str:
    """``ray start``'s ``--resources`` value declaring node ``name``."""
    return "--resources=" + json.dumps({node_resource(name): NODE_CAPACITY})


def declared_in(resources: dict[str, float]) -> list[str]:
    """The node names a node's resource table declares (normally one)."""
    return sorted(
        key[len(NODE_RESOURCE_PREFIX) :]
        for key in resources
        if key.startswith(NODE_RESOURCE_PREFIX)
    )


def declared_nodes() -> dict[str, str]:
    """Live nodes of the connected cluster by declared name → Ray node id.

    A name declared by two live nodes is refused (a deployment pinned to it would span both);
    a node that declares no name holds no model replicas and is not listed."""
    import ray

    found: dict[str, list[str]] = {}
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        for name in declared_in(node.get("Resources", {})):
            found.setdefault(name, []).append(str(node["NodeID"]))
    twice = {name: ids for name, ids in found.items() if len(ids) > 1}
    if twice:
        raise RayUnavailableError(
            f"node names declared by more than one live node: {sorted(twice)}; give each node "
            f'its own name (ray start ... --resources=\'{{"{NODE_RESOURCE_PREFIX}<name>": '
            f"{NODE_CAPACITY}}}')"
        )
    return {name: ids[0] for name, ids in sorted(found.items())}


def connect(address: str, namespace: str) -> None:
    """Join the cluster at ``address`` as a driver in ``namespace`` (checked first, in seconds)."""
    import ray

    check_reachable(address)
    if ray.is_initialized():
        if ray.get_runtime_context().gcs_address == address:
            return
        ray.shutdown()  # connected to another cluster (one stopped since): leave it first
    ray.init(
        address=address,
        namespace=namespace,
        logging_level=logging.WARNING,
        log_to_driver=False,
        configure_logging=False,
    )


def disconnect() -> None:
    """Leave the cluster (what was deployed on it keeps running)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def ray_executable() -> str:
    """The ``ray`` command of this environment (beside its Python)."""
    return str(Path(sys.executable).with_name("ray"))


@dataclass(frozen=True)
class RayHead:
    """A node started by this process (the head, or a worker that joined ``address``): where the
    cluster is, the name the node declares, and how to stop it."""

    address: str
    pid: int
    num_cpus: float
    temp_dir: str
    log_path: str
    node_name: str = DEFAULT_HEAD_NAME
    head: bool = True

    @classmethod
    def start(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        num_cpus: int = 2,
        temp_dir: str | None = None,
        log_path: str | None = None,
        timeout_s: float = START_TIMEOUT_S,
        node_name: str = DEFAULT_HEAD_NAME,
    ) -> RayHead:
        """Start a head bound to ``host`` with ``num_cpus`` CPUs, declaring ``node_name``, and
        wait until it answers.

        ``port`` 0 picks a free one; the client-server and agent ports are free ones too, so
        two heads can share a machine. Unix socket paths are limited to ~100 bytes, so the
        temporary directory is a short one under /tmp unless given."""
        port = port or free_port(host)
        flags = [
            "--head",
            f"--port={port}",
            "--include-dashboard=false",
            f"--ray-client-server-port={free_port(host)}",
        ]
        node, process = _launch(
            f"{host}:{port}", host, num_cpus, node_name, flags, temp_dir, log_path
        )
        deadline = time.monotonic() + timeout_s
        while True:
            node._check_alive(process)
            try:
                check_reachable(node.address, timeout_s=1.0)
                return node
            except RayUnavailableError:
                node._check_deadline(deadline, timeout_s)
                time.sleep(0.5)

    @classmethod
    def join(
        cls,
        address: str,
        node_name: str,
        num_cpus: int = 1,
        host: str = "127.0.0.1",
        temp_dir: str | None = None,
        log_path: str | None = None,
        timeout_s: float = START_TIMEOUT_S,
    ) -> RayHead:
        """Start a worker node on this machine that joins the cluster at ``address``, declaring
        ``node_name``, and wait until it has registered (``ray start`` says so in its log)."""
        check_reachable(address)
        flags = [f"--address={address}"]
        node, process = _launch(
            address, host, num_cpus, node_name, flags, temp_dir, log_path, head=False
        )
        deadline = time.monotonic() + timeout_s
        while True:
            node._check_alive(process)
            if _STARTED_LINE in Path(node.log_path).read_bytes():
                return node
            node._check_deadline(deadline, timeout_s)
            time.sleep(0.5)

    def _check_alive(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is not None:
            raise RayUnavailableError(
                f"ray start exited with {process.returncode} before node {self.node_name} "
                f"({self.address}) was up: see {self.log_path}"
            )

    def _check_deadline(self, deadline: float, timeout_s: float) -> None:
        if time.monotonic() > deadline:
            self.stop()
            raise RayUnavailableError(
                f"Ray node {self.node_name} was not up at {self.address} within {timeout_s:.0f}s: "
                f"see {self.log_path}"
            )

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """End the head's process group (``ray start --block`` takes its node down on SIGTERM),
        then any process of that group still alive."""
        import psutil

        try:
            root = psutil.Process(self.pid)
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        _, alive = psutil.wait_procs(family, timeout=timeout_s)
        for process in alive:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                continue
        psutil.wait_procs(alive, timeout=5)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RayHead:
        return cls(**json.loads(text))


def _launch(
    address: str,
    host: str,
    num_cpus: int,
    node_name: str,
    flags: list[str],
    temp_dir: str | None,
    log_path: str | None,
    head: bool = True,
) -> tuple[RayHead, subprocess.Popen[bytes]]:
    """``ray start --block`` with ``flags`` in a session of its own, declaring ``node_name``."""
    temp = temp_dir or tempfile.mkdtemp(prefix="eai-ray-")
    log = log_path or os.path.join(temp, f"{node_name}.log")
    command = [
        ray_executable(),
        "start",
        "--block",
        *flags,
        f"--node-ip-address={host}",
        f"--num-cpus={num_cpus}",
        node_resources_flag(node_name),
        "--disable-usage-stats",
        f"--dashboard-agent-listen-port={free_port(host)}",
        f"--temp-dir={temp}",
    ]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    # Ray 2.60 turns token auth on for a node started while ~/.ray/auth_token exists (any local
    # ``ray.init()`` writes one) but never for a driver given an address, which then cannot
    # connect. The mode is therefore explicit: RAY_AUTH_MODE from the environment (``token``, with
    # the token on every node and driver), else disabled, the same for nodes and drivers.
    env.setdefault(AUTH_MODE_ENV, "disabled")
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return RayHead(address, process.pid, float(num_cpus), temp, log, node_name, head), process
