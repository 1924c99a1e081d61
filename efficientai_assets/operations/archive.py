"""The backup archive: one ``.tar.gz`` whose first member is ``manifest.json`` (what was backed
up, from where, and the SHA-256 and size of every other member), written under a temporary name
and renamed when complete; and its verification, which reads every member against the manifest
and writes nothing.

A member must be a regular file or folder with a relative name inside the archive: links,
devices, absolute names and ``..`` are refused, so extracting cannot write outside the target.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

FORMAT = "efficientai-backup/1"
MANIFEST = "manifest.json"
CHUNK = 1 << 20


class ArchiveError(ValueError):
    """The archive cannot be restored; the message names the problem and says nothing was
    written."""


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in _chunks(handle):
            digest.update(chunk)
    return digest.hexdigest()


def file_entries(staging: Path) -> dict[str, dict[str, Any]]:
    """``member name → {sha256, size}`` of every file under ``staging``."""
    return {
        path.relative_to(staging).as_posix(): {
            "sha256": sha256_of(path),
            "size": path.stat().st_size,
        }
        for path in sorted(staging.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def write_archive(staging: Path, manifest: dict[str, Any], target: Path) -> Path:
    """``target`` (.tar.gz): the manifest, then every file of ``staging``; atomic rename."""
    manifest = {**manifest, "format": FORMAT, "files": file_entries(staging)}
    partial = target.with_name(target.name + ".partial")
    payload = json.dumps(manifest, indent=2, sort_keys=True).encode()
    with tarfile.open(partial, "w:gz", compresslevel=6) as archive:
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode = len(payload), 0o600
        archive.addfile(info, io.BytesIO(payload))
        for name in manifest["files"]:
            archive.add(staging / name, arcname=name, recursive=False)
    os.replace(partial, target)
    return target


def _safe_name(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not name or name.startswith("/"):
        raise ArchiveError(f"member {name!r} would land outside the home")
    return path.as_posix()


@dataclass(frozen=True)
class VerifiedArchive:
    """An archive whose every member matched its manifest."""

    path: Path
    manifest: dict[str, Any]


def _members(archive: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    for member in archive:
        if not (member.isfile() or member.isdir()):
            raise ArchiveError(f"member {member.name!r} is not a regular file or folder")
        _safe_name(member.name)
        yield member


def verify(path: Path) -> VerifiedArchive:
    """Read the whole archive and check every member against the manifest; raise ArchiveError
    (nothing written) on a missing, extra, changed or unreadable member."""
    if not path.is_file():
        raise ArchiveError(f"no archive at {path}")
    try:
        with tarfile.open(path, "r:gz") as archive:
            return _verify(path, archive)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise ArchiveError(
            f"{path} is truncated or corrupt ({type(error).__name__}: {error}); nothing was "
            "written: use another archive"
        ) from error


def _verify(path: Path, archive: tarfile.TarFile) -> VerifiedArchive:
    members = _members(archive)
    first = next(members, None)
    if first is None or first.name != MANIFEST:
        raise ArchiveError(f"{path} does not start with {MANIFEST}: not an efficientai backup")
    handle = archive.extractfile(first)
    assert handle is not None
    try:
        manifest = json.loads(handle.read())
    except ValueError as error:
        raise ArchiveError(f"{path}: its manifest is not JSON ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveError(f"{path}: manifest format is not {FORMAT}")
    expected: dict[str, dict[str, Any]] = manifest.get("files") or {}
    seen: set[str] = set()
    for member in members:
        if member.isdir():
            continue
        name = _safe_name(member.name)
        entry = expected.get(name)
        if entry is None:
            raise ArchiveError(f"{path}: member {name} is not in the manifest")
        if name in seen:
            raise ArchiveError(f"{path}: member {name} appears twice")
        seen.add(name)
        digest = hashlib.sha256()
        data = archive.extractfile(member)
        assert data is not None
        size = 0
        for chunk in _chunks(data):
            digest.update(chunk)
            size += len(chunk)
        if digest.hexdigest() != entry["sha256"] or size != entry["size"]:
            raise ArchiveError(f"{path}: {name} does not match its checksum in the manifest")
    missing = sorted(set(expected) - seen)
    if missing:
        raise ArchiveError(
            f"{path}: {len(missing)} file(s) of the manifest are missing, e.g. {missing[0]}"
        )
    return VerifiedArchive(path, manifest)


def extract(verified: VerifiedArchive, target: Path) -> None:
    """Extract a verified archive into the new folder ``target`` (created here)."""
    target.mkdir(parents=True)
    with tarfile.open(verified.path, "r:gz") as archive:
        for member in _members(archive):
            if member.isdir() or member.name == MANIFEST:
                continue
            destination = target / _safe_name(member.name)
            destination.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            with destination.open("wb") as out:
                for chunk in _chunks(source):
                    out.write(chunk)


def read_member(verified: VerifiedArchive, name: str) -> bytes | None:
    """One (small) member of a verified archive, read into memory; None when absent."""
    with tarfile.open(verified.path, "r:gz") as archive:
        try:
            handle = archive.extractfile(_safe_name(name))
        except KeyError:
            return None
        return handle.read() if handle is not None else None
