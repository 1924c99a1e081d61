"""What a restored home must do, checked by the restore itself, one line each:

- ``dagster-history``: the run history is there (as many runs as the backup held);
- ``champion <model>``: the ``champion`` alias names the backed-up version, and that version
  loads through MLflow (``models:/<model>@champion``);
- ``dvc pull``: ``dvc pull`` in the restored registry restores the data, and ``dvc status``
  then finds the workspace exactly as the pointers say;
- ``serve <model>``: the live deployment is the backed-up one and BentoML knows every bento it
  serves (with ``--serve``: its servers start and answer ``/readyz``, as ``make serve`` does).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from efficientai_assets.operations.probes import (
    Probe,
    ProbeFailed,
    postgres_count,
    sqlite_count,
    timed,
)
from efficientai_assets.operations.stores import StoreLocations

DVC_TIMEOUT_SECONDS = 600


def check_history(locations: StoreLocations, expected: int) -> str:
    """At least as many runs as the backup counted (a PostgreSQL dump, taken after the count,
    may hold runs that started meanwhile)."""
    storage = locations.dagster_storage()
    if storage.kind == "postgres" and storage.postgres_url:
        runs = postgres_count(storage.postgres_url, "runs")
        where = "the PostgreSQL run storage"
    else:
        where = str(locations.home.dagster_home / "history" / "runs.db")
        runs = sqlite_count(Path(where), "runs")
    if runs < expected or (storage.kind == "sqlite" and runs != expected):
        raise ProbeFailed(f"{runs} runs in {where}, the backup held {expected}")
    return f"{runs} runs"


def check_champion(locations: StoreLocations, model: str, version: str) -> str:
    import mlflow

    uri = locations.tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    found = str(client.get_model_version_by_alias(model, "champion").version)
    if found != version:
        raise ProbeFailed(f"champion of {model} is version {found}, the backup had {version}")
    loaded = mlflow.pyfunc.load_model(f"models:/{model}@champion")
    return f"version {version} loads ({type(loaded).__name__})"


def _dvc(locations: StoreLocations, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "dvc", *args], cwd=locations.home.data_registry,
            capture_output=True, text=True, timeout=DVC_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise ProbeFailed(f"dvc {' '.join(args)} timed out") from error


def check_dvc_pull(locations: StoreLocations) -> str:
    pulled = _dvc(locations, "pull")
    if pulled.returncode != 0:
        raise ProbeFailed(f"dvc pull failed: {(pulled.stderr or pulled.stdout).strip()[-400:]}")
    status = _dvc(locations, "status", "--json")
    text = status.stdout.strip()
    changes = json.loads(text[text.find("{") :]) if "{" in text else {}
    if status.returncode != 0 or changes:
        raise ProbeFailed(f"after dvc pull the workspace differs from its pointers: {changes}")
    outputs = sorted(p.name for p in locations.home.data_registry.rglob("*.dvc"))
    return f"{len(outputs)} versioned path(s) restored from {locations.dvc_remote_url}"


def check_serving(locations: StoreLocations, model: str, deployment_id: int, serve: bool) -> str:
    from resources.bentoml.store import BentoMLResource

    resource = BentoMLResource(bentoml_home=str(locations.bentoml_home), port=0)
    record = resource.current_deployment(model)
    if record is None or record.deployment_id != deployment_id:
        raise ProbeFailed(f"{model}: live deployment is {record and record.deployment_id}, "
                          f"the backup had #{deployment_id}")  # fmt: skip
    served = [record.champion, *([record.canary] if record.canary else [])]
    for entry in served:
        if resource.get_bento(entry.bento_tag) is None:
            raise ProbeFailed(
                f"BentoML does not know {entry.bento_tag} in {resource.resolved_home()}"
            )
    if not serve:
        return f"{record.summary()}: every bento present"
    from efficientai_assets.defs.serving.packaging import router_program

    with resource.serve_deployment(record, router_program(), port=0) as server:
        server.wait_until_ready()
        return f"{record.summary()}: ready on {server.url}"


def run_checks(
    locations: StoreLocations, manifest: dict[str, Any], serve: bool = False
) -> list[str]:
    """Run every check, print one line each; return the names of those that failed."""
    components = manifest["components"]
    checks: list[tuple[str, Callable[[], str]]] = []
    if "runs" in components["dagster"]:
        runs = int(components["dagster"]["runs"])
        checks.append(("dagster-history", lambda: check_history(locations, runs)))
    for model, version in sorted(components["mlflow"].get("champions", {}).items()):
        checks.append((f"champion {model}", partial(check_champion, locations, model, version)))
    if components["data"].get("present"):
        checks.append(("dvc pull", lambda: check_dvc_pull(locations)))
    for model, deployment in sorted(components["bentoml"].get("deployments", {}).items()):
        check = partial(check_serving, locations, model, int(deployment), serve)
        checks.append((f"serve {model}", check))
    results: list[Probe] = [timed(name, check) for name, check in checks]
    for result in results:
        print(result.line(), flush=True)
    return [r.component for r in results if r.status != "up"]
