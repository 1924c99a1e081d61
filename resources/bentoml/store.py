"""The BentoML store as a Dagster resource: import model files, build bentos, list and serve them.

BentoML reads ``BENTOML_HOME`` once, when its configuration container is first used, and caches it
for the life of the process. So every store operation here runs BentoML in a child process whose
environment names this resource's home: several homes (tests, projects) can be used from one
process, and the Dagster process never imports bentoml at all.

- ``import_model`` copies a model folder's files into ``bentoml.models.create`` (no pickle); the
  model version is derived from the file contents, so re-importing is a no-op.
- ``build_bento`` runs the real ``bentoml build`` on a build context laid out from the caller's
  ``ServicePackage`` (see ``build_context``); its version is derived from everything that goes
  in, so an unchanged model + code + config reuses the existing bento.
- ``serve`` / ``serve_deployment`` start ``bentoml serve`` (see ``servers``) bound to ``host``
  (127.0.0.1 unless configured); the deployment records live in ``records``.

The resource knows BentoML, not the project that uses it: what a bento carries, and the router
of a canary deployment, are handed in by the caller.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from resources.bentoml.build_context import content_digest, write_build_context
from resources.bentoml.records import DeploymentLog
from resources.bentoml.servers import BentoServer, DeploymentServer, ServerLauncher
from resources.bentoml.types import (
    BentoInfo,
    BentoStoreError,
    DeploymentRecord,
    ImportedModel,
    ModelProvenance,
    RouterProgram,
    ServicePackage,
    bento_name_for,
    output_tail,
)
from resources.home import default_home

# Runs in a child process with BENTOML_HOME set: create the model unless its tag already exists.
_IMPORT_MODEL_SCRIPT = """
import json, os, shutil, sys
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
            os.makedirs(os.path.dirname(model.path_of(name)), exist_ok=True)
            shutil.copyfile(source, model.path_of(name))
    model = bentoml.models.get(spec["tag"])
    created = True
print(json.dumps({"tag": str(model.tag), "path": model.path, "created": created}))
"""


def directory_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (links not followed)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


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
        env.update({"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"})
        # A bento runs its own copy of the service code; nothing may shadow it.
        env.pop("PYTHONPATH", None)
        # ``bentoml build`` resolves uv (to freeze requirements) and pip-installs it when absent,
        # which fails offline. An environment that was not activated has uv beside its Python.
        scripts = Path(sysconfig.get_path("scripts"))
        if shutil.which("uv", path=env.get("PATH")) is None and (scripts / "uv").is_file():
            env["PATH"] = os.pathsep.join([str(scripts), env.get("PATH", "")])
        env.update(extra or {})
        return env

    def _run(self, args: Sequence[str], cwd: Path | None = None) -> str:
        try:
            completed = subprocess.run(
                [sys.executable, *args],
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
                f"{self.resolved_home()}:\n{output_tail(completed.stderr or completed.stdout)}"
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
        files: Sequence[str] | None = None,
    ) -> ImportedModel:
        """Copy ``files`` of ``model_dir`` (default: every file directly in it, by name; a name
        may be a relative path into a subfolder) into the BentoML model store, tagged
        ``<model>:v<version>-<digest of the files>``."""
        folder = Path(model_dir)
        if files is None:
            files = (
                sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
            )
        paths = {name: folder / name for name in files}
        missing = [str(path) for path in paths.values() if not path.is_file()]
        if missing:
            raise FileNotFoundError(f"cannot import the model: missing {missing}")
        if not paths:
            raise FileNotFoundError(f"cannot import the model: {folder} holds no files")
        digest = content_digest([path.read_bytes() for path in paths.values()])
        name = bento_name_for(provenance.model_name)
        tag = f"{name}:v{bento_name_for(provenance.model_version)}-{digest}"
        spec = {
            "tag": tag,
            "labels": provenance.labels(),
            "metadata": {"content_digest": digest, **dict(metadata or {})},
            "files": {key: str(path) for key, path in paths.items()},
        }
        out = self._run(["-c", _IMPORT_MODEL_SCRIPT, json.dumps(spec)])
        result = json.loads(out.strip().splitlines()[-1])
        return ImportedModel(
            tag=result["tag"], path=Path(result["path"]), created=result["created"]
        )

    # -- bentos -------------------------------------------------------------------------------

    def build_bento(
        self,
        model: ImportedModel,
        provenance: ModelProvenance,
        package: ServicePackage,
        extra_labels: Mapping[str, str] | None = None,
    ) -> BentoInfo:
        """``bentoml build`` ``package`` around ``model``; reuse the bento if one identical exists."""
        name = bento_name_for(provenance.model_name)
        labels = {**provenance.labels(), "bento_model_tag": model.tag, **dict(extra_labels or {})}
        with tempfile.TemporaryDirectory(prefix="bento-build-") as scratch:
            digest = write_build_context(Path(scratch), name, package, labels, self.python_version)
            version = f"v{bento_name_for(provenance.model_version)}-{digest}"
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

    def deployments(self, model_name: str) -> DeploymentLog:
        """The deployment-record log of ``model_name`` in this home."""
        return DeploymentLog(self.resolved_home() / "deployments" / bento_name_for(model_name))

    def deployments_dir(self, model_name: str) -> Path:
        return self.deployments(model_name).folder

    def deployment_history(self, model_name: str) -> list[DeploymentRecord]:
        """Every recorded deployment of ``model_name``, oldest first."""
        return self.deployments(model_name).history()

    def current_deployment(self, model_name: str) -> DeploymentRecord | None:
        return self.deployments(model_name).current()

    def write_deployment(self, record: DeploymentRecord) -> Path:
        """Append ``record`` (its id must be the next one); written atomically, never overwritten."""
        return self.deployments(record.model_name).write(record)

    def shadow_log_path(self, record: DeploymentRecord) -> Path:
        """Where a shadow deployment appends the champion's and the challenger's answers."""
        return self.deployments(record.model_name).shadow_log_path(record.deployment_id)

    # -- serving -------------------------------------------------------------------------------

    def launcher(
        self, env: Mapping[str, str] | None = None, log_dir: Path | None = None
    ) -> ServerLauncher:
        """Starts servers in this home's environment plus ``env``, logging into ``log_dir``."""
        return ServerLauncher(
            environment=self.environment(env),
            cwd=self.resolved_home(),
            log_dir=log_dir or (self.resolved_home() / "logs"),
            token_env=self.token_env,
        )

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
        chosen = self.port if port is None else port
        return self.launcher(env, log_dir).bento(tag, host or self.host, chosen)

    def serve_deployment(
        self,
        record: DeploymentRecord,
        router: RouterProgram,
        port: int | None = None,
        host: str | None = None,
        env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> DeploymentServer:
        """Serve what ``record`` says is live on ``host:port``: the champion's bento alone, or
        both bentos on loopback ports behind the caller's ``router``. The caller stops it."""
        return self.launcher(env, log_dir).deployment(
            record,
            router,
            host or self.host,
            self.port if port is None else port,
            self.max_body_bytes,
            self.shadow_log_path(record),
        )
