"""Lays out a ``bentoml build`` context from what the caller hands over, and names its version.

The context is exactly the caller's ``ServicePackage`` (code files at their targets, package
markers, the settings document, the requirements, the readme) plus a ``bentofile.yaml`` written
here. Its version is a digest of every file in it, path and bytes, in the order written: an
unchanged model, code and configuration give the same version, so ``build_bento`` reuses the bento
instead of building it again, and any change, even a file moved, gives a new one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from resources.bentoml.types import ServicePackage

BENTOFILE = "bentofile.yaml"
REQUIREMENTS = "requirements.txt"
README = "README.md"


def content_digest(parts: Sequence[bytes]) -> str:
    """A short, order-sensitive digest of ``parts`` (each hashed apart, so no two concatenations
    of different parts collide)."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(hashlib.sha256(part).digest())
    return hasher.hexdigest()[:16]


def bentofile(
    name: str, package: ServicePackage, labels: Mapping[str, str], python_version: str
) -> str:
    """The ``bentofile.yaml``: the caller's service and includes; Docker options that make
    ``bentoml containerize`` work; requirements installed as pinned, never re-locked."""
    import yaml

    document = {
        "service": package.service,
        "name": name,
        "description": f"file: {README}",
        "labels": dict(labels),
        "include": list(package.include),
        "python": {"requirements_txt": REQUIREMENTS, "lock_packages": False},
        "docker": {"distro": "debian", "python_version": python_version},
    }
    return yaml.safe_dump(document, sort_keys=False)


def write_build_context(
    root: Path,
    name: str,
    package: ServicePackage,
    labels: Mapping[str, str],
    python_version: str,
) -> str:
    """Write the build context of bento ``name`` into the empty folder ``root``; returns the
    digest of its content (the bento's version is derived from it)."""
    written: list[bytes] = []

    def put(target: str, content: bytes) -> None:
        path = root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.extend([target.encode(), content])

    for target, text in package.markers.items():
        put(target, text.encode())
    for item in package.files:
        if not item.source.is_file():
            raise FileNotFoundError(f"the service package lists {item.source}, which is missing")
        put(item.target, item.source.read_bytes())
    put(
        package.settings_path,
        json.dumps(dict(package.settings), indent=2, sort_keys=True).encode(),
    )
    put(REQUIREMENTS, "".join(f"{line}\n" for line in package.requirements).encode())
    put(README, package.readme.encode())
    put(BENTOFILE, bentofile(name, package, labels, python_version).encode())
    return content_digest(written)
