"""What a Ray Serve application of the project serves, as plain values (no Ray import).

A ``ServedVersion`` is one model version as its bento holds it: the bento's ``serving.json``
(the same settings, limits and provenance the bento serves with) and the bytes of its model
files. The bytes travel with the application to whichever node runs a replica, so a machine that
joins the cluster needs no copy of the BentoML home. An ``ApplicationSpec`` is one deployment
record's worth: the champion, optionally a canary or shadow, the nodes that serve them and the
autoscaling of each served version on each node (its ``max_replicas`` capped by that node's
replica ceiling).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from efficientai_assets.bento_service.settings import ServingSettings
from resources.ray.cluster import check_node_name
from resources.ray.serve import Autoscaling

# Weights travel inside the application's config (stored by the Serve controller): keep them small.
MAX_MODEL_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ServedVersion:
    """One version's settings (the bento's ``serving.json``) and model files."""

    settings: Mapping[str, Any]
    files: Mapping[str, bytes]
    digests: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ServingSettings.from_mapping(self.settings)  # refuse a malformed settings document now
        size = sum(len(data) for data in self.files.values())
        if size > MAX_MODEL_BYTES:
            raise ValueError(
                f"model files of {size} bytes exceed the {MAX_MODEL_BYTES} bytes a Ray Serve "
                "application carries; serve this model with the bento backend"
            )
        if not self.digests:
            object.__setattr__(
                self,
                "digests",
                {name: hashlib.sha256(data).hexdigest() for name, data in self.files.items()},
            )

    @property
    def serving(self) -> ServingSettings:
        return ServingSettings.from_mapping(self.settings)

    @property
    def model_version(self) -> str:
        return str(self.settings["model_version"])

    def settings_json(self) -> str:
        return json.dumps(dict(self.settings), sort_keys=True)


@dataclass(frozen=True)
class ApplicationSpec:
    """One Ray Serve application: a project namespace's deployment record, ready to run."""

    namespace: str
    deployment_id: int
    mode: str  # single | canary | shadow
    champion: ServedVersion
    canary: ServedVersion | None = None
    canary_share: float = 0.0
    scaling: Autoscaling = field(default_factory=Autoscaling)
    replica_cpus: float = 0.25  # fractional: several replicas share a core
    shadow_log: str = ""
    # The declared nodes that hold model replicas (one model deployment per node per version),
    # and the replica ceiling of each (a node not named here runs at ``scaling.max_replicas``).
    nodes: tuple[str, ...] = ("head",)
    ceilings: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.mode == "single") != (self.canary is None):
            raise ValueError(f"mode {self.mode!r} and canary {self.canary!r} disagree")
        if not 0.0 <= self.canary_share < 1.0:
            raise ValueError(f"canary_share must be in [0, 1), got {self.canary_share}")
        if not self.nodes:
            raise ValueError(
                "no node of the cluster declares an efficientai_node:<name> resource, so no node "
                "may hold model replicas: start nodes with `make ray-up` / `python -m "
                "resources.ray join` (docs/serving.md, 'Another machine joins')"
            )
        for node in self.nodes:
            check_node_name(node)
        strays = sorted(set(self.ceilings) - set(self.nodes))
        if strays:
            raise ValueError(f"replica ceilings for nodes {strays} that serve nothing")

    def scaling_on(self, node: str) -> Autoscaling:
        """The autoscaling of each served version's deployment on ``node``: the configured
        policy with at most that node's ceiling of replicas."""
        return self.scaling.with_ceiling(self.ceilings.get(node, self.scaling.max_replicas))

    @property
    def app_name(self) -> str:
        """One application per project namespace."""
        return self.namespace

    @property
    def route_prefix(self) -> str:
        return f"/{self.namespace}"
