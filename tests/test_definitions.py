"""The code location: cheap to load, and the asset graph it declares."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg

HEAVY_MODULES = (
    "mlflow",
    "evidently",
    "bentoml",
    "mlx",
    "torch",
    "sklearn",
    "dvc",
    "scipy",
    "pandas",
    "numpy",
)


def test_loading_the_code_location_imports_no_heavy_library() -> None:
    code = (
        "import sys, efficientai_assets.definitions as d; "
        f"print(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    assert loaded == ""


def test_definitions_resolve_every_job_and_asset() -> None:
    from efficientai_assets.definitions import defs

    repository = defs.get_repository_def()
    assert repository.get_job("efficientai_pipeline") is not None
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"raw_dataset", "dataset_splits", "candidate_model", "champion_model"} <= keys


def test_code_location_matches_the_committed_snapshot() -> None:
    """Asset keys, groups, kinds, code versions, deps, pools, partitions, checks, run config, jobs,
    schedules and sensors are what users and stored runs depend on; a layout change must keep them.
    After an intended change, regenerate with ``python -m tests.definitions_snapshot``."""
    from definitions_snapshot import take

    committed = json.loads((Path(__file__).parent / "snapshots" / "definitions.json").read_text())
    assert json.loads(json.dumps(take(), default=str)) == committed


def test_dagster_and_dvcs_hydra_grammars_share_one_antlr_runtime() -> None:
    """Dagster's selection syntax (CLI ``--select``, the UI) and DVC's Hydra/omegaconf parsing
    (``dvc exp`` parameters) are both ANTLR grammars; the lock gives them one runtime that reads
    both."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from efficientai_assets.definitions import defs

    selection = dg.AssetSelection.from_string("group:training or key:raw_dataset")
    keys = selection.resolve(defs.resolve_asset_graph())
    assert {k.to_user_string() for k in keys} == {
        "raw_dataset",
        "candidate_model",
        "champion_model",
    }
    assert OmegaConf.create({"a": 2, "b": "${a}"}).b == 2
    [override] = OverridesParser.create().parse_overrides(["train.epochs=5"])
    assert override.value() == 5
