"""Ratio benchmarks: every performance target measured against a baseline in the same run.

Run ``python -m benchmarks`` (``--quick`` for small sizes, ``--only NAME`` for some). Each
``benchmarks/bench_<name>.py`` module is one benchmark: a ``TITLE`` and a ``run(ctx)`` returning
rows (see :mod:`benchmarks.harness`). Results go to ``benchmarks/results/``.
"""
