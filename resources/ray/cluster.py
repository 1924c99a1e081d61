"""A Ray head node on this machine, and connecting to a cluster at an address.

``RayHead.start`` runs ``ray start --head --block`` in a session of its own, bound to one address,
with the CPUs it may use and free ports, and records its pid so ``RayHead.stop`` (``make ray-down``)
ends exactly the processes it started — never ``ray stop``, which ends every Ray process of the
user on the machine. ``check_reachable`` answers within seconds when nothing listens at an address
(``ray.init`` would otherwise wait for a minute), so "Ray is not running" is a clear error.

Ray is imported only inside functions: importing it costs about a second.
"""

from __future__ import annotations

import json
import logging
import os
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


def connect(address: str, namespace: str) -> None:
    """Join the cluster at ``address`` as a driver in ``namespace`` (checked first, in seconds)."""
    import ray

    check_reachable(address)
    if ray.is_initialized():
        return
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
    """A head node started by this process: where it listens and how to stop it."""

    address: str
    pid: int
    num_cpus: float
    temp_dir: str
    log_path: str

    @classmethod
    def start(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        num_cpus: int = 2,
        temp_dir: str | None = None,
        log_path: str | None = None,
        timeout_s: float = START_TIMEOUT_S,
    ) -> RayHead:
        """Start a head bound to ``host`` with ``num_cpus`` CPUs and wait until it answers.

        ``port`` 0 picks a free one; the client-server and agent ports are free ones too, so
        two heads can share a machine. Unix socket paths are limited to ~100 bytes, so the
        temporary directory is a short one under /tmp unless given."""
        port = port or free_port(host)
        temp = temp_dir or tempfile.mkdtemp(prefix="eai-ray-")
        log = log_path or os.path.join(temp, "head.log")
        command = [
            ray_executable(),
            "start",
            "--head",
            "--block",
            f"--node-ip-address={host}",
            f"--port={port}",
            f"--num-cpus={num_cpus}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--ray-client-server-port={free_port(host)}",
            f"--dashboard-agent-listen-port={free_port(host)}",
            f"--temp-dir={temp}",
        ]
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        with open(log, "ab") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        head = cls(f"{host}:{port}", process.pid, float(num_cpus), temp, log)
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RayUnavailableError(
                    f"ray start exited with {process.returncode} before {head.address} answered: "
                    f"see {log}"
                )
            try:
                check_reachable(head.address, timeout_s=1.0)
                return head
            except RayUnavailableError:
                if time.monotonic() > deadline:
                    head.stop()
                    raise RayUnavailableError(
                        f"the Ray head did not answer at {head.address} within {timeout_s:.0f}s: "
                        f"see {log}"
                    ) from None
                time.sleep(0.5)

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
