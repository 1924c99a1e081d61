"""Serving throughput and latency: the bento (``bentoml serve``) vs a bare uvicorn + starlette app.

One MLX MLP (the training defaults: 64 → 256 → 128 → 10, on scikit-learn's digits) is trained
here, imported and built into a real bento, then served three ways at once, each a single worker
process on 127.0.0.1:

- ``bento``: the product — strict schema, edge guard, adaptive batching on;
- ``bento-unbatched``: the same bento with ``EFFICIENTAI_SERVE_ADAPTIVE_BATCHING=false``;
- ``starlette``: the baseline — uvicorn + one starlette endpoint running the same model on the
  parsed JSON, no validation, same response shape.

A closed-loop load generator (aiohttp, ``C`` workers each sending one-row requests back to back)
drives one server at a time; rounds interleave the servers so drift in machine load hits all of
them alike; medians over rounds are reported. Targets (issue 4): the bento reaches ≥ 0.9× the
baseline's throughput at concurrency 8, and with adaptive batching ≥ 2× the unbatched bento's
throughput at concurrency 32.

``python -m benchmarks.bench_serving starlette MODEL_DIR PORT`` runs the baseline server alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness import REPO_ROOT, Target, compare, median

if TYPE_CHECKING:
    from benchmarks.harness import Row
    from benchmarks.run import Context

TITLE = "Serving: bento vs bare uvicorn + starlette, adaptive batching"
NAME = "serving"
PARITY_TARGET = Target(">=", 0.9)
BATCHING_TARGET = Target(">=", 2.0)


# -- the baseline server ---------------------------------------------------------------------------


def starlette_app(model_dir: str) -> Any:
    """The same model behind one bare endpoint: parse JSON, predict, answer (no validation)."""
    import numpy as np
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from efficientai_assets.mlp import MLXClassifier

    classifier = MLXClassifier.load_dir(model_dir)
    classes = [str(c) for c in classifier.config.classes]

    async def predict(request: Request) -> JSONResponse:
        rows = (await request.json())["instances"]
        proba = classifier.predict_proba(np.asarray(rows, dtype=np.float32))
        labels = np.asarray(classifier.config.classes)[proba.argmax(axis=1)]
        return JSONResponse(
            [
                {
                    "label": int(label),
                    "probabilities": dict(zip(classes, row.tolist(), strict=True)),
                }
                for label, row in zip(labels, proba, strict=True)
            ]
        )

    async def readyz(_: Request) -> JSONResponse:
        return JSONResponse({"ready": True})

    return Starlette(
        routes=[Route("/predict", predict, methods=["POST"]), Route("/readyz", readyz)]
    )


def serve_starlette(model_dir: str, port: int) -> None:
    import uvicorn

    uvicorn.run(starlette_app(model_dir), host="127.0.0.1", port=port, log_level="warning")


# -- load --------------------------------------------------------------------------------------------


async def _closed_loop(url: str, body: bytes, concurrency: int, seconds: float) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    deadline = 0.0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
                    continue
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + min(1.0, seconds / 3)  # warm-up, not counted
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        latencies.clear()
        errors = 0
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    if not ordered:
        raise RuntimeError(f"no successful request to {url} ({errors} errors)")
    return {
        "throughput": len(ordered) / elapsed,
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "requests": len(ordered),
        "errors": errors,
    }


def drive(url: str, body: bytes, concurrency: int, seconds: float) -> dict[str, Any]:
    return asyncio.run(_closed_loop(url, body, concurrency, seconds))


# -- setup -------------------------------------------------------------------------------------------


def _train_and_build(ctx: Context) -> tuple[Path, str, list[float], Any]:
    """Train the default-sized MLP on digits, save it, import it and build its bento."""
    import numpy as np
    from sklearn.datasets import load_digits

    from efficientai_assets import mlp
    from resources.bentoml_store import BentoMLResource, ModelProvenance

    digits = load_digits()
    x, y = digits.data.astype(np.float32), digits.target
    names = [f"pixel_{i}" for i in range(x.shape[1])]
    params = mlp.TrainingParams(
        epochs=3, batch_size=64, learning_rate=1e-3, hidden_units=(256, 128), seed=0
    )
    outcome, model = mlp.train(x, y, x[:200], y[:200], names, params)
    model_dir = ctx.scratch / "model"
    mlp.save(model, outcome.config, model_dir)
    store = BentoMLResource(bentoml_home=str(ctx.scratch / "bentoml"), port=0)
    provenance = ModelProvenance("bench-digits-classifier", "1", "benchmark", "benchmark")
    bento = store.build_bento(store.import_model(model_dir, provenance), provenance)
    return model_dir, bento.tag, [float(v) for v in x[0]], store


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def run(ctx: Context) -> list[Row]:
    from resources.bentoml_store import free_port

    seconds = 3.0 if ctx.quick else 10.0
    rounds = 1 if ctx.quick else 3
    ctx.log("training the model and building its bento")
    model_dir, tag, row, store = _train_and_build(ctx)
    body = json.dumps({"instances": [row]}).encode()

    servers: dict[str, Any] = {}
    baseline_port = free_port()
    baseline = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_serving",
            "starlette",
            str(model_dir),
            str(baseline_port),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        servers["bento"] = store.serve(tag)
        servers["bento-unbatched"] = store.serve(
            tag, env={"EFFICIENTAI_SERVE_ADAPTIVE_BATCHING": "false"}
        )
        for server in servers.values():
            server.wait_until_ready()
        baseline_url = f"http://127.0.0.1:{baseline_port}"
        _wait_ready(baseline_url, baseline)
        urls = {"starlette": baseline_url, **{name: s.url for name, s in servers.items()}}
        plan = [
            ("starlette", 8),
            ("bento", 8),
            ("starlette", 32),
            ("bento", 32),
            ("bento-unbatched", 32),
        ]
        samples: dict[tuple[str, int], list[dict[str, Any]]] = {case: [] for case in plan}
        for round_index in range(rounds):
            for name, concurrency in plan:
                ctx.log(f"round {round_index + 1}/{rounds}: {name} at concurrency {concurrency}")
                samples[(name, concurrency)].append(
                    drive(urls[name] + "/predict", body, concurrency, seconds)
                )
    finally:
        for server in servers.values():
            server.stop()
        if baseline.poll() is None:
            os.killpg(baseline.pid, 15)
            baseline.wait(timeout=20)

    def summary(name: str, concurrency: int) -> dict[str, float]:
        runs = samples[(name, concurrency)]
        return {
            key: median([r[key] for r in runs])
            for key in ("throughput", "p50_ms", "p99_ms", "errors")
        }

    def latency_note(name: str, concurrency: int) -> str:
        s = summary(name, concurrency)
        return f"{name}: p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms"

    rows = [
        compare(
            NAME,
            "throughput, concurrency 8",
            subject="bento",
            subject_value=summary("bento", 8)["throughput"],
            baseline="uvicorn+starlette",
            baseline_value=summary("starlette", 8)["throughput"],
            unit="req/s",
            target=PARITY_TARGET,
            note=f"{latency_note('bento', 8)}; {latency_note('starlette', 8)}",
            extra={"samples": samples[("bento", 8)] + samples[("starlette", 8)]},
        ),
        compare(
            NAME,
            "throughput, concurrency 32",
            subject="bento",
            subject_value=summary("bento", 32)["throughput"],
            baseline="uvicorn+starlette",
            baseline_value=summary("starlette", 32)["throughput"],
            unit="req/s",
            note=f"{latency_note('bento', 32)}; {latency_note('starlette', 32)}",
        ),
        compare(
            NAME,
            "adaptive batching, concurrency 32",
            subject="bento, batching on",
            subject_value=summary("bento", 32)["throughput"],
            baseline="bento, batching off",
            baseline_value=summary("bento-unbatched", 32)["throughput"],
            unit="req/s",
            target=BATCHING_TARGET,
            note=f"{latency_note('bento', 32)}; {latency_note('bento-unbatched', 32)}",
            extra={"samples": samples[("bento-unbatched", 32)]},
        ),
    ]
    errors = sum(summary(name, c)["errors"] for name, c in plan)
    if errors:
        for row_ in rows:
            row_.note += f"; {errors:.0f} non-200 answers (median per run) excluded"
    ctx.log(f"p50/p99: medians over {rounds} round(s) of {seconds:.0f} s")
    return rows


def main(argv: list[str]) -> None:
    if len(argv) != 4 or argv[1] != "starlette":
        raise SystemExit("usage: python -m benchmarks.bench_serving starlette MODEL_DIR PORT")
    serve_starlette(argv[2], int(argv[3]))


if __name__ == "__main__":
    main(sys.argv)
