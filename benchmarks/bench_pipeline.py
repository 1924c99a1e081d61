"""The whole demo pipeline by CLI on a fresh home vs a plain script doing the same work.

Subject: what ``make run`` executes after setup — ``dagster job execute`` of ``efficientai_pipeline``
and of ``monitoring_job`` for one day — on a fresh ``EFFICIENTAI_HOME``. Baseline:
``benchmarks/pipeline_script.py``, the same store calls (DVC, MLflow, MLX training child, BentoML,
Evidently) in one plain process. The ratio is the price of orchestration: two CLI processes
loading the code location, the run and event storage, the checks, the gate. Target ≤ 1.5×.

Then the memoized re-run: the CLI runs the pipeline again on the same home, and the candidate
step's duration (from Dagster's step stats) is compared with the training step's duration in the
first run. Target ≤ 5 %.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.harness import REPO_ROOT, BenchmarkError, Target, compare, median

if TYPE_CHECKING:
    from benchmarks.harness import Row
    from benchmarks.run import Context

TITLE = "Whole pipeline by CLI vs plain script"
NAME = "pipeline"
FRESH_TARGET = Target("<=", 1.5)
MEMO_TARGET = Target("<=", 0.05)
DAY = "2026-11-01"
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        EFFICIENTAI_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        BENTOML_HOME=str(home / "bentoml"),
        DAGSTER_DISABLE_TELEMETRY="1",
        DVC_NO_ANALYTICS="1",
    )
    return env


def _run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=1800, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise BenchmarkError(f"{' '.join(argv[:4])} exited with {done.returncode}: {tail}")
    return elapsed


def _cli_pipeline(home: Path) -> float:
    """The two commands of ``make run`` (after setup), timed together."""
    from resources.home import EfficientAIHome

    EfficientAIHome(home).ensure_layout()
    env = _env(home)
    module = ["-m", "efficientai_assets.definitions"]
    return _run([DAGSTER, "job", "execute", *module, "-j", "efficientai_pipeline"], env) + _run(
        [
            DAGSTER,
            "job",
            "execute",
            *module,
            "-j",
            "monitoring_job",
            "--tags",
            f'{{"dagster/partition": "{DAY}"}}',
        ],
        env,
    )


def _plain_script(home: Path) -> float:
    return _run([sys.executable, "-m", "benchmarks.pipeline_script", str(home), DAY], _env(home))


def _candidate_step_seconds(home: Path) -> list[float]:
    """Durations of ``candidate_model`` in each pipeline run of this home, oldest first."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records(
            dg.RunsFilter(job_name="efficientai_pipeline"), ascending=True
        )
        durations = []
        for record in records:
            for stats in instance.get_run_step_stats(record.dagster_run.run_id):
                if stats.step_key == "candidate_model" and stats.end_time and stats.start_time:
                    durations.append(stats.end_time - stats.start_time)
        return durations


def run(ctx: Context) -> list[Row]:
    reps = 1 if ctx.quick else 3
    cli_times: list[float] = []
    script_times: list[float] = []
    for rep in range(reps):
        # Alternate the order so a slow spell on the machine hits both alike.
        order = [("cli", _cli_pipeline), ("script", _plain_script)]
        for label, fn in order if rep % 2 == 0 else reversed(order):
            home = ctx.scratch / f"{label}-{rep}"
            elapsed = fn(home)
            (cli_times if label == "cli" else script_times).append(elapsed)
            ctx.log(f"{label} rep {rep}: {elapsed:.1f} s")

    memo_home = ctx.scratch / "cli-0"
    _run(
        [
            DAGSTER,
            "job",
            "execute",
            "-m",
            "efficientai_assets.definitions",
            "-j",
            "efficientai_pipeline",
        ],
        _env(memo_home),
    )
    first, *later = _candidate_step_seconds(memo_home)
    memoized = later[-1]
    return [
        compare(
            NAME,
            "fresh home: CLI (pipeline + one monitoring day) vs plain script",
            subject="dagster CLI",
            subject_value=median(cli_times),
            baseline="plain script",
            baseline_value=median(script_times),
            unit="s",
            target=FRESH_TARGET,
            note=f"median of {reps}; fresh home each; CLI runs: "
            + ", ".join(f"{t:.1f}" for t in cli_times)
            + "; script: "
            + ", ".join(f"{t:.1f}" for t in script_times),
        ),
        compare(
            NAME,
            "memoized re-run: candidate step / training step",
            subject="memoized candidate step",
            subject_value=memoized,
            baseline="training candidate step",
            baseline_value=first,
            unit="s",
            target=MEMO_TARGET,
            note="Dagster step stats of the same home's first and second pipeline runs; "
            "limited by MLflow's fixed cost in the step's process (import ~1.2 s, SQLite store "
            "set-up ~1.1 s), paid by the memoized lookup as by training, against a training "
            "of the 1,797-row sample that itself takes ~2 s",
        ),
    ]
