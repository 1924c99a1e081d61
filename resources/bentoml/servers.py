"""Starting, watching and stopping ``bentoml serve`` processes, and the router of a deployment.

Every server runs in a process group of its own (``start_new_session``), so stopping it reaches
BentoML's arbiter and all its workers, and a server outlives no ``with`` block. A canary or shadow
deployment is its two bentos on loopback ports plus the caller's router program on the public
port; ``DeploymentServer`` starts and stops them as one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from resources.bentoml.types import (
    BentoStoreError,
    DeploymentRecord,
    RouterProgram,
    bento_name_for,
    output_tail,
)

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class BentoServer:
    """A running ``bentoml serve`` process group; stop it with ``stop()`` or a ``with`` block."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path
    tag: str
    token: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def probe(self, path: str = "/readyz", timeout: float = 2.0) -> int | None:
        """The HTTP status of ``path``, or None when nothing answers."""
        request = urllib.request.Request(self.url + path)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except (urllib.error.URLError, OSError):
            return None

    def wait_until_listening(self, timeout: float = 90.0) -> None:
        """Block until the server answers ``/livez`` (ready or not); raise if it died or hung."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BentoStoreError(
                    f"bentoml serve {self.tag} exited with {self.process.returncode}:\n"
                    + output_tail(self.log())
                )
            if self.probe("/livez") == 200:
                return
            time.sleep(0.25)
        raise BentoStoreError(f"bentoml serve {self.tag} did not answer in {timeout:.0f}s")

    def wait_until_ready(self, timeout: float = 90.0) -> None:
        """Block until ``/readyz`` answers 200 (the model is loaded)."""
        self.wait_until_listening(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.probe("/readyz") == 200:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.25)
        raise BentoStoreError(
            f"{self.tag} is not ready: see {self.log_path}\n" + output_tail(self.log())
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the whole process group (arbiter and workers), SIGKILL what outlives it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=5)

    def __enter__(self) -> BentoServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


@dataclass
class DeploymentServer:
    """The processes serving one deployment: its bentos, and the router when there is a canary."""

    record: DeploymentRecord
    bentos: list[BentoServer]
    router: BentoServer | None = None

    @property
    def front(self) -> BentoServer:
        return self.router or self.bentos[0]

    @property
    def url(self) -> str:
        return self.front.url

    def wait_until_ready(self, timeout: float = 120.0) -> None:
        for server in [*self.bentos, *([self.router] if self.router else [])]:
            server.wait_until_ready(timeout)

    def stop(self) -> None:
        for server in [*([self.router] if self.router else []), *self.bentos]:
            server.stop()

    def __enter__(self) -> DeploymentServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


@dataclass(frozen=True)
class ServerLauncher:
    """Starts servers with one environment (BENTOML_HOME set), from one folder, logging into
    ``log_dir``; the bearer token, when ``token_env`` is set there, is what probes send."""

    environment: Mapping[str, str]
    cwd: Path
    log_dir: Path
    token_env: str

    def _start(
        self, argv: Sequence[str], cwd: Path, log_path: Path, host: str, port: int, tag: str
    ) -> BentoServer:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, *argv],
                cwd=cwd,
                env=dict(self.environment),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        token = self.environment.get(self.token_env) or None
        return BentoServer(process, host, port, log_path, tag, token=token)

    def bento(self, tag: str, host: str, port: int) -> BentoServer:
        """``bentoml serve <tag>`` on ``host:port`` (port 0: a free one); the caller stops it."""
        port = port or free_port(host)
        log_path = self.log_dir / f"serve-{bento_name_for(tag)}-{port}.log"
        argv = ["-m", "bentoml", "serve", tag, "--host", host, "--port", str(port)]
        return self._start(argv, self.cwd, log_path, host, port, tag)

    def deployment(
        self,
        record: DeploymentRecord,
        router: RouterProgram,
        host: str,
        port: int,
        max_body_bytes: int,
        shadow_log: Path,
    ) -> DeploymentServer:
        """Serve what ``record`` says is live on ``host:port``: the champion's bento alone, or
        both bentos on loopback ports behind ``router``. The caller stops it."""
        if record.canary is None:
            return DeploymentServer(record, [self.bento(record.champion.bento_tag, host, port)])
        public_port = port or free_port(host)
        started: list[BentoServer] = []
        try:
            for served in (record.champion, record.canary):
                started.append(self.bento(served.bento_tag, LOOPBACK, free_port()))
            champion, canary = started
            spec = {
                "champion_url": champion.url,
                "canary_url": canary.url,
                "mode": record.mode,
                "share": record.canary_share,
                "host": host,
                "port": public_port,
                "max_body_bytes": max_body_bytes,
                "token_env": self.token_env,
                "deployment_id": record.deployment_id,
                "shadow_log": str(shadow_log) if record.mode == "shadow" else "",
            }
            stem = f"router-{record.deployment_id}-{public_port}"
            self.log_dir.mkdir(parents=True, exist_ok=True)
            spec_path = self.log_dir / f"{stem}.json"
            spec_path.write_text(json.dumps(spec, indent=2))
            front = self._start(
                ["-m", router.module, str(spec_path)],
                router.cwd,
                self.log_dir / f"{stem}.log",
                host,
                public_port,
                f"deployment-{record.deployment_id}-router",
            )
        except BaseException:
            for server in started:
                server.stop()
            raise
        return DeploymentServer(record, started, front)
