"""Version a CSV in the project's DVC data registry, change it, and version it again.

Run from the repository root (``EFFICIENTAI_HOME`` picks the home; default ``.efficientai/``)::

    .venv/bin/python docs/examples/data_versioning.py

Each version is a git commit of the file's ``.dvc`` pointer in ``<home>/data`` whose content is on
the DVC remote (``<home>/dvc-remote`` by default); ``git log`` in the registry lists them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from efficientai_assets.client import MLOpsClient
from efficientai_assets.defs.data.datasets import sample_digits


def main() -> None:
    client = MLOpsClient(os.environ.get("EFFICIENTAI_PROJECT", "efficientai"))
    frame = sample_digits()

    with tempfile.TemporaryDirectory() as scratch:
        csv_path = Path(scratch) / "digits.csv"
        frame.iloc[:1000].to_csv(csv_path, index=False)
        client.version_dataset(csv_path, push_to_remote=True)
        first = client.dvc_client.current_version(client.dataset_path(csv_path))

        frame.to_csv(csv_path, index=False)  # more rows arrived: a new version
        client.version_dataset(csv_path, push_to_remote=True)
        second = client.dvc_client.current_version(client.dataset_path(csv_path))

    assert first is not None and second is not None
    print(f"registry: {client.dvc_client.root()}")
    print(f"{first.path}: md5 {first.md5} (commit {first.commit[:10]}, {first.size_bytes} bytes)")
    print(
        f"{second.path}: md5 {second.md5} (commit {second.commit[:10]}, {second.size_bytes} bytes)"
    )
    # An empty status means every tracked file's content is on the remote.
    print(f"dvc status against the remote: {client.dvc_client.status() or 'in sync'}")
    print(
        f"restore the first version: git -C {client.dvc_client.root()} checkout "
        f"{first.commit[:10]} -- {first.path}.dvc && dvc pull {first.path}"
    )


if __name__ == "__main__":
    main()
