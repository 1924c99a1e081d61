"""What a caller of the client catches and holds: its errors and the handle of an open run.

Every error the client raises is an ``MLOpsClientError``, so one ``except MLOpsClientError``
handles them all. Where a standard type fits too, the error is a subclass of both (a missing path
is also a ``FileNotFoundError``, a bad argument also a ``ValueError``), so handlers written for
the standard types keep working. Errors of the tools underneath are translated at the client's
edge (``guard.py``), with the original chained as ``__cause__``.
"""

from __future__ import annotations

from dataclasses import dataclass

from resources.dvc.resource import DvcVersioningError
from resources.evidently.types import DriftInputError as _FrameError


class MLOpsClientError(RuntimeError):
    """A client call cannot proceed; the message says why and what to do."""


class NoActiveRunError(MLOpsClientError):
    """A call that logs into a run was made outside ``start_run``."""


class InvalidArgumentError(MLOpsClientError, ValueError):
    """An argument that cannot be right (a name, a version, a priority...)."""


class ArgumentTypeError(MLOpsClientError, TypeError):
    """An argument of the wrong type (a metric that is not a number, a frame that is a list)."""


class PathNotFoundError(MLOpsClientError, FileNotFoundError):
    """A dataset, artifact or model path that does not exist."""


class DriftInputError(MLOpsClientError, _FrameError):
    """Frames that cannot be compared for drift; the message names the column."""


class DatasetVersioningError(MLOpsClientError, DvcVersioningError):
    """DVC could not version, push or pull; the registry was left as it was."""


class TrackingError(MLOpsClientError):
    """The MLflow store refused a request or could not be reached; the message names the run and
    the tracking URI (its password replaced by ``***``)."""


class DeploymentError(MLOpsClientError):
    """A model cannot be packaged or served as given."""


class BentoBuildError(DeploymentError):
    """Importing the model or ``bentoml build`` failed; the message carries BentoML's output."""


class PickleModelRefusedError(DeploymentError, PermissionError):
    """A model that loads through pickle, refused unless ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION``
    is ``true``: loading a pickle runs code from the file."""


@dataclass(frozen=True)
class RunHandle:
    """The run a ``start_run`` block logs into."""

    run_id: str
    experiment_id: str
    run_name: str
    url: str
    parent_run_id: str | None = None
