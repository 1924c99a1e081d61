"""Does the DVC remote hold every version the data registry references?

``dvc status --cloud`` compares the local cache with the remote, so an object that is in neither
(a cache that was never filled, a file under a folder version whose listing is not cached) goes
unseen. This check asks the remote itself: every ``.dvc`` pointer of the registry's git history
(or of ``HEAD``) names an md5; the remote must hold that object and, for a folder version, every
file its listing (``<md5>.dir``, read from the remote) names. It works for any DVC remote (a
folder, S3, …) through DVC's own object database for it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

GIT_TIMEOUT_SECONDS = 300


class RemoteCheckFailed(RuntimeError):
    """The registry or its remote cannot be read; the message says which and why."""


def _git(registry: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        completed = subprocess.run(
            ["git", "-C", str(registry), *args], input=stdin, capture_output=True,
            timeout=GIT_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise RemoteCheckFailed(f"git {args[0]} timed out in {registry}") from error
    if completed.returncode != 0:
        message = completed.stderr.decode(errors="replace").strip()[-300:]
        raise RemoteCheckFailed(f"git {args[0]} failed in {registry}: {message}")
    return completed.stdout


def pointer_versions(registry: Path, all_commits: bool) -> dict[str, str]:
    """``md5 → pointer path`` for every ``.dvc`` file of every commit (or of ``HEAD``)."""
    if all_commits:
        listing = _git(registry, "rev-list", "--all", "--objects").decode()
        blobs = {
            sha: path
            for sha, _, path in (line.partition(" ") for line in listing.splitlines())
            if path.endswith(".dvc")
        }
    else:
        listing = _git(registry, "ls-tree", "-r", "HEAD").decode()
        blobs = {
            meta.split()[2]: path
            for meta, _, path in (line.partition("\t") for line in listing.splitlines())
            if path.endswith(".dvc")
        }
    if not blobs:
        return {}
    contents = _git(registry, "cat-file", "--batch", stdin=("\n".join(blobs) + "\n").encode())
    versions: dict[str, str] = {}
    position = 0
    while position < len(contents):
        header_end = contents.index(b"\n", position)
        sha, kind, size = contents[position:header_end].decode().split(" ")
        body = contents[header_end + 1 : header_end + 1 + int(size)]
        position = header_end + 1 + int(size) + 1
        if kind != "blob":
            continue  # the `.dvc` folder itself is a tree
        for out in (yaml.safe_load(body.decode()) or {}).get("outs") or []:
            if out.get("md5"):
                versions[str(out["md5"])] = blobs[sha]
    return versions


def remote_lacks(registry: Path, all_commits: bool = True) -> tuple[int, list[str]]:
    """(objects checked, what the remote lacks as ``pointer: md5[/file]``)."""
    from dvc.repo import Repo

    versions = pointer_versions(registry, all_commits)
    lacking: list[str] = []
    checked = 0
    try:
        with Repo(str(registry)) as repo:
            odb = repo.cloud.get_remote_odb()
            for md5, pointer in sorted(versions.items()):
                checked += 1
                if not odb.exists(md5):
                    lacking.append(f"{pointer}: {md5}")
                    continue
                if md5.endswith(".dir"):
                    for entry in json.loads(odb.fs.cat_file(odb.oid_to_path(md5))):
                        checked += 1
                        if not odb.exists(entry["md5"]):
                            lacking.append(f"{pointer}: {md5}/{entry['relpath']}")
    except Exception as error:  # the remote is unreachable or refuses
        raise RemoteCheckFailed(f"the DVC remote of {registry} cannot be read: {error}") from error
    return checked, lacking
