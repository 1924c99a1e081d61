"""The code location loads the defs folder as a package: the same definitions that
``dg.load_from_defs_folder`` collects, without its component-library snapshot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import dagster as dg

PROJECT = Path(__file__).resolve().parent.parent


def picture(definitions: dg.Definitions) -> dict[str, Any]:
    from resources.defaults import DEFAULT_NAMESPACE, build_resources

    resources = dg.Definitions(resources=build_resources(DEFAULT_NAMESPACE))
    repository = dg.Definitions.merge(definitions, resources).get_repository_def()
    graph = repository.asset_graph
    return {
        "assets": {
            key.to_user_string(): [
                graph.get(key).group_name,
                graph.get(key).code_version,
                sorted(k.to_user_string() for k in graph.get(key).parent_keys),
            ]
            for key in graph.get_all_asset_keys()
        },
        "checks": sorted(str(key) for key in graph.asset_check_keys),
        "jobs": sorted(job.name for job in repository.get_all_jobs()),
        "schedules": sorted(s.name for s in repository.schedule_defs),
    }


def test_the_package_loader_collects_what_the_defs_folder_loader_collects() -> None:
    from efficientai_assets.definitions import domain_definitions

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = dg.load_from_defs_folder(path_within_project=PROJECT / "efficientai_assets")
    assert picture(domain_definitions()) == picture(folder)
    assert len(picture(folder)["assets"]) >= 9


def test_loading_the_code_location_prints_no_warning() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import efficientai_assets.definitions"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=PROJECT,
    )
    assert "PreviewWarning" not in done.stderr, done.stderr[-2000:]
    assert json.dumps(done.stdout) == '""'


def test_dagsters_own_loader_accepts_the_code_location() -> None:
    """What ``dg launch``, ``dg dev`` and every run process do: one Definitions at module scope."""
    dg_cli = Path(sys.executable).with_name("dg")
    done = subprocess.run(
        [str(dg_cli), "check", "defs"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=PROJECT,
        env={**os.environ, "VIRTUAL_ENV": str(Path(sys.executable).parent.parent)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "All definitions loaded successfully" in done.stdout + done.stderr
