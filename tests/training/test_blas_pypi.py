"""OpenBLAS from PyPI (``ngsolve-openblas``, a dependency on Linux x86-64) serves MLX training on a
machine whose distribution has none: chosen after the distribution's, preloaded into the training
child only, its ``libgfortran.so.5`` taken from the mlx wheel, and the GEMMs correct."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from efficientai_assets.defs.training import blas

pytestmark = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.machine() == "x86_64"),
    reason="ngsolve-openblas is installed on Linux x86-64 only",
)

CHILD = """
import json
import numpy as np
import mlx.core as mx
from efficientai_assets.defs.training.blas import describe_blas
mx.set_default_device(mx.cpu)
a = np.random.default_rng(0).standard_normal((300, 200)).astype(np.float32)
b = np.random.default_rng(1).standard_normal((200, 100)).astype(np.float32)
got = np.array(mx.array(a) @ mx.array(b))
u, s, vt = np.linalg.svd(a[:50, :40])
print(json.dumps({"tags": describe_blas().to_tags(), "max_error": float(np.abs(got - a @ b).max())}))
"""


def pypi_library() -> str:
    [library] = blas._package_libraries(blas.PYPI_OPENBLAS_PACKAGE)
    return library


def clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", blas.BLAS_ENV_VAR)}


def test_the_pypi_library_is_verified_and_offered_after_the_distributions() -> None:
    offered = {c.library: c.source for c in blas.available_libraries()}
    assert offered.get(pypi_library()) == blas.SOURCE_PYPI_OPENBLAS
    sources = [source for _, source in blas._candidates()]
    assert sources.index(blas.SOURCE_PYPI_OPENBLAS) > sources.index(blas.SOURCE_DEBIAN_OPENBLAS)
    assert sources.index(blas.SOURCE_PYPI_OPENBLAS) < sources.index(blas.SOURCE_PYPI_MKL)


def test_the_training_child_maps_it_and_multiplies_correctly() -> None:
    """Forced with EFFICIENTAI_BLAS where the distribution has its own OpenBLAS too."""
    env = blas.training_process_env({**clean_environment(), blas.BLAS_ENV_VAR: pypi_library()})
    assert env["LD_PRELOAD"] == pypi_library()
    links = Path(env["LD_LIBRARY_PATH"].split(":")[0])
    assert (links / "libgfortran.so.5").resolve().parent.name == "mlx_cpu.libs"
    assert "LD_LIBRARY_PATH" not in os.environ or str(links) not in os.environ["LD_LIBRARY_PATH"]
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["tags"]["blas.library"] == pypi_library()
    assert "loaded in this process" in result["tags"]["blas.reason"]
    assert result["max_error"] < 1e-3


def test_a_fresh_machine_trains_with_it_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """No distribution OpenBLAS (as on a fresh Debian or Ubuntu): the default is the PyPI one."""
    only_pypi = [c for c in blas._candidates() if c[1] != blas.SOURCE_DEBIAN_OPENBLAS]
    only_pypi = [c for c in only_pypi if c[1] != blas.SOURCE_SYSTEM_OPENBLAS]
    monkeypatch.setattr(blas, "_candidates", lambda: only_pypi)
    choice = blas._select(clean_environment())
    assert (choice.library, choice.source) == (pypi_library(), blas.SOURCE_PYPI_OPENBLAS)


def test_without_the_mlx_wheels_gfortran_it_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pypi = [(pypi_library(), blas.SOURCE_PYPI_OPENBLAS)]
    monkeypatch.setattr(blas, "_candidates", lambda: pypi)
    monkeypatch.setattr(blas, "runtime_links", lambda: None)
    choice = blas._select(clean_environment())
    assert choice.source == blas.SOURCE_REFERENCE
    assert "libgfortran.so.5" in choice.reason and pypi_library() in choice.reason
