"""The BentoML store as a Dagster resource: import MLX weights, build bentos, list and serve them.

BentoML reads ``BENTOML_HOME`` once, when its configuration container is first used, and caches it
for the life of the process. So every store operation here runs BentoML in a child process whose
environment names this resource's home: several homes (tests, projects) can be used from one
process, and the Dagster process never imports bentoml at all.

- ``import_model`` copies ``weights.safetensors`` + ``config.json`` into ``bentoml.models.create``
  (no pickle); the model version is derived from the file contents, so re-importing is a no-op.
- ``build_bento`` runs the real ``bentoml build`` on a build context holding the service package,
  a ``serving.json`` (model tag, provenance, limits), pinned requirements and a ``bentofile.yaml``
  whose Docker options make ``bentoml containerize`` work. Its version is derived from everything
  that goes in, so an unchanged model + code + config reuses the existing bento.
- ``serve`` starts ``bentoml serve <tag>`` bound to ``host`` (127.0.0.1 unless configured).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from resources.home import default_home

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SERVICE_PACKAGE = PROJECT_ROOT / "efficientai_assets" / "bento_service"
MLP_MODULE = PROJECT_ROOT / "efficientai_assets" / "models" / "mlp.py"
SERVICE_IMPORT = "efficientai_assets.bento_service.service:MLXClassifierService"
SETTINGS_RELPATH = "efficientai_assets/bento_service/serving.json"
MODEL_FILES = ("weights.safetensors", "config.json")
LOCAL_UV = PROJECT_ROOT / ".tools" / "bin" / "uv"

# Distributions the service imports, pinned to the versions installed here.
SERVICE_REQUIREMENTS = ("bentoml", "numpy", "pydantic", "starlette", "annotated-types")

_TAG_PART = re.compile(r"[^a-z0-9._-]+")

# Runs in a child process with BENTOML_HOME set: create the model unless its tag already exists.
_IMPORT_MODEL_SCRIPT = """
import json, shutil, sys
import bentoml
from bentoml.exceptions import NotFound
spec = json.loads(sys.argv[1])
try:
    model = bentoml.models.get(spec["tag"])
    created = False
except NotFound:
    with bentoml.models.create(
        spec["tag"], labels=spec["labels"], metadata=spec["metadata"]
    ) as model:
        for name, source in spec["files"].items():
            shutil.copyfile(source, model.path_of(name))
    model = bentoml.models.get(spec["tag"])
    created = True
print(json.dumps({"tag": str(model.tag), "path": model.path, "created": created}))
"""


class BentoStoreError(RuntimeError):
    """A BentoML command failed; the message carries the command and its last output lines."""


def bento_name_for(model_name: str) -> str:
    """A BentoML-valid name (lowercase, ``[a-z0-9._-]``) for a registered model name."""
    name = _TAG_PART.sub("-", model_name.lower()).strip("-._")
    if not name:
        raise ValueError(f"cannot derive a BentoML name from {model_name!r}")
    return name


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _digest(parts: Sequence[bytes]) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(hashlib.sha256(part).digest())
    return hasher.hexdigest()[:16]


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


@dataclass(frozen=True)
class ModelProvenance:
    """Where the served weights came from; becomes the bento's labels and response headers."""

    model_name: str
    model_version: str
    data_md5: str
    git_sha: str

    def labels(self) -> dict[str, str]:
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "data_md5": self.data_md5,
            "git_sha": self.git_sha,
        }


@dataclass(frozen=True)
class ImportedModel:
    tag: str
    path: Path
    created: bool


@dataclass(frozen=True)
class BentoInfo:
    """One bento in the store, as ``bentoml get`` reports it."""

    tag: str
    path: Path
    size_bytes: int
    labels: dict[str, str]
    model_tags: tuple[str, ...]
    creation_time: str
    built: bool = False

    @property
    def name(self) -> str:
        return self.tag.split(":", 1)[0]

    @property
    def version(self) -> str:
        return self.tag.split(":", 1)[1]


