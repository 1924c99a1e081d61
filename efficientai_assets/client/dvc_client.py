"""The seed guide's DVC client (``create_client(project_name=...)`` → ``init``, ``add``, ``push``,
``pull``, ``status``) on the project's data registry.

``DVCClient`` *is* the project's ``DvcResource`` (a subclass adding the guide's verbs), so
``MLOpsClient.dvc_client`` is this object and every write goes through the resource's lock and
commit discipline: a path outside the registry is staged privately, swapped in under the lock,
``dvc add``-ed and its pointer committed. Errors leave as ``MLOpsClientError`` subclasses.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from efficientai_assets.client.errors import InvalidArgumentError, PathNotFoundError
from efficientai_assets.client.guard import guarded
from efficientai_assets.client.wiring import DEFAULT_NAMESPACE, check_namespace, home_for, wired
from resources.dvc.resource import DvcResource, DvcVersion

# Registry folder (inside the project's folder) of datasets versioned from outside the registry.
DATASETS_DIR = "datasets"


class DVCClient(DvcResource):
    """The project's DVC registry with the guide's verbs. Paths outside the registry are versioned
    as ``<namespace>/datasets/<name>``; a path inside it is versioned where it is."""

    def registry_path(self, path: str | Path) -> str:
        """Where ``path`` is versioned, relative to the registry root."""
        source = Path(path).expanduser().resolve()
        root = self.root()
        if root.is_relative_to(source) and root != source:
            raise InvalidArgumentError(
                f"cannot version {source}: it contains the data registry {root}"
            )
        if source.is_relative_to(root):
            relative = source.relative_to(root)
            if not relative.parts:
                raise InvalidArgumentError(f"{source} is the data registry itself, not a dataset")
            if relative.parts[0] in (".git", ".dvc"):
                raise InvalidArgumentError(f"{source} is registry internals, not a dataset")
            return relative.as_posix()
        return self.project_path(DATASETS_DIR, source.name)

    @guarded("initialise the DVC registry")
    def init(self) -> Path:
        """Create the registry (git + DVC, remote, identity) if missing; its folder. Idempotent."""
        return self.ensure_repo()

    @guarded("version a path with DVC")
    def add(self, path: str | Path, push: bool = False, message: str | None = None) -> DvcVersion:
        """``dvc add`` a file or folder and commit its pointer (pushed first when ``push``).

        A path outside the registry is copied to ``<namespace>/datasets/<name>`` first. Adding
        unchanged content is a no-op (``changed=False``); a failure leaves no committed pointer.
        """
        source = Path(path).expanduser()
        if not source.exists():
            raise PathNotFoundError(f"cannot version {source}: it does not exist")
        relative = self.registry_path(source)
        staged: Path | None = None
        if source.resolve() != self.root() / relative:
            # Copied into a private stage first; the registry takes it in under its lock.
            staged = self.stage() / source.name
            if source.is_dir():
                shutil.copytree(source.resolve(), staged)
            else:
                shutil.copy2(source.resolve(), staged)
        note = message or f"Version {relative} from the {self.project_namespace} client"
        return self.version(relative, note, push=push, staged=staged)

    @guarded("push to the DVC remote")
    def push(self) -> int:
        """``dvc push`` of everything the registry tracks; the number of files sent."""
        from dvc.repo import Repo

        with self._locked():
            root = self._ensure_repo_unlocked()
            with Repo(str(root)) as repo:
                return int(repo.push(remote=self.remote_name))

    @guarded("pull from the DVC remote")
    def pull(self) -> dict[str, Any]:
        """``dvc pull``: every tracked path restored in the registry from the remote. Returns DVC's
        own summary (``fetched`` files and the paths ``added``/``modified`` in the work tree)."""
        from dvc.repo import Repo

        with self._locked():
            root = self._ensure_repo_unlocked()
            with Repo(str(root)) as repo:
                summary = repo.pull(remote=self.remote_name)
        return {key: value for key, value in dict(summary).items() if value}

    @guarded("read the DVC status")
    def status(self) -> dict[str, object]:
        """``dvc status --cloud`` against the remote: empty when every tracked file is pushed."""
        if not (self.root() / ".dvc").is_dir():
            raise InvalidArgumentError(
                f"{self.root()} is not a DVC registry yet: call init() (or add a dataset) first"
            )
        return super().status()


def dvc_client_for(resource: DvcResource) -> DVCClient:
    """The guide's client on exactly the configuration of ``resource``."""
    return DVCClient(**{name: getattr(resource, name) for name in type(resource).model_fields})


@guarded("create the DVC client")
def create_client(
    project_name: str = DEFAULT_NAMESPACE,
    remote_name: str | None = None,
    workspace_root: str | Path | None = None,
) -> DVCClient:
    """The DVC client of ``project_name`` on the home's registry and remote (the environment's
    ``EFFICIENTAI_DVC_REMOTE_URL`` when set)."""
    namespace = check_namespace(project_name, "project_name")
    return dvc_client_for(wired(namespace, home_for(workspace_root), None, remote_name)["dvc"])
