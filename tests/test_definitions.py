"""The code location: cheap to load, and the asset graph it declares."""

from __future__ import annotations

import subprocess
import sys

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


def test_asset_specs_snapshot() -> None:
    """Groups, kinds, code versions, lineage and pools as users see them in the UI."""
    from efficientai_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    snapshot = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        snapshot[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "code_version": node.code_version,
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "pools": sorted(node.pools or []),
        }
    expected_core = {
        "raw_dataset": {
            "group": "data",
            "kinds": ["dvc", "pandas"],
            "code_version": "1",
            "deps": [],
            "pools": [],
        },
        "dataset_splits": {
            "group": "data",
            "kinds": ["dvc", "pandas"],
            "code_version": "1",
            "deps": ["raw_dataset"],
            "pools": [],
        },
        "candidate_model": {
            "group": "training",
            "kinds": ["mlflow", "mlx"],
            "code_version": "1",
            "deps": ["dataset_splits"],
            "pools": ["heavy"],
        },
        "champion_model": {
            "group": "training",
            "kinds": ["mlflow"],
            "code_version": "1",
            "deps": ["candidate_model"],
            "pools": [],
        },
    }
    assert {k: snapshot[k] for k in expected_core} == expected_core
    check_keys = {str(c.name) for c in graph.asset_check_keys}
    assert "quality" in check_keys
    assert dg.AssetKey("candidate_model") in {c.asset_key for c in graph.asset_check_keys}


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
