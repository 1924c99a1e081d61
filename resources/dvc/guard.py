"""A DVC repository opened the way the data registry can trust it.

- Link cache types are refused. With ``cache.type`` ``symlink`` or ``hardlink`` a checked-out file
  *is* the cache object: rewriting it in place corrupts the only local copy of that version, and the
  next push spreads it. ``copy`` and ``reflink`` (copy-on-write) keep work tree and cache apart.
- DVC's own repository lock (``.dvc/tmp/lock``, held by any ``dvc`` command working in the
  registry) is waited for within a bound before the work tree is touched: a write whose lock never
  came free changes nothing, and a write that holds it keeps it through its own rollback.
- A copy of a version read out of the registry is hashed and compared with its pointer, file by
  file: a cache or remote object swapped for other valid data fails loudly, naming the file and
  both hashes, instead of being read as the versioned data.

DVC is imported inside the functions.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from resources.dvc.errors import DataIntegrityError, DvcVersioningError

if TYPE_CHECKING:
    from dvc.repo import Repo

# Cache link types under which the work tree and the cache share one copy of the data.
LINK_CACHE_TYPES = ("symlink", "hardlink")
_LOCK_RETRY_SECONDS = 0.5
_CHUNK_BYTES = 1 << 20
_GIT_TIMEOUT_SECONDS = 60


def link_cache_problem(root: Path, cache_types: str | Iterable[str] | None) -> str | None:
    """Why the registry at ``root`` refuses its ``cache.type`` setting (DVC's merged config:
    system, global, repo and local levels), or None."""
    if cache_types is None:
        return None
    names = [cache_types] if isinstance(cache_types, str) else list(cache_types)
    links = sorted({str(n).strip() for n in names} & set(LINK_CACHE_TYPES))
    if not links:
        return None
    return (
        f"the DVC data registry {root} has cache.type {','.join(map(str, names))}: with "
        f"{' or '.join(links)} links a checked-out file is the cache object itself, so rewriting "
        "it in place would corrupt the versioned data. The registry only works with copies: run "
        f"`dvc config --unset cache.type` in {root} (and --local / --global where it is set), "
        "or set it to `reflink,copy`"
    )


@contextmanager
def open_locked(root: Path, wait_seconds: float) -> Iterator[Repo]:
    """The registry's DVC repo with DVC's own lock held (waited for up to ``wait_seconds``, plus
    DVC's own ~3 s try), link cache types refused. Inside, ``repo.add``/``push``/``pull`` run
    under this one hold. Fails before anything is touched when the lock does not come free."""
    from dvc.lock import LockError
    from dvc.repo import Repo, lock_repo

    with Repo(str(root)) as repo:
        problem = link_cache_problem(root, repo.config["cache"].get("type"))
        if problem is not None:
            raise DvcVersioningError(problem)
        deadline = time.monotonic() + wait_seconds
        with ExitStack() as held:
            while True:
                try:
                    held.enter_context(lock_repo(repo))
                    break
                except LockError as error:
                    if time.monotonic() >= deadline:
                        raise DvcVersioningError(
                            f"the DVC data registry {root} stayed locked by another DVC process "
                            f"({repo.lock.lockfile}) for {wait_seconds:g} s; nothing was changed. "
                            "Run again once that process has finished (raise "
                            "DvcResource.lock_wait_seconds to wait longer)"
                        ) from error
                    time.sleep(_LOCK_RETRY_SECONDS)
            yield repo


def add_and_push(repo: Repo, target: Path, remote: str, push: bool) -> None:
    """``dvc add`` then (``push``) ``dvc push`` of ``target``, under the hold of ``open_locked``."""
    _forget_index(repo)
    repo.add(str(target))
    if push:
        _forget_index(repo)
        repo.push(targets=[str(target)], remote=remote)


def checkout(repo: Repo, target: Path, remote: str, force: bool = False) -> None:
    """Check ``target`` out at its pointer's version, under the hold of ``open_locked``: from the
    local cache when it holds the version (restoring the previous version after a failed push
    must not need the remote that just failed), else pulled from ``remote``."""
    from dvc.exceptions import CheckoutError

    _forget_index(repo)
    try:
        repo.checkout(targets=[str(target)], force=force)
    except CheckoutError:
        _forget_index(repo)
        repo.pull(targets=[str(target)], remote=remote, force=force)


def _forget_index(repo: Repo) -> None:
    """DVC caches its view of the pointers per lock hold and drops it when a command releases the
    lock; the registry holds one lock across several commands, so it drops it between them."""
    repo._reset()


def file_md5(path: Path) -> str:
    """DVC's content hash of one file: the md5 of its bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def verify_copy(repo: Repo, relative_path: str, expected_md5: str, copy: Path) -> None:
    """Raise ``DataIntegrityError`` unless ``copy`` holds exactly the data of ``expected_md5``
    (a file's md5, or a folder's ``<md5>.dir`` manifest, itself checked against its hash)."""
    pointer = f"{relative_path}.dvc in {repo.root_dir}"
    if not expected_md5.endswith(".dir"):
        _compare(relative_path, expected_md5, file_md5(copy), pointer)
        return
    expected = _manifest(repo, relative_path, expected_md5, pointer)
    present = {p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()}
    if present != set(expected):
        raise DataIntegrityError(
            f"{relative_path} does not hold the files {pointer} lists: missing "
            f"{sorted(set(expected) - present)[:10]}, unexpected {sorted(present - set(expected))[:10]}"
            "; nothing was read"
        )
    for name, md5 in sorted(expected.items()):
        _compare(f"{relative_path}/{name}", md5, file_md5(copy / name), pointer)


def read_at(
    root: Path, relative_dir: str, filename: str, commit: str, remote: str, wait_seconds: float
) -> bytes:
    """``filename`` of the folder version whose pointer ``commit`` holds (an older version than
    the work tree's), checked against the file list that pointer names."""
    import yaml
    from dvc.api import read

    shown = subprocess.run(
        ["git", "-C", str(root), "show", f"{commit}:{relative_dir}.dvc"],
        capture_output=True,
        text=True,
        timeout=_GIT_TIMEOUT_SECONDS,
        check=False,
    )
    if shown.returncode != 0:
        raise DvcVersioningError(f"no pointer {relative_dir}.dvc at commit {commit} in {root}")
    md5 = str(yaml.safe_load(shown.stdout)["outs"][0]["md5"])
    data = read(f"{relative_dir}/{filename}", repo=str(root), rev=commit, mode="rb")
    pointer = f"{relative_dir}.dvc at commit {commit} in {root}"
    with open_locked(root, wait_seconds) as repo:
        if not Path(repo.cache.local.oid_to_path(md5)).is_file():
            _forget_index(repo)
            repo.fetch(targets=[relative_dir], remote=remote, revs=[commit], workspace=False)
        expected = _manifest(repo, relative_dir, md5, pointer)
    if filename not in expected:
        raise DataIntegrityError(f"{pointer} lists no file {filename!r}; nothing was read")
    digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
    _compare(f"{relative_dir}/{filename}", expected[filename], digest, pointer)
    return bytes(data)


def _manifest(repo: Repo, relative_path: str, dir_md5: str, pointer: str) -> dict[str, str]:
    """A folder version's file list (relative path → md5), read from the cache and checked
    against the hash the pointer gives it."""
    manifest_path = Path(repo.cache.local.oid_to_path(dir_md5))
    if not manifest_path.is_file():
        raise DataIntegrityError(
            f"{relative_path}: the file list {dir_md5} named by {pointer} is not in the "
            f"cache ({manifest_path}); nothing was read. Run `dvc pull` in {repo.root_dir}"
        )
    manifest = manifest_path.read_bytes()
    _compare(
        f"{relative_path} (its file list {manifest_path})",
        dir_md5.removesuffix(".dir"),
        hashlib.md5(manifest, usedforsecurity=False).hexdigest(),
        pointer,
    )
    return {str(entry["relpath"]): str(entry["md5"]) for entry in json.loads(manifest)}


def _compare(what: str, expected: str, actual: str, pointer: str) -> None:
    if actual != expected:
        raise DataIntegrityError(
            f"{what} has content hash {actual}, but {pointer} records {expected}: the cache or "
            "the remote holds other data under that hash, so nothing was read. Delete that "
            "cache object and pull it from a remote you trust, or version the data again"
        )
