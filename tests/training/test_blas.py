"""The training process's BLAS: chosen, verified, confined to the child, and recorded."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from efficientai_assets.defs.training import blas

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD is Linux")


def _wheel_reference_blas() -> str:
    """The reference BLAS bundled in the mlx[cpu] wheel: a real library exporting cblas_sgemm."""
    import importlib.util

    spec = importlib.util.find_spec("mlx")
    assert spec is not None and spec.submodule_search_locations
    site = Path(next(iter(spec.submodule_search_locations))).parent
    found = sorted(glob.glob(str(site / "mlx_cpu.libs" / "libblas-*.so*")))
    if not found:
        pytest.skip("the installed mlx wheel bundles no reference BLAS")
    return found[0]


CHILD = """
import json, numpy as np, mlx.core as mx
from efficientai_assets.defs.training.blas import describe_blas
mx.set_default_device(mx.cpu)
a = np.random.default_rng(0).standard_normal((96, 64)).astype(np.float32)
b = np.random.default_rng(1).standard_normal((64, 80)).astype(np.float32)
got = np.array(mx.array(a) @ mx.array(b))
error = float(np.abs(got - a @ b).max())
print(json.dumps({"tags": describe_blas().to_tags(), "max_error": error}))
"""


def _run_child(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@linux_only
def test_configured_library_is_preloaded_only_into_the_training_child(monkeypatch):
    library = _wheel_reference_blas()
    monkeypatch.setenv(blas.BLAS_ENV_VAR, library)
    monkeypatch.delenv("LD_PRELOAD", raising=False)

    env = blas.training_process_env()

    assert env["LD_PRELOAD"] == library
    assert "LD_PRELOAD" not in os.environ, "the calling process's environment must not change"
    result = _run_child(env)
    tags = result["tags"]
    assert isinstance(tags, dict)
    assert tags["blas.library"] == library
    assert tags["blas.source"] == blas.SOURCE_CONFIGURED
    assert "loaded in this process" in tags["blas.reason"]
    assert result["max_error"] < 1e-3


@linux_only
def test_auto_choice_gives_correct_matmul_in_the_training_child(monkeypatch):
    monkeypatch.delenv(blas.BLAS_ENV_VAR, raising=False)
    choice = blas.describe_blas()
    if not choice.preloads:
        pytest.skip(f"no fast BLAS on this machine: {choice.reason}")

    result = _run_child(blas.training_process_env())

    tags = result["tags"]
    assert isinstance(tags, dict)
    assert tags["blas.library"] == choice.library
    assert "loaded in this process" in tags["blas.reason"]
    assert result["max_error"] < 1e-3


@linux_only
def test_reference_setting_leaves_the_environment_unchanged(monkeypatch):
    monkeypatch.setenv(blas.BLAS_ENV_VAR, "reference")
    base = {"PATH": "/usr/bin", blas.BLAS_ENV_VAR: "reference"}

    assert blas.training_process_env(base) == base
    choice = blas.describe_blas()
    assert (choice.library, choice.source) == ("reference", "reference")


@linux_only
def test_existing_preload_is_kept_after_the_blas():
    library = _wheel_reference_blas()
    env = blas.training_process_env({blas.BLAS_ENV_VAR: library, "LD_PRELOAD": "/opt/libother.so"})

    assert env["LD_PRELOAD"] == f"{library}:/opt/libother.so"
    assert blas.training_process_env(env)["LD_PRELOAD"] == env["LD_PRELOAD"], "added only once"


@linux_only
def test_library_without_cblas_sgemm_falls_back_to_reference_with_the_reason(monkeypatch):
    monkeypatch.setenv(blas.BLAS_ENV_VAR, os.path.realpath(sys.executable))

    choice = blas.describe_blas()

    assert choice.source == "reference"
    assert "does not export cblas_sgemm" in choice.reason
    assert "LD_PRELOAD" not in blas.training_process_env({blas.BLAS_ENV_VAR: sys.executable})


@linux_only
def test_prefixed_openblas_shipped_with_numpy_is_rejected(monkeypatch):
    import numpy

    bundled = glob.glob(str(Path(numpy.__file__).parent.parent / "numpy.libs" / "*openblas*.so*"))
    if not bundled:
        pytest.skip("this numpy build bundles no OpenBLAS")
    monkeypatch.setenv(blas.BLAS_ENV_VAR, bundled[0])

    choice = blas.describe_blas()

    assert choice.source == "reference"
    assert "does not export cblas_sgemm" in choice.reason


@linux_only
def test_missing_or_unpreloadable_paths_fall_back_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setenv(blas.BLAS_ENV_VAR, str(tmp_path / "absent.so"))
    assert "cannot stat" in blas.describe_blas().reason

    spaced = tmp_path / "with space" / "libblas.so"
    spaced.parent.mkdir()
    shutil.copy(_wheel_reference_blas(), spaced)
    monkeypatch.setenv(blas.BLAS_ENV_VAR, str(spaced))
    assert "spaces or colons" in blas.describe_blas().reason

    text = tmp_path / "notelf.so"
    text.write_text("not a library")
    monkeypatch.setenv(blas.BLAS_ENV_VAR, str(text))
    assert "not an ELF file" in blas.describe_blas().reason


def test_unknown_setting_is_refused_naming_the_variable(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("the setting is read on Linux only")
    monkeypatch.setenv(blas.BLAS_ENV_VAR, "fast")

    with pytest.raises(ValueError, match="EFFICIENTAI_BLAS='fast'"):
        blas.describe_blas()


@linux_only
def test_preload_that_the_loader_did_not_map_is_recorded_as_reference(monkeypatch, tmp_path):
    copy = tmp_path / "libblas-copy.so"
    shutil.copy(_wheel_reference_blas(), copy)  # verifies, but is not mapped in this process
    monkeypatch.setenv(blas.BLAS_ENV_VAR, str(copy))
    monkeypatch.setenv("LD_PRELOAD", str(copy))

    choice = blas.describe_blas()

    assert choice.source == "reference"
    assert "did not map it" in choice.reason


def test_macos_uses_accelerate_and_preloads_nothing(monkeypatch):
    monkeypatch.setattr(blas.sys, "platform", "darwin")

    choice = blas.describe_blas()

    assert (choice.library, choice.source) == ("accelerate", "accelerate")
    assert blas.training_process_env({"PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}
    assert choice.to_tags() == {
        "blas.library": "accelerate",
        "blas.source": "accelerate",
        "blas.reason": choice.reason,
    }


def test_importing_the_module_loads_no_heavy_library():
    code = (
        "import sys, efficientai_assets.defs.training.blas as b; b.describe_blas(); "
        "heavy = ('mlx', 'numpy', 'torch', 'mlflow', 'dagster'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@linux_only
def test_mkl_runs_sequential_unless_the_caller_chose_a_layer(tmp_path):
    mkl = tmp_path / "libmkl_rt.so.3"  # any verified library under MKL's file name
    shutil.copy(_wheel_reference_blas(), mkl)

    env = blas.training_process_env({blas.BLAS_ENV_VAR: str(mkl)})
    chosen = blas.training_process_env({blas.BLAS_ENV_VAR: str(mkl), "MKL_THREADING_LAYER": "GNU"})

    assert env["LD_PRELOAD"] == str(mkl)
    assert env["MKL_THREADING_LAYER"] == "SEQUENTIAL"
    assert chosen["MKL_THREADING_LAYER"] == "GNU"
