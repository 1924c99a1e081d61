"""A DVC data registry (a git repository of ``.dvc`` pointers) and its remote, as a resource.

Versioning a path is ``dvc add`` → ``dvc push`` → ``git commit`` of the pointer, in that order, under
an exclusive file lock: a pointer is committed only once its data is on the remote, so a failed push
leaves the registry as it was (the pointer restored, nothing committed). DVC's own repository lock
is held (waited for within ``lock_wait_seconds``) across the swap, the versioning and any rollback,
and every copy read out of the registry is checked against its pointer (``guard.py``). DVC is
imported lazily.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import yaml
from pydantic import Field, field_validator

from resources.dvc.errors import DataIntegrityError, DvcVersioningError
from resources.home import default_home, validate_namespace

if TYPE_CHECKING:
    from dvc.repo import Repo

__all__ = ["DataIntegrityError", "DvcResource", "DvcVersion", "DvcVersioningError"]

_GIT_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class DvcVersion:
    """One committed version of a path in the registry."""

    path: str  # relative to the registry root
    md5: str  # DVC's content hash (``<hash>.dir`` for folders)
    size_bytes: int
    remote: str
    remote_url: str
    commit: str  # git commit of the registry holding the pointer
    changed: bool  # False when the content was already the committed version


class DvcResource(dg.ConfigurableResource):
    """Where datasets are versioned. Defaults: ``<home>/data`` with a local remote ``<home>/dvc-remote``."""

    repo_path: str = Field(default="", description="Data registry folder; empty means <home>/data.")
    project_namespace: str = Field(
        default="efficientai", description="Top folder of this project's datasets in the registry."
    )
    remote_name: str = Field(default="storage", description="Name of the default DVC remote.")
    remote_url: str = Field(
        default="",
        description="Remote URL (local path, s3://, gs://, azure://); empty means <home>/dvc-remote.",
    )
    registry_git_url: str = Field(
        default="",
        description="A git remote the registry's pointer commits are pushed to and pulled from, "
        "so processes with homes of their own (workers on other machines) share one registry; "
        "empty keeps the registry local.",
    )
    git_user_name: str = Field(default="efficientai", description="Author of registry commits.")
    git_user_email: str = Field(default="efficientai@localhost", description="Their email.")
    lock_wait_seconds: float = Field(
        default=60.0,
        ge=0.0,
        description="How long a write or read waits for DVC's own lock, held by another dvc "
        "process in the registry, before it fails with the registry unchanged.",
    )

    @field_validator("project_namespace")
    @classmethod
    def _plain_namespace(cls, namespace: str) -> str:
        return validate_namespace(namespace)

    # -- paths ----------------------------------------------------------------------------

    def root(self) -> Path:
        return Path(self.repo_path).resolve() if self.repo_path else default_home().data_registry

    def project_path(self, *parts: str) -> str:
        """A registry-relative path inside this project's folder."""
        return "/".join((self.project_namespace, *parts))

    def inside(self, relative_path: str) -> Path:
        """``relative_path`` under the registry root, refused when it would lie outside it
        (``..``, an absolute path, a symlink out): the registry writes and deletes only there."""
        root = self.root()
        target = (root / relative_path).resolve()
        if target == root or not target.is_relative_to(root):
            raise DvcVersioningError(
                f"{relative_path!r} is not a path inside the data registry {root}; nothing was "
                "written or deleted"
            )
        return target

    def resolved_remote_url(self) -> str:
        return self.remote_url or str(default_home().dvc_remote)

    # -- setup ----------------------------------------------------------------------------

    def _git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(self.root()), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            raise DvcVersioningError(
                f"git {' '.join(args)} failed in {self.root()}: {result.stderr.strip()}"
            )
        return result.stdout.strip()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise registry writers across processes (DVC's own lock fails after ~3 s)."""
        root = self.root()
        root.parent.mkdir(parents=True, exist_ok=True)
        lock_path = root.parent / f".{root.name}.lock"
        with open(lock_path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def ensure_repo(self) -> Path:
        """Create the registry (git + DVC + remote + identity) if missing; idempotent."""
        with self._locked():
            return self._ensure_repo_unlocked()

    def _ensure_repo_unlocked(self) -> Path:
        from dvc.repo import Repo

        root = self.root()
        root.mkdir(parents=True, exist_ok=True)
        if not (root / ".git").exists() and self.registry_git_url:
            self._git("clone", "-q", self.registry_git_url, ".")
        elif not (root / ".git").exists():
            self._git("init", "-q", "-b", "main")
        self._sync_unlocked()
        # CI machines have no global git identity; the registry carries its own.
        self._git("config", "user.name", self.git_user_name)
        self._git("config", "user.email", self.git_user_email)
        if not (root / ".dvc").exists():
            Repo.init(str(root))
        remote_url = self.resolved_remote_url()
        if "://" not in remote_url and not Path(remote_url).exists():
            Path(remote_url).mkdir(parents=True)
        self._configure_remote(root, remote_url)
        self._git("add", ".dvc/config", ".dvcignore")
        if self._git("status", "--porcelain", "--", ".dvc/config", ".dvcignore"):
            self._git("commit", "-q", "-m", "Configure DVC data registry")
            self._publish_unlocked()
        return root

    def _sync_unlocked(self) -> None:
        """Fast-forward to the shared registry's newest commit (when one is configured)."""
        if not self.registry_git_url:
            return
        # A glob refspec: an empty shared registry (nothing pushed yet) is not an error.
        self._git("fetch", "-q", self.registry_git_url, "+refs/heads/*:refs/remotes/origin/*")
        remote_head = subprocess.run(
            ["git", "-C", str(self.root()), "rev-parse", "--verify", "-q", "origin/main"],
            capture_output=True,
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
        if remote_head.returncode == 0:
            self._git("merge", "-q", "--ff-only", "origin/main")

    def _publish_unlocked(self) -> None:
        """Push the new pointer commit to the shared registry; a rejected push (another writer
        got there first) fails the write, which can then run again on the newer registry."""
        if self.registry_git_url:
            self._git("push", "-q", self.registry_git_url, "HEAD:refs/heads/main")

    def _configure_remote(self, root: Path, remote_url: str) -> None:
        config_path = root / ".dvc" / "config"
        text = config_path.read_text() if config_path.exists() else ""
        wanted = f"url = {remote_url}"
        section = f"['remote \"{self.remote_name}\"']"
        if section in text and wanted in text and f"remote = {self.remote_name}" in text:
            return
        from dvc.config import Config

        config = Config(str(root / ".dvc"))
        with config.edit("repo") as conf:
            conf["remote"][self.remote_name] = {"url": remote_url}
            conf["core"]["remote"] = self.remote_name
            # No network calls home from a data registry.
            conf["core"]["analytics"] = False
            conf["core"]["autostage"] = True

    # -- versioning -----------------------------------------------------------------------

    def stage(self) -> Path:
        """A private folder to write a new version into, outside the registry's work tree, so
        readers never see a half-written version; hand it to :meth:`version` as ``staged``."""
        root = self.root()
        staging = root.parent / f".{root.name}-staging"
        staging.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=staging))

    def version(
        self, relative_path: str, message: str, push: bool = True, staged: Path | None = None
    ) -> DvcVersion:
        """Track ``relative_path`` (file or folder inside the registry), push it, commit its pointer.

        ``staged`` (a :meth:`stage` folder, or a file written inside one) replaces the path's
        content once both locks are held (the registry's, then DVC's own, waited for within
        ``lock_wait_seconds``); if versioning then fails, the pointer and the previous version's
        data are restored, so the registry is exactly at its previous version. ``push=False``
        commits a pointer whose data is only in the local cache (``dvc push`` later); the assets
        always push.
        """
        from resources.dvc.guard import checkout, open_locked

        try:
            with self._locked():
                self._ensure_repo_unlocked()
                target = self.inside(relative_path)
                with open_locked(self.root(), self.lock_wait_seconds) as repo:
                    if staged is None:
                        return self._version_unlocked(repo, relative_path, message, push)
                    previous = self.current_version(relative_path)
                    self._swap_in(staged, target)
                    try:
                        return self._version_unlocked(repo, relative_path, message, push)
                    except DvcVersioningError:
                        if previous is not None:
                            checkout(repo, target, self.remote_name, force=True)
                        else:
                            shutil.rmtree(target, ignore_errors=True)
                        raise
        finally:
            if staged is not None:
                self._discard_stage(staged)

    def _discard_stage(self, staged: Path) -> None:
        """Remove what is left of a :meth:`stage` folder (all of it when the write never began)."""
        root = self.root()
        staging = root.parent / f".{root.name}-staging"
        for folder in (staged, staged.parent):
            if folder.parent == staging:
                shutil.rmtree(folder, ignore_errors=True)

    def _swap_in(self, staged: Path, target: Path) -> None:
        """Move a staged folder — or a staged file inside a :meth:`stage` folder — to ``target``."""
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        shutil.move(str(staged), str(target))
        root = self.root()
        if staged.parent.parent == root.parent / f".{root.name}-staging":
            shutil.rmtree(staged.parent, ignore_errors=True)  # the emptied stage() folder

    def _version_unlocked(
        self, repo: Repo, relative_path: str, message: str, push: bool
    ) -> DvcVersion:
        from resources.dvc.guard import add_and_push

        root = self.root()
        target = root / relative_path
        if not target.exists():
            raise DvcVersioningError(f"nothing to version: {target} does not exist")
        pointer = Path(f"{target}.dvc")
        gitignore = target.parent / ".gitignore"
        rel_pointer = str(pointer.relative_to(root))
        rel_gitignore = str(gitignore.relative_to(root))
        backups = {path: path.read_bytes() for path in (pointer, gitignore) if path.exists()}
        head = self._git("rev-parse", "HEAD")

        try:
            add_and_push(repo, target, self.remote_name, push)
            self._git("add", rel_pointer, rel_gitignore)
            changed = bool(self._git("status", "--porcelain", "--", rel_pointer, rel_gitignore))
            if changed:
                self._git("commit", "-q", "-m", message, "--", rel_pointer, rel_gitignore)
                self._publish_unlocked()
        except Exception as error:
            # Back to the previous commit and pointer: nothing of this version stays behind.
            if self._git("rev-parse", "HEAD") != head:
                self._git("reset", "-q", head)
            self._restore(backups, (pointer, gitignore))
            self._git("reset", "-q", "--", rel_pointer, rel_gitignore)
            if isinstance(error, DvcVersioningError):
                raise
            raise DvcVersioningError(
                f"could not version {relative_path} to remote {self.remote_name!r} "
                f"({self.resolved_remote_url()}): {error}; the registry was left unchanged"
            ) from error
        return self._pointer_version(relative_path, self._git("rev-parse", "HEAD"), changed)

    def _pointer_version(self, relative_path: str, commit: str, changed: bool) -> DvcVersion:
        pointer = self.root() / f"{relative_path}.dvc"
        out = yaml.safe_load(pointer.read_text())["outs"][0]
        return DvcVersion(
            path=relative_path,
            md5=str(out["md5"]),
            size_bytes=int(out.get("size", 0)),
            remote=self.remote_name,
            remote_url=self.resolved_remote_url(),
            commit=commit,
            changed=changed,
        )

    @staticmethod
    def _restore(backups: dict[Path, bytes], paths: tuple[Path, ...]) -> None:
        for path in paths:
            if path in backups:
                path.write_bytes(backups[path])
            elif path.exists():
                path.unlink()

    def status(self) -> dict[str, object]:
        """``dvc status -c`` against the remote: empty when every tracked file is pushed."""
        from dvc.repo import Repo

        with Repo(str(self.root())) as repo:
            return dict(repo.status(cloud=True, remote=self.remote_name))

    def current_version(self, relative_path: str) -> DvcVersion | None:
        """The committed version of ``relative_path``, or None when it was never versioned."""
        if self.registry_git_url and (self.root() / ".git").exists():
            self._sync_unlocked()
        elif self.registry_git_url:
            self.ensure_repo()  # a home of its own reading the shared registry first: clone it
        pointer = self.root() / f"{relative_path}.dvc"
        if not pointer.is_file():
            return None
        commit = self._git("log", "-n1", "--format=%H", "--", f"{relative_path}.dvc")
        return self._pointer_version(relative_path, commit, changed=False)

    def read_at(self, relative_dir: str, filename: str, commit: str) -> bytes:
        """``filename`` of the folder version committed at ``commit``, checked like a snapshot."""
        from resources.dvc.guard import read_at

        self.inside(relative_dir)
        root, wait = self.root(), self.lock_wait_seconds
        return read_at(root, relative_dir, filename, commit, self.remote_name, wait)

    def snapshot(self, version: DvcVersion, destination: Path) -> Path:
        """A private copy of exactly ``version``'s data at ``destination`` (pulled from the
        remote when the cache lacks it), hashed and checked against the pointer: data swapped
        for other data under the same hash fails here, naming the file and both hashes. Fails,
        naming both hashes, when the registry has moved on to another version since ``version``
        was read."""
        from resources.dvc.guard import checkout, open_locked, verify_copy

        source = self.inside(version.path)
        with self._locked():
            current = self.current_version(version.path)
            if current is None:
                raise DvcVersioningError(f"{version.path} was never versioned in {self.root()}")
            if current.md5 != version.md5:
                raise DvcVersioningError(
                    f"{version.path} changed while in use: expected {version.md5}, the registry "
                    f"now holds {current.md5}; run again to use the new version"
                )
            with open_locked(self.root(), self.lock_wait_seconds) as repo:
                checkout(repo, source, self.remote_name)
                if source.is_dir():
                    shutil.copytree(source, destination)
                else:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, destination)
                try:
                    verify_copy(repo, version.path, version.md5, destination)
                except DataIntegrityError:
                    _remove(destination)
                    raise
        return destination


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
