"""Datasets: versioning a file or folder in the project's DVC data registry from a script, through
the client's ``dvc_client`` (``dvc_client.py``), under the same lock and commit discipline as the
data assets."""

from __future__ import annotations

from pathlib import Path

from efficientai_assets.client.core import ClientCore
from efficientai_assets.client.dvc_client import DATASETS_DIR
from efficientai_assets.client.guard import guarded

__all__ = ["DATASETS_DIR", "DatasetsMixin"]


class DatasetsMixin(ClientCore):
    """``dataset_path`` and ``version_dataset`` on the client's ``DVCClient``."""

    @guarded("locate a dataset in the registry")
    def dataset_path(self, path: str | Path) -> str:
        """Where ``path`` is versioned, relative to the registry root: itself when it already lies
        in the registry, else ``<namespace>/datasets/<name>``."""
        return self.dvc_client.registry_path(path)

    @guarded("version a dataset")
    def version_dataset(self, path: str | Path, push_to_remote: bool = False) -> bool:
        """Version a file or folder in the DVC data registry: copied under
        ``<namespace>/datasets/`` (unless already inside the registry), added to DVC and its
        pointer committed; pushed to the remote when ``push_to_remote``. True once versioned;
        errors raise (and leave no committed pointer).
        """
        version = self.dvc_client.add(
            path,
            push=push_to_remote,
            message=f"Version {self.dataset_path(path)} from the {self.project_namespace} client",
        )
        self._log(
            "dataset %s: md5 %s (%s), commit %s%s",
            version.path,
            version.md5,
            "new version" if version.changed else "unchanged",
            version.commit[:10],
            ", pushed" if push_to_remote else ", not pushed",
        )
        return True
