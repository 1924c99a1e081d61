"""The seed guide's Python client: ``from efficientai_assets.client import MLOpsClient``.

Also exported: the errors a caller catches (``MLOpsClientError``, ``NoActiveRunError``), the
``RunHandle`` that ``start_run`` yields, the ``DriftMonitor`` behind ``client.evidently_monitor``
and ``BATCH_STEP_KEY``, the key under which a ``log_metrics_batch`` row names its step.
"""

from efficientai_assets.client.client import MLOpsClient
from efficientai_assets.client.drift import DriftMonitor
from efficientai_assets.client.errors import MLOpsClientError, NoActiveRunError, RunHandle
from efficientai_assets.client.values import BATCH_STEP_KEY

__all__ = [
    "BATCH_STEP_KEY",
    "DriftMonitor",
    "MLOpsClient",
    "MLOpsClientError",
    "NoActiveRunError",
    "RunHandle",
]
