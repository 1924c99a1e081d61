"""MLflow runs whose process could not end them: a tracking server that went away mid-step, or
a worker killed mid-step. Neither may leave a run RUNNING for ever: the first is remembered
under the home and ended FAILED at the next run's start; the second is found by its step's tags
when the step runs again."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from resources.home import default_home

if TYPE_CHECKING:
    from mlflow import MlflowClient


def _server_key(uri: str) -> str:
    """The server's address without any credentials in it (records never hold a password)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit(parts._replace(netloc=netloc))


def _unfinished_file() -> str:
    return os.path.join(default_home().mlflow_dir, "unfinished-runs.jsonl")


def remember_unfinished_run(tracking_uri: str, run_id: str) -> None:
    """Record a run this process could not end (its server was down), to end it FAILED later."""
    path = _unfinished_file()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps({"uri": _server_key(tracking_uri), "run_id": run_id}) + "\n")


def end_unfinished_runs(client: MlflowClient) -> int:
    """End FAILED every remembered run of this client's server that is still RUNNING; keep the
    records of other servers. Called at the start of each run, once the server answers."""
    path = _unfinished_file()
    if not os.path.isfile(path):
        return 0
    uri = _server_key(str(client.tracking_uri))
    with open(path) as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    from mlflow.exceptions import MlflowException

    ended, kept = 0, [r for r in records if r["uri"] != uri]
    for record in [r for r in records if r["uri"] == uri]:
        try:
            if client.get_run(record["run_id"]).info.status == "RUNNING":
                client.set_terminated(record["run_id"], status="FAILED")
                ended += 1
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                kept.append(record)  # try again at the next start
    with open(path, "w") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in kept)
    return ended


# Tags that identify the Dagster step an MLflow run belongs to (set by the assets).
_STEP_TAGS = ("dagster.run_id", "dagster.asset_key")


def end_earlier_attempts(client: MlflowClient, experiment_id: str, tags: Mapping[str, str]) -> int:
    """End FAILED the RUNNING runs of an earlier attempt of the same step (same Dagster run and
    asset): a step runs once at a time, so such a run belongs to a process that died mid-step
    (a killed worker) and would otherwise stay RUNNING for ever."""
    if not all(tags.get(key) for key in _STEP_TAGS):
        return 0
    query = " and ".join(f"tags.`{key}` = '{tags[key]}'" for key in _STEP_TAGS)
    stale = client.search_runs([experiment_id], f"{query} and attributes.status = 'RUNNING'")
    for run in stale:
        client.set_terminated(run.info.run_id, status="FAILED")
    return len(stale)
