"""The deployment-record log of one model: numbered JSON files, appended, never overwritten.

``<BENTOML_HOME>/deployments/<model>/<NNNNNN>.json`` holds what was live after each move; the
newest is what is live now. A record is claimed with a hard link from a staging file of its own,
so of two concurrent moves that pick the same number exactly one wins and the other fails before
it changes anything else. The shadow log of a deployment lives beside its record.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from resources.bentoml.types import BentoStoreError, DeploymentRecord


@dataclass(frozen=True)
class DeploymentLog:
    """The records of one model, in ``folder``."""

    folder: Path

    def history(self) -> list[DeploymentRecord]:
        """Every recorded deployment, oldest first."""
        paths = (
            sorted(self.folder.glob("[0-9]*.json"), key=lambda p: int(p.stem))
            if self.folder.exists()
            else []
        )
        return [DeploymentRecord.from_dict(json.loads(p.read_text())) for p in paths]

    def current(self) -> DeploymentRecord | None:
        """The newest record (what is live), or None before the first deployment."""
        history = self.history()
        return history[-1] if history else None

    def write(self, record: DeploymentRecord) -> Path:
        """Append ``record`` (its id must be the next one); written atomically, never overwritten."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{record.deployment_id:06d}.json"
        # A staging file of its own: a concurrent writer of the same id must not overwrite it.
        handle, name = tempfile.mkstemp(dir=self.folder, prefix=f".{record.deployment_id:06d}.")
        staging = Path(name)
        with os.fdopen(handle, "w") as out:
            out.write(json.dumps(record.to_dict(), indent=2, sort_keys=True))
        try:
            os.link(staging, path)  # fails if another move took this id first
        except FileExistsError as error:
            raise BentoStoreError(
                f"deployment #{record.deployment_id} of {record.model_name} already exists: "
                "another deployment ran concurrently; retry"
            ) from error
        finally:
            staging.unlink(missing_ok=True)
        return path

    def shadow_log_path(self, deployment_id: int) -> Path:
        """Where a shadow deployment appends the champion's and the challenger's answers."""
        return self.folder / f"shadow-{deployment_id:06d}.jsonl"
