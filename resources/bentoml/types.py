"""The values the BentoML resource takes and returns, apart from the modules that act on them.

Everything here is a plain dataclass (or a small naming helper) that the store, the build
context, the servers and the deployment records share, so none of those modules imports another
just for a type, and a caller can build a ``ServicePackage`` or read a ``DeploymentRecord``
without importing the resource.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_TAG_PART = re.compile(r"[^a-z0-9._-]+")

DEPLOYMENT_MODES = ("single", "canary", "shadow")
DEPLOYMENT_BACKENDS = ("bentoml", "ray")


class BentoStoreError(RuntimeError):
    """A BentoML command failed; the message carries the command and its last output lines."""


def bento_name_for(model_name: str) -> str:
    """A BentoML-valid name (lowercase, ``[a-z0-9._-]``) for a registered model name."""
    name = _TAG_PART.sub("-", model_name.lower()).strip("-._")
    if not name:
        raise ValueError(f"cannot derive a BentoML name from {model_name!r}")
    return name


def output_tail(text: str, lines: int = 15) -> str:
    """The last lines of a command's output: what an error message quotes."""
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
    """A model in the BentoML model store: its tag, its folder, and whether this import made it."""

    tag: str
    path: Path
    created: bool


@dataclass(frozen=True)
class PackageFile:
    """One source file a bento carries: ``source`` on this machine, ``target`` inside the bento
    (relative to the build context, so it is also the file's import path there)."""

    source: Path
    target: str


@dataclass(frozen=True)
class ServicePackage:
    """Everything a bento holds besides its model, as the caller hands it to ``build_bento``.

    The resource knows BentoML, not the service: the caller names the code to copy and where it
    goes, the service's import string, the settings document the service reads, the requirements
    and the bentofile's ``include`` patterns. ``markers`` are files written from text that only
    make folders importable packages (``__init__.py``); ``readme`` becomes the bento's
    description. The bento's version is a digest of every file of the build context, so the
    same package around the same model reuses the bento it built before.
    """

    service: str
    files: tuple[PackageFile, ...]
    settings_path: str
    settings: Mapping[str, Any]
    requirements: tuple[str, ...]
    include: tuple[str, ...]
    markers: Mapping[str, str] = field(default_factory=dict)
    readme: str = ""

    def __post_init__(self) -> None:
        if ":" not in self.service:
            raise ValueError(f"service must be 'package.module:Class', got {self.service!r}")
        targets = [f.target for f in self.files] + [self.settings_path, *self.markers]
        absolute = [t for t in targets if Path(t).is_absolute() or ".." in Path(t).parts]
        if absolute:
            raise ValueError(f"package targets must stay inside the build context: {absolute}")


@dataclass(frozen=True)
class RouterProgram:
    """The traffic splitter in front of a canary or shadow deployment's two bentos: the caller's
    code, started as ``python -m <module> SPEC.json`` from ``cwd`` (see ``DeploymentServer``)."""

    module: str
    cwd: Path


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
    # Which server answers: ``bentoml`` (the bentos) or ``ray`` (Ray Serve, same bentos' models).
    # Records written before the choice existed were all served by BentoML.
    backend: str = "bentoml"

    def __post_init__(self) -> None:
        if self.backend not in DEPLOYMENT_BACKENDS:
            raise ValueError(
                f"deployment backend must be one of {DEPLOYMENT_BACKENDS}, got {self.backend!r}"
            )
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
        return text if self.backend == "bentoml" else f"{text} on {self.backend}"