@dataclass(frozen=True)
class ServedModel:
    """One model version as it is deployed: its bento and where its weights came from."""

    model_version: str
    bento_tag: str
    data_md5: str = ""
    git_sha: str = ""


DEPLOYMENT_MODES = ("single", "canary", "shadow")


@dataclass(frozen=True)
class DeploymentRecord:
    """What is live after one move (deploy, promote, rollback): who, what, when and why."""

    deployment_id: int
    model_name: str
    action: str
    mode: str
    champion: ServedModel
    canary: ServedModel | None
    canary_share: float
    requested_by: str
    reason: str
    created_at: str
    dagster_run_id: str = ""
    previous_deployment_id: int | None = None
    previous_champion_version: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in DEPLOYMENT_MODES:
            raise ValueError(
                f"deployment mode must be one of {DEPLOYMENT_MODES}, got {self.mode!r}"
            )
        if (self.mode == "single") != (self.canary is None):
            raise ValueError(f"mode {self.mode!r} and canary {self.canary!r} disagree")
        if not 0.0 <= self.canary_share < 1.0:
            raise ValueError(f"canary_share must be in [0, 1), got {self.canary_share}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DeploymentRecord:
        values = dict(raw)
        values["champion"] = ServedModel(**values["champion"])
        values["canary"] = ServedModel(**values["canary"]) if values.get("canary") else None
        return cls(**values)

    def summary(self) -> str:
        text = f"#{self.deployment_id} {self.action}: v{self.champion.model_version}"
        if self.canary is not None:
            share = "shadow" if self.mode == "shadow" else f"{self.canary_share:.0%}"
            text += f" + canary v{self.canary.model_version} ({share})"
        return text


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
                    + _tail(self.log())
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
        raise BentoStoreError(f"{self.tag} is not ready: see {self.log_path}\n" + _tail(self.log()))

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


class BentoMLResource(dg.ConfigurableResource):
    """The BentoML home, the serving limits baked into bentos, and where servers bind."""

    bentoml_home: str = Field(
        default="", description="BENTOML_HOME; empty means <EFFICIENTAI_HOME>/bentoml."
    )
    host: str = Field(
        default="127.0.0.1", description="Bind address of served bentos (0.0.0.0 exposes them)."
    )
    port: int = Field(default=3000, ge=0, le=65535, description="Port of `serve` (0: any free).")
    max_rows: int = Field(default=512, ge=1, description="Most rows one predict request may hold.")
    max_body_bytes: int = Field(
        default=1_000_000, ge=1, description="Larger request bodies are refused before parsing."
    )
    max_batch_size: int = Field(default=512, ge=2, description="Adaptive batching: largest batch.")
    max_latency_ms: int = Field(
        default=10_000,
        ge=1,
        description="Adaptive batching: queued requests older than this get 503.",
    )
    token_env: str = Field(
        default="EFFICIENTAI_SERVE_TOKEN",
        description="Name of the environment variable holding the bearer token; unset = no auth.",
    )
    python_version: str = Field(default="3.11", description="Python of the bento's Docker image.")
    command_timeout_seconds: int = Field(default=600, ge=10)

    # -- environment -----------------------------------------------------------------------

    def resolved_home(self) -> Path:
        return Path(self.bentoml_home or default_home().bentoml_home).expanduser().resolve()

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a BentoML child process: this home, no telemetry."""
        home = self.resolved_home()
        home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            {
                "BENTOML_HOME": str(home),
                "BENTOML_DO_NOT_TRACK": "true",
            }
        )
        # A bento runs its own copy of the service code; nothing may shadow it.
        env.pop("PYTHONPATH", None)
        # ``bentoml build`` resolves uv (to freeze requirements) and pip-installs it when absent,
        # which fails offline; ``make setup`` installs uv into .tools/bin.
        if shutil.which("uv", path=env.get("PATH")) is None and LOCAL_UV.is_file():
            env["PATH"] = os.pathsep.join([str(LOCAL_UV.parent), env.get("PATH", "")])
        env.update(extra or {})
        return env

    def _run(self, args: Sequence[str], cwd: Path | None = None) -> str:
        command = [sys.executable, *args]
        try:
            completed = subprocess.run(
                command,
                cwd=cwd or self.resolved_home(),
                env=self.environment(),
                capture_output=True,
                text=True,
                timeout=self.command_timeout_seconds,
            )
        except subprocess.TimeoutExpired as error:
            raise BentoStoreError(
                f"{' '.join(args[:4])} timed out after {self.command_timeout_seconds}s"
            ) from error
        if completed.returncode != 0:
            raise BentoStoreError(
                f"{' '.join(args[:4])} failed ({completed.returncode}) with BENTOML_HOME="
                f"{self.resolved_home()}:\n{_tail(completed.stderr or completed.stdout)}"
            )
        return completed.stdout

    def _bentoml(self, *args: str, cwd: Path | None = None) -> str:
        return self._run(["-m", "bentoml", *args], cwd=cwd)

    # -- models ------------------------------------------------------------------------------

    def import_model(
        self,
        model_dir: Path,
        provenance: ModelProvenance,
        metadata: Mapping[str, Any] | None = None,
    ) -> ImportedModel:
        """Copy the safetensors weights and JSON config into the BentoML model store."""
        files = {name: Path(model_dir) / name for name in MODEL_FILES}
        missing = [str(path) for path in files.values() if not path.is_file()]
        if missing:
            raise FileNotFoundError(f"cannot import the model: missing {missing}")
        digest = _digest([path.read_bytes() for path in files.values()])
        name = bento_name_for(provenance.model_name)
        tag = f"{name}:v{bento_name_for(provenance.model_version)}-{digest}"
        spec = {
            "tag": tag,
            "labels": provenance.labels(),
            "metadata": {"content_digest": digest, **dict(metadata or {})},
            "files": {key: str(path) for key, path in files.items()},
        }
        out = self._run(["-c", _IMPORT_MODEL_SCRIPT, json.dumps(spec)])
        result = json.loads(out.strip().splitlines()[-1])
        return ImportedModel(
            tag=result["tag"], path=Path(result["path"]), created=result["created"]
        )

    # -- bentos -------------------------------------------------------------------------------

    def serving_settings(
        self, model_tag: str, provenance: ModelProvenance, model_config: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The ``serving.json`` a bento is built with."""
        return {
            "bento_model_tag": model_tag,
            **provenance.labels(),
            "n_features": len(model_config["feature_names"]),
            "feature_names": list(model_config["feature_names"]),
            "classes": [int(c) for c in model_config["classes"]],
            "max_rows": self.max_rows,
            "max_body_bytes": self.max_body_bytes,
            "max_batch_size": self.max_batch_size,
            "max_latency_ms": self.max_latency_ms,
            "token_env": self.token_env,
        }

    def _requirements(self) -> str:
        pins = [f"{dist}=={importlib_metadata.version(dist)}" for dist in SERVICE_REQUIREMENTS]
        mlx = importlib_metadata.version("mlx")
        pins += [
            f'mlx[cpu]=={mlx}; sys_platform == "linux"',
            f'mlx=={mlx}; sys_platform == "darwin"',
        ]
        return "\n".join(pins) + "\n"

    def _bentofile(self, name: str, labels: Mapping[str, str]) -> str:
        import yaml

        document = {
            "service": SERVICE_IMPORT,
            "name": name,
            "description": "file: README.md",
            "labels": dict(labels),
            "include": ["efficientai_assets/**/*.py", SETTINGS_RELPATH, "README.md"],
            "python": {"requirements_txt": "requirements.txt", "lock_packages": False},
            "docker": {"distro": "debian", "python_version": self.python_version},
        }
        return yaml.safe_dump(document, sort_keys=False)

    def _build_context(
        self, root: Path, name: str, settings: Mapping[str, Any], labels: Mapping[str, str]
    ) -> list[bytes]:
        """Lay out the build context in ``root``; returns what decides the bento's content."""
        package = root / "efficientai_assets"
        (package / "bento_service").mkdir(parents=True)
        (package / "models").mkdir(parents=True)
        (package / "__init__.py").write_text('"""The parts of efficientai that serve a model."""\n')
        (package / "models" / "__init__.py").write_text("")
        shutil.copyfile(MLP_MODULE, package / "models" / "mlp.py")
        sources = sorted(SERVICE_PACKAGE.glob("*.py"))
        for source in sources:
            shutil.copyfile(source, package / "bento_service" / source.name)
        (root / SETTINGS_RELPATH).write_text(json.dumps(dict(settings), indent=2, sort_keys=True))
        (root / "requirements.txt").write_text(self._requirements())
        (root / "bentofile.yaml").write_text(self._bentofile(name, labels))
        (root / "README.md").write_text(_bento_readme(settings))
        return [
            *(path.read_bytes() for path in [MLP_MODULE, *sources]),
            (root / SETTINGS_RELPATH).read_bytes(),
            (root / "requirements.txt").read_bytes(),
            (root / "bentofile.yaml").read_bytes(),
        ]

    def build_bento(
        self,
        model: ImportedModel,
        provenance: ModelProvenance,
        extra_labels: Mapping[str, str] | None = None,
    ) -> BentoInfo:
        """``bentoml build`` the service around ``model``; reuse the bento if one identical exists."""
        model_config = json.loads((model.path / "config.json").read_text())
        name = bento_name_for(provenance.model_name)
        labels = {**provenance.labels(), "bento_model_tag": model.tag, **dict(extra_labels or {})}
        settings = self.serving_settings(model.tag, provenance, model_config)
        with tempfile.TemporaryDirectory(prefix="efficientai-bento-") as scratch:
            content = self._build_context(Path(scratch), name, settings, labels)
            version = f"v{bento_name_for(provenance.model_version)}-{_digest(content)}"
            existing = self.get_bento(f"{name}:{version}")
            if existing is not None:
                return existing
            out = self._bentoml(
                "build", scratch, "--version", version, "-o", "tag", cwd=Path(scratch)
            )
        tag = next(
            (
                line.split("__tag__:", 1)[1].strip()
                for line in out.splitlines()
                if "__tag__:" in line
            ),
            f"{name}:{version}",
        )
        info = self.get_bento(tag)
        if info is None:
            raise BentoStoreError(f"bentoml build reported {tag} but the store does not hold it")
        return BentoInfo(**{**info.__dict__, "built": True})

    def get_bento(self, tag: str) -> BentoInfo | None:
        """The bento ``tag`` as ``bentoml get`` reports it, or None when the store lacks it."""
        try:
            out = self._bentoml("get", tag, "-o", "json")
        except BentoStoreError as error:
            if "not found" in str(error).lower():
                return None
            raise
        return self._info_from_json(json.loads(out))

    def list_bentos(self, labels: Mapping[str, str] | None = None) -> list[BentoInfo]:
        """Every bento in this home (newest first), optionally only those carrying ``labels``."""
        out = self._bentoml("list", "-o", "json")
        entries = json.loads(out or "[]")
        infos = [info for entry in entries if (info := self.get_bento(entry["tag"])) is not None]
        wanted = dict(labels or {})
        matching = [i for i in infos if all(i.labels.get(k) == v for k, v in wanted.items())]
        return sorted(matching, key=lambda info: info.creation_time, reverse=True)

    def _info_from_json(self, document: Mapping[str, Any]) -> BentoInfo:
        tag = f"{document['name']}:{document['version']}"
        home = self.resolved_home()
        path = home / "bentos" / document["name"] / document["version"]
        models = tuple(
            dict.fromkeys(
                str(model["tag"])
                for entry in [document, *document.get("services", [])]
                for model in entry.get("models", [])
            )
        )
        # BentoML 1.4 keeps a bento's models in the home's model store (copied in on export).
        model_dirs = [home / "models" / Path(*m.split(":", 1)) for m in models]
        return BentoInfo(
            tag=tag,
            path=path,
            size_bytes=sum(directory_size(p) for p in [path, *model_dirs] if p.exists()),
            labels={str(k): str(v) for k, v in (document.get("labels") or {}).items()},
            model_tags=models,
            creation_time=str(document.get("creation_time", "")),
        )

    # -- deployment records ----------------------------------------------------------------------

    def deployments_dir(self, model_name: str) -> Path:
        return self.resolved_home() / "deployments" / bento_name_for(model_name)

    def deployment_history(self, model_name: str) -> list[DeploymentRecord]:
        """Every recorded deployment of ``model_name``, oldest first."""
        folder = self.deployments_dir(model_name)
        paths = (
            sorted(folder.glob("[0-9]*.json"), key=lambda p: int(p.stem)) if folder.exists() else []
        )
        return [DeploymentRecord.from_dict(json.loads(p.read_text())) for p in paths]

    def current_deployment(self, model_name: str) -> DeploymentRecord | None:
        history = self.deployment_history(model_name)
        return history[-1] if history else None

    def write_deployment(self, record: DeploymentRecord) -> Path:
        """Append ``record`` (its id must be the next one); written atomically, never overwritten."""
        folder = self.deployments_dir(record.model_name)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{record.deployment_id:06d}.json"
        # A staging file of its own: a concurrent writer of the same id must not overwrite it.
        handle, name = tempfile.mkstemp(dir=folder, prefix=f".{record.deployment_id:06d}.")
        staging = Path(name)
        with os.fdopen(handle, "w") as out:
            out.write(json.dumps(record.to_dict(), indent=2, sort_keys=True))
        try:
            os.link(staging, path)  # fails if another move took this id first
        except FileExistsError as error:
            raise BentoStoreError(
                f"deployment #{record.deployment_id} of {record.model_name} already exists: "
                "another deployment ran concurrently; retry"
            ) from error
        finally:
            staging.unlink(missing_ok=True)
        return path

    # -- serving -------------------------------------------------------------------------------

    def serve(
        self,
        tag: str,
        port: int | None = None,
        host: str | None = None,
        env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> BentoServer:
        """Start ``bentoml serve <tag>`` in its own process group; the caller stops it.

        ``port=None`` uses this resource's port (0 picks a free one). ``env`` adds variables to
        the server (e.g. ``EFFICIENTAI_SERVE_MAX_ROWS`` or the bearer token variable).
        """
        host = host or self.host
        chosen = self.port if port is None else port
        chosen = chosen or free_port(host)
        log_dir = log_dir or (self.resolved_home() / "logs")
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"serve-{bento_name_for(tag)}-{chosen}.log"
        environment = self.environment(env)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bentoml",
                    "serve",
                    tag,
                    "--host",
                    host,
                    "--port",
                    str(chosen),
                ],
                cwd=self.resolved_home(),
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return BentoServer(
            process=process,
            host=host,
            port=chosen,
            log_path=log_path,
            tag=tag,
            token=environment.get(self.token_env) or None,
        )

    def serve_deployment(
        self,
        record: DeploymentRecord,
        port: int | None = None,
        host: str | None = None,
        env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> DeploymentServer:
        """Serve what ``record`` says is live on ``host:port``: the champion's bento alone, or
        both bentos on loopback ports behind the canary/shadow router. The caller stops it."""
        if record.canary is None:
            return DeploymentServer(
                record, [self.serve(record.champion.bento_tag, port, host, env, log_dir)]
            )
        host = host or self.host
        public_port = (self.port if port is None else port) or free_port(host)
        log_dir = log_dir or (self.resolved_home() / "logs")
        started: list[BentoServer] = []
        try:
            for served in (record.champion, record.canary):
                started.append(self.serve(served.bento_tag, free_port(), "127.0.0.1", env, log_dir))
            champion, canary = started
            spec = {
                "champion_url": champion.url,
                "canary_url": canary.url,
                "mode": record.mode,
                "share": record.canary_share,
                "host": host,
                "port": public_port,
                "max_body_bytes": self.max_body_bytes,
                "token_env": self.token_env,
                "deployment_id": record.deployment_id,
                "shadow_log": str(self.shadow_log_path(record)) if record.mode == "shadow" else "",
            }
            spec_path = log_dir / f"router-{record.deployment_id}-{public_port}.json"
            spec_path.write_text(json.dumps(spec, indent=2))
            log_path = log_dir / f"router-{record.deployment_id}-{public_port}.log"
            environment = self.environment(env)
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "efficientai_assets.bento_service.router",
                        str(spec_path),
                    ],
                    cwd=PROJECT_ROOT,
                    env=environment,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except BaseException:
            for server in started:
                server.stop()
            raise
        router = BentoServer(
            process=process,
            host=host,
            port=public_port,
            log_path=log_path,
            tag=f"deployment-{record.deployment_id}-router",
            token=environment.get(self.token_env) or None,
        )
        return DeploymentServer(record, started, router)

    def shadow_log_path(self, record: DeploymentRecord) -> Path:
        """Where a shadow deployment appends the champion's and the challenger's answers."""
        return self.deployments_dir(record.model_name) / f"shadow-{record.deployment_id:06d}.jsonl"


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


def _bento_readme(settings: Mapping[str, Any]) -> str:
    return (
        f"# {settings['model_name']} version {settings['model_version']}\n\n"
        "An MLX classifier served by BentoML. `POST /predict` with "
        f'`{{"instances": [[...{settings["n_features"]} numbers...], ...]}}` (at most '
        f"{settings['max_rows']} rows, {settings['max_body_bytes']} bytes) returns a label and the "
        "class probabilities for each row. `GET /metadata` names the model version, data md5 and "
        "git sha; `/readyz` is 503 until the weights are loaded.\n\n"
        f"Data md5: `{settings['data_md5']}`. Git sha: `{settings['git_sha']}`.\n"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m resources.bentoml.store serve``: serve the current deployment until Ctrl-C."""
    import argparse

    from efficientai_assets.names import MODEL_NAME

    parser = argparse.ArgumentParser(prog="python -m resources.bentoml.store")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the current deployment (champion [+ canary])")
    serve.add_argument("--model-name", default="", help="registered model (default: the project's)")
    serve.add_argument("--host", default="", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 3000)")
    commands.add_parser("list", help="list the bentos of this home")
    args = parser.parse_args(argv)

    resource = BentoMLResource()
    if args.command == "list":
        for info in resource.list_bentos():
            print(f"{info.tag}  {info.size_bytes / 1e6:.2f} MB  {json.dumps(info.labels)}")
        return
    namespace = os.environ.get("EFFICIENTAI_PROJECT", "efficientai")
    model_name = args.model_name or f"{namespace}-{MODEL_NAME}"
    record = resource.current_deployment(model_name)
    if record is None:
        raise SystemExit(
            f"no deployment of {model_name} in {resource.resolved_home()}: run `make run` "
            "(or materialize the deployment asset) first"
        )
    with resource.serve_deployment(record, port=args.port, host=args.host or None) as server:
        server.wait_until_ready()
        print(f"serving {record.summary()} on {server.url} (Ctrl-C stops)", flush=True)
        try:
            while all(s.process.poll() is None for s in [*server.bentos, server.front]):
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
