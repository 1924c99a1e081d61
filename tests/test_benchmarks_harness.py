"""The benchmark harness: ratios, targets, medians, tables, and a real quick run writing results."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from benchmarks.harness import (
    Row,
    Target,
    compare,
    markdown_table,
    median,
    not_measured,
    ratio,
    repeat,
    write_results,
)
from benchmarks.processes import InterleavedChildren, run_child
from benchmarks.run import main

REPO = Path(__file__).resolve().parent.parent


def test_median_of_odd_and_even_samples_and_refusal_of_none():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    with pytest.raises(ValueError, match="no samples"):
        median([])


def test_ratio_refuses_a_baseline_that_cannot_divide():
    assert ratio(3.0, 2.0) == 1.5
    with pytest.raises(ValueError, match="baseline must be positive"):
        ratio(1.0, 0.0)


def test_targets_bound_the_ratio_in_their_own_direction():
    at_least, at_most = Target(">=", 0.8), Target("<=", 1.5)
    assert at_least.met(0.8) and not at_least.met(0.79)
    assert at_most.met(1.5) and not at_most.met(1.51)
    assert str(at_least) == "≥ 0.8×" and str(at_most) == "≤ 1.5×"


def test_compare_computes_ratio_and_verdict_and_info_rows_have_none():
    slow = compare(
        "b",
        "case",
        subject="ours",
        subject_value=3.0,
        baseline="md5",
        baseline_value=1.0,
        unit="s",
        target=Target("<=", 1.5),
    )
    info = compare(
        "b", "case", subject="ours", subject_value=3.0, baseline="md5", baseline_value=1.0, unit="s"
    )

    assert (slow.ratio, slow.met, slow.status) == (3.0, False, "measured")
    assert (info.met, info.status, info.target) == (None, "info", "")


def test_repeat_times_only_the_repetitions_after_warmup():
    calls = []
    times = repeat(lambda: calls.append(1), reps=3, warmup=2)
    assert len(calls) == 5
    assert len(times) == 3 and all(t >= 0 for t in times)


def test_markdown_table_marks_unmet_pending_and_info_rows():
    rows = [
        compare(
            "drift",
            "1M rows",
            subject="ours",
            subject_value=4.0,
            baseline="scipy",
            baseline_value=1.0,
            unit="s",
            target=Target("<=", 2.0),
            peak_rss_mb=512.0,
        ),
        compare(
            "drift",
            "10k | rows",
            subject="ours",
            subject_value=0.5,
            baseline="scipy",
            baseline_value=1.0,
            unit="s",
        ),
        not_measured("serving", "p99", status="pending", note="waits for serving"),
    ]

    table = markdown_table(rows).splitlines()

    assert table[0].startswith("| Benchmark | Case | Measured | Baseline | Ratio | Target | Met |")
    assert "| 4.00× | ≤ 2× | **no** | 512 MiB |" in table[2]
    assert "10k \\| rows" in table[3] and "| info |" in table[3] and "500 ms" in table[3]
    assert "| pending |" in table[4] and "waits for serving" in table[4]


def test_results_merge_keeps_benchmarks_not_rerun(tmp_path):
    first = compare(
        "a",
        "x",
        subject="s",
        subject_value=1.0,
        baseline="b",
        baseline_value=2.0,
        unit="s",
        target=Target("<=", 1.0),
    )
    second = not_measured("b", "y", status="skipped", note="torch absent")
    write_results(tmp_path, "latest", {"a": {"title": "A", "rows": [first]}}, {"cpu": "x"})
    json_path, md_path = write_results(
        tmp_path, "latest", {"b": {"title": "B", "rows": [second]}}, {"cpu": "y"}
    )

    document = json.loads(json_path.read_text())
    assert list(document["benchmarks"]) == ["a", "b"]
    assert document["benchmarks"]["a"]["rows"][0]["ratio"] == 0.5
    assert Row(**document["benchmarks"]["b"]["rows"][0]).status == "skipped"
    assert "| a | x |" in md_path.read_text() and "| b | y |" in md_path.read_text()
    assert not list(tmp_path.glob("*.tmp"))


def test_child_reports_its_result_and_peak_memory():
    result = run_child("benchmarks.harness:ratio", {"subject": 3.0, "baseline": 2.0})
    assert result.data == 1.5
    assert result.peak_rss_mb > 1


def test_child_failure_names_the_error():
    from benchmarks.harness import BenchmarkError

    with pytest.raises(BenchmarkError, match="baseline must be positive"):
        run_child("benchmarks.harness:ratio", {"subject": 1.0, "baseline": 0.0})


def test_interleaved_children_take_turns_and_report_each_step():
    echo: tuple[str, dict[str, Any], dict[str, str]] = (
        "benchmarks._selftest:echo_child",
        {"values": [1.0, 2.0]},
        {},
    )
    children = InterleavedChildren({"a": echo, "b": echo}, pause=0.0)
    try:
        rounds = [children.round(), children.round()]
        finished = children.finish()
    finally:
        children.close()
    assert rounds == [{"a": 1.0, "b": 1.0}, {"a": 2.0, "b": 2.0}]
    assert finished["a"].data == {"steps": 2}


def _sorting_benchmark() -> types.ModuleType:
    """A real, cheap benchmark: sorting sorted input vs shuffled input."""
    module = types.ModuleType("bench_sorting")
    module.TITLE = "Sorting sorted vs shuffled input"  # type: ignore[attr-defined]

    def run(ctx: Any) -> list[Row]:
        size = 10_000 if ctx.quick else 1_000_000
        ordered, shuffled = list(range(size)), random.Random(0).sample(range(size), size)
        ours = median(repeat(lambda: sorted(ordered), reps=3))
        base = median(repeat(lambda: sorted(shuffled), reps=3))
        return [
            compare(
                "sorting",
                f"{size:,} ints",
                subject="sorted input",
                subject_value=ours,
                baseline="shuffled",
                baseline_value=base,
                unit="s",
                target=Target("<=", 1.0),
            )
        ]

    module.run = run  # type: ignore[attr-defined]
    return module


def test_quick_run_of_one_benchmark_writes_json_and_markdown(tmp_path, capsys):
    benchmarks = {"sorting": _sorting_benchmark(), "never": _sorting_benchmark()}

    code = main(["--quick", "--only", "sorting", "--out", str(tmp_path)], benchmarks=benchmarks)

    assert code == 0
    document = json.loads((tmp_path / "quick.json").read_text())
    assert list(document["benchmarks"]) == ["sorting"]
    section = document["benchmarks"]["sorting"]
    assert section["mode"] == "quick" and section["seconds"] >= 0
    [row] = section["rows"]
    assert row["case"] == "10,000 ints" and row["ratio"] > 0 and row["met"] is True
    assert document["machine"]["cores"] >= 1
    markdown = (tmp_path / "quick.md").read_text()
    assert "| sorting | 10,000 ints | sorted input: " in markdown and "| ≤ 1× | yes |" in markdown
    assert "| sorting | 10,000 ints |" in capsys.readouterr().out


def test_a_failing_benchmark_is_recorded_and_fails_the_run(tmp_path):
    broken = types.ModuleType("bench_broken")
    broken.TITLE = "Broken"  # type: ignore[attr-defined]

    def run(ctx: Any) -> list[Row]:
        raise RuntimeError("store unreachable")

    broken.run = run  # type: ignore[attr-defined]

    code = main(["--quick", "--out", str(tmp_path)], benchmarks={"broken": broken})

    assert code == 1
    [row] = json.loads((tmp_path / "quick.json").read_text())["benchmarks"]["broken"]["rows"]
    assert row["status"] == "error" and "store unreachable" in row["note"]


def test_the_command_line_lists_the_benchmarks():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--list"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    names = {line.split()[0] for line in done.stdout.splitlines()}
    assert {"code_location", "drift", "dvc_versioning", "metric_logging", "mlx_training"} <= names


def test_unknown_benchmark_name_is_refused_with_the_available_ones(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "nope", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown benchmark(s) ['nope']" in done.stderr and "drift" in done.stderr
    assert not (tmp_path / "latest.json").exists()
