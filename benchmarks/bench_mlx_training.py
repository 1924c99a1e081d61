"""MLX training throughput (samples/s) vs PyTorch CPU and numpy on the same MLP and data.

The MLX side is the product's own loop (``efficientai_assets.models.mlp.train``: Adam, cross-entropy,
``mx.compile``d step, device chosen automatically), run in a child process whose environment comes
from ``efficientai_assets.defs.training.blas.training_process_env`` exactly as the training asset does. The
baselines train the same 64-256-256-10 MLP with Adam on the same standardised digits, one loss
read-back per step, in their own children with an unmodified environment. All configurations of a
case run as warm children taking turns (a turn is one epoch, or several when one is too short to
time well), so the machine's changing load hits them alike. The first turn is the warm-up
(compilation, allocation); the median of the others is reported, with the load average around it.
Target: MLX ≥ 0.8× torch on CPU. Scaling uses 10× and 100× the sample: noisy copies of the digits.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Target, compare, median, not_measured
from benchmarks.processes import InterleavedChildren, report_step, wait_for_turn
from benchmarks.trainers import (
    HIDDEN,
    LEARNING_RATE,
    SEED,
    numpy_trainer,
    standardise,
    torch_trainer,
    training_data,
)

if TYPE_CHECKING:
    from benchmarks.harness import Row
    from benchmarks.run import Context

TITLE = "MLX training throughput vs torch CPU and numpy"
NAME = "mlx_training"
TARGET = Target(">=", 0.8)


# -- children -------------------------------------------------------------------------------


def _drive(epoch: Callable[[], float], samples: int, rounds: int, per_turn: int) -> None:
    """Per turn, ``per_turn`` epochs; reports their samples/s."""
    for _ in range(rounds):
        wait_for_turn()
        seconds = sum(epoch() for _ in range(per_turn))
        report_step(samples * per_turn / seconds)


def train_child(
    framework: str, batch: int, scale: int, rounds: int, per_turn: int
) -> dict[str, Any]:
    """In an interleaved child: ``per_turn`` epochs per turn for one framework and batch size."""
    train_x, train_y, val_x, val_y = training_data(scale, SEED)
    n = len(train_y)
    result: dict[str, Any] = {"framework": framework, "samples": n}
    if framework == "mlx":
        from efficientai_assets.defs.training.blas import describe_blas
        from efficientai_assets.models.mlp import EpochRecord, TrainingParams, train

        pending: list[float] = []

        def on_epoch(record: EpochRecord) -> None:
            pending.append(record.seconds)
            if record.epoch % per_turn == 0:
                report_step(n * len(pending) / sum(pending))
                pending.clear()
                if record.epoch < rounds * per_turn:
                    wait_for_turn()

        params = TrainingParams(rounds * per_turn, batch, LEARNING_RATE, HIDDEN, SEED)
        names = [f"pixel_{i}" for i in range(train_x.shape[1])]
        wait_for_turn()
        outcome, _ = train(train_x, train_y, val_x, val_y, names, params, on_epoch=on_epoch)
        result["device"] = outcome.device
        result["val_accuracy"] = outcome.final.val_accuracy
        result["blas"] = describe_blas().to_tags()
    elif framework == "numpy":
        _drive(numpy_trainer(standardise(train_x), train_y, batch), n, rounds, per_turn)
    elif framework == "torch":
        import torch

        result["threads"] = torch.get_num_threads()
        _drive(torch_trainer(standardise(train_x), train_y, batch), n, rounds, per_turn)
    else:
        raise ValueError(f"unknown framework {framework!r}")
    return result


# -- parent ---------------------------------------------------------------------------------


def _torch_available() -> str | None:
    """None when torch is installed, else why the torch rows are skipped."""
    try:
        metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "torch is not installed (optional: pip install torch==2.13.0 for the CPU build)"
    return None


def _interleave(
    ctx: Context,
    configs: dict[str, tuple[str, dict[str, str]]],
    batch: int,
    scale: int,
    rounds: int,
    per_turn: int,
) -> dict[str, dict[str, Any]]:
    """Run every config (name → framework, env) as interleaved children; median rate each."""
    ctx.log(
        f"batch {batch}, scale {scale}x, {rounds} rounds × {per_turn} epochs: {', '.join(configs)}"
    )
    kwargs = {"batch": batch, "scale": scale, "rounds": rounds, "per_turn": per_turn}
    children = InterleavedChildren(
        {
            name: ("benchmarks.bench_mlx_training:train_child", {"framework": fw, **kwargs}, env)
            for name, (fw, env) in configs.items()
        }
    )
    try:
        rates: dict[str, list[float]] = {name: [] for name in configs}
        load = [os.getloadavg()[0]]
        for _ in range(rounds):
            for name, value in children.round().items():
                rates[name].append(value)
        finished = children.finish()
        load.append(os.getloadavg()[0])
    finally:
        children.close()
    out = {}
    for name, result in finished.items():
        out[name] = {
            **result.data,
            "rates": rates[name],
            "rate": median(rates[name][1:]),  # round 1 is the warm-up
            "peak_rss_mb": result.peak_rss_mb,
            "load": load,
        }
    return out


def _load(run: dict[str, Any]) -> str:
    return "–".join(f"{v:.1f}" for v in run["load"])


def _blas_note(run: dict[str, Any]) -> str:
    tags = run.get("blas", {})
    return f"MLX on {run.get('device', '?')}, BLAS {tags.get('blas.source', '?')}"


def run(ctx: Context) -> list[Row]:
    from efficientai_assets.defs.training.blas import (
        BLAS_ENV_VAR,
        available_libraries,
        describe_blas,
        pypi_openblas_library,
        training_process_env,
    )

    rounds = 3 if ctx.quick else 6
    per_turn = 2 if ctx.quick else 10
    no_torch = _torch_available()
    choice = describe_blas()
    plain = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    product_env = training_process_env(plain)
    fresh = pypi_openblas_library()  # what make run gives a fresh Linux x86-64 machine
    base_name = "numpy" if no_torch else "torch"
    alternatives = (
        []
        if ctx.quick
        else [c for c in available_libraries() if c.library not in (choice.library, fresh)]
    )
    rows: list[Row] = []
    timed = f"median of {rounds - 1} interleaved turns of {per_turn} epochs after 1 warm-up"

    by_batch = {}
    for batch in (32, 256):
        configs: dict[str, tuple[str, dict[str, str]]] = {
            "mlx": ("mlx", product_env),
            "numpy": ("numpy", plain),
        }
        if not no_torch:
            configs["torch"] = ("torch", plain)
        if choice.preloads and not ctx.quick:
            configs["mlx-reference"] = (
                "mlx",
                training_process_env({**plain, BLAS_ENV_VAR: "reference"}),
            )
        for alt in alternatives:
            configs[f"mlx-{alt.source}"] = (
                "mlx",
                training_process_env({**plain, BLAS_ENV_VAR: alt.library}),
            )
        if fresh is not None and fresh != choice.library:
            configs["mlx-fresh"] = ("mlx", training_process_env({**plain, BLAS_ENV_VAR: fresh}))
        if not no_torch and choice.preloads and not ctx.quick and batch == 256:
            configs["torch-preload"] = ("torch", product_env)
        runs = by_batch[batch] = _interleave(ctx, configs, batch, 1, rounds, per_turn)

        case = f"digits, batch {batch}"
        mlx, numpy_run = runs["mlx"], runs["numpy"]
        note = f"{_blas_note(mlx)}; {timed}; load avg {_load(mlx)}"
        if no_torch:
            rows.append(
                not_measured(
                    NAME,
                    f"{case}: MLX vs torch CPU",
                    status="skipped",
                    target=TARGET,
                    note=no_torch,
                )
            )
        else:
            rows.append(
                compare(
                    NAME,
                    f"{case}: MLX (training BLAS) vs torch CPU",
                    subject="MLX",
                    subject_value=mlx["rate"],
                    baseline="torch",
                    baseline_value=runs["torch"]["rate"],
                    unit="samples/s",
                    target=TARGET,
                    peak_rss_mb=mlx["peak_rss_mb"],
                    note=note,
                    extra={"mlx": mlx, "torch": runs["torch"]},
                )
            )
        rows.append(
            compare(
                NAME,
                f"{case}: MLX (training BLAS) vs numpy",
                subject="MLX",
                subject_value=mlx["rate"],
                baseline="numpy",
                baseline_value=numpy_run["rate"],
                unit="samples/s",
                peak_rss_mb=mlx["peak_rss_mb"],
                note=note,
                extra={"numpy": numpy_run},
            )
        )
        fresh_run = runs.get("mlx-fresh", mlx if fresh == choice.library else None)
        if fresh_run is not None:
            rows.append(
                compare(
                    NAME,
                    f"{case}: MLX as make run sets up a fresh Linux x86-64 machine (PyPI "
                    f"OpenBLAS) vs {base_name}",
                    subject="MLX fresh default",
                    subject_value=fresh_run["rate"],
                    baseline=base_name,
                    baseline_value=runs[base_name]["rate"],
                    unit="samples/s",
                    target=None if no_torch else TARGET,
                    peak_rss_mb=fresh_run["peak_rss_mb"],
                    note=f"ngsolve-openblas from PyPI (installed by make setup), preloaded into "
                    f"the training child; {_blas_note(fresh_run)}; {timed}; load avg "
                    f"{_load(fresh_run)}" + (f"; {no_torch}" if no_torch else ""),
                    extra={"mlx": fresh_run},
                )
            )
        if "mlx-reference" in runs:
            ref = runs["mlx-reference"]
            rows.append(
                compare(
                    NAME,
                    f"{case}: MLX with no fast BLAS (wheel's reference) vs numpy",
                    subject="MLX reference",
                    subject_value=ref["rate"],
                    baseline="numpy",
                    baseline_value=numpy_run["rate"],
                    unit="samples/s",
                    peak_rss_mb=ref["peak_rss_mb"],
                    note=f"what training gets when no fast BLAS is installed; {_blas_note(ref)}",
                    extra={"mlx_reference": ref},
                )
            )
        for alt in alternatives:
            run_alt = runs[f"mlx-{alt.source}"]
            rows.append(
                compare(
                    NAME,
                    f"{case}: MLX with {alt.source} vs numpy",
                    subject=f"MLX+{alt.source}",
                    subject_value=run_alt["rate"],
                    baseline="numpy",
                    baseline_value=numpy_run["rate"],
                    unit="samples/s",
                    peak_rss_mb=run_alt["peak_rss_mb"],
                    note=f"another verified library ({alt.library}); {_blas_note(run_alt)}",
                )
            )
        if "torch-preload" in runs:
            rows.append(
                compare(
                    NAME,
                    f"{case}: torch with the training preload vs without",
                    subject="torch+preload",
                    subject_value=runs["torch-preload"]["rate"],
                    baseline="torch",
                    baseline_value=runs["torch"]["rate"],
                    unit="samples/s",
                    peak_rss_mb=runs["torch-preload"]["peak_rss_mb"],
                    note="torch given the training child's environment (the preload), in turn",
                )
            )

    if not ctx.quick and not no_torch:
        one = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        for batch in (32, 256):
            runs = _interleave(
                ctx,
                {
                    "mlx": ("mlx", {**product_env, **one}),
                    "numpy": ("numpy", {**plain, **one}),
                    "torch": ("torch", {**plain, **one}),
                },
                batch,
                1,
                rounds,
                per_turn,
            )
            mlx = runs["mlx"]
            rows.append(
                compare(
                    NAME,
                    f"digits, batch {batch}, one thread each: MLX vs torch CPU",
                    subject="MLX",
                    subject_value=mlx["rate"],
                    baseline="torch",
                    baseline_value=runs["torch"]["rate"],
                    unit="samples/s",
                    target=TARGET,
                    peak_rss_mb=mlx["peak_rss_mb"],
                    note=f"OMP/OPENBLAS/MKL_NUM_THREADS=1: immune to other load on the cores; numpy "
                    f"{runs['numpy']['rate']:,.0f}/s; {_blas_note(mlx)}; {timed}; "
                    f"load avg {_load(mlx)}",
                )
            )

    one_x = by_batch[256]["mlx"]["rate"]
    for scale in (1,) if ctx.quick else (1, 10, 100):
        if scale == 1:
            runs = by_batch[256]
        else:
            configs = {"mlx": ("mlx", product_env), "numpy": ("numpy", plain)}
            if not no_torch:
                configs["torch"] = ("torch", plain)
            runs = _interleave(ctx, configs, 256, scale, 3 if scale == 100 or ctx.quick else 4, 1)
        mlx = runs["mlx"]
        rows.append(
            compare(
                NAME,
                f"scale {scale}× ({mlx['samples']:,} samples), batch 256: MLX vs {base_name}",
                subject="MLX",
                subject_value=mlx["rate"],
                baseline=base_name,
                baseline_value=runs[base_name]["rate"],
                unit="samples/s",
                target=None if no_torch else TARGET,
                peak_rss_mb=mlx["peak_rss_mb"],
                note=f"MLX at {mlx['rate'] / one_x:.2f}× its 1× rate; numpy "
                f"{runs['numpy']['rate']:,.0f}/s; median of {len(mlx['rates']) - 1} turns; "
                f"load avg {_load(mlx)}",
            )
        )
    one_thread = {
        int(m.group(1)): row
        for row in rows
        if (m := re.match(r"digits, batch (\d+), one thread each", row.case))
    }
    for row in rows:
        if row.met is False:
            row.note += "; " + _limit(row, one_thread)
    return rows


def _limit(row: Row, one_thread: dict[int, Row]) -> str:
    """What holds an unmet MLX row back, from what this run measured."""
    mlx = row.extra.get("mlx", {})
    if mlx.get("blas", {}).get("blas.source") == "reference":
        return "limited by the mlx wheel's reference BLAS: install a fast one (docs/performance.md)"
    batch = re.search(r"batch (\d+)", row.case)
    single = one_thread.get(int(batch.group(1))) if batch else None
    if single is not None and single.ratio is not None and "one thread" not in row.case:
        return (
            f"limited by threads contending for 2 busy cores: BLAS threads gain nothing on these "
            f"small GEMMs, and with one thread each MLX is {single.ratio:.2f}× torch "
            f"({single.subject_value:,.0f} samples/s)"
        )
    return (
        "limited by MLX's fixed cost per step (dispatch, evaluation, the loss read back every "
        "step), which small batches cannot amortise"
    )
