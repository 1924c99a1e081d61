"""Serving on Ray Serve vs the bento, same model, same run; and Ray Serve from 1 to 2 replicas.

The MLP of ``bench_serving`` (64 → 256 → 128 → 10 on digits) is trained and built into a real
bento here. The bento is served by ``bentoml serve`` (one worker, adaptive batching on: the
product's default). A local Ray head (127.0.0.1, 2 CPUs) runs the project's Ray Serve application
twice, under two route prefixes of one Serve proxy: ``one`` with exactly one model replica and
``two`` with exactly two (autoscaling pinned: min = max), each replica loading the bento's own
weights and ``serving.json`` as ``make serve-ray`` does. A request to Ray crosses the Serve proxy,
the gateway (edge guard, strict schema) and a model replica (``serve.batch``): three processes
where the bento has one.

A closed-loop load generator (``benchmarks.load.drive``: ``C`` clients sending one-row requests
back to back) drives one server at a time; rounds interleave the servers so drift in machine load
hits all alike; medians over rounds are reported. With two or more cores every server process
(bento worker; Ray's head, proxy, gateway and replicas) is pinned to core 0 and the client to
core 1; the replica-scaling case is measured unpinned as well, since two replicas on one core can
only share it. Ray's server CPU per request covers every process of the head (GCS, raylet,
controller, proxy, both applications), idle work included: an upper bound. Rows are
informational (no target in the issue): Ray vs bento throughput and p50/p99 at concurrency 8 and
32, and throughput with two replicas vs one.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from benchmarks.harness import compare, median
from benchmarks.load import SERVER_CPUS, can_pin, drive, pin, process_tree

if TYPE_CHECKING:
    from benchmarks.harness import Row
    from benchmarks.run import Context
    from resources.bentoml.store import BentoMLResource
    from resources.ray.cluster import RayHead

TITLE = "Ray Serve vs the bento (same model), and Ray Serve from 1 to 2 replicas"
NAME = "ray_serve"
RAY_CPUS = 2
KEYS = ("throughput", "p50_ms", "p99_ms", "errors", "server_cpu_us")


def _deploy(
    store: BentoMLResource, tag: str, head: RayHead, http_port: int, replicas: int, name: str
) -> str:
    """The project's application serving ``tag`` with exactly ``replicas`` model replicas."""
    from efficientai_assets.defs.serving.ray_backend import (
        RayServeSettings,
        deploy_spec,
        served_version,
    )
    from efficientai_assets.ray_service.spec import ApplicationSpec

    settings = RayServeSettings(
        address=head.address,
        http_port=http_port,
        min_replicas=replicas,
        max_replicas=replicas,
        replica_cpus=0.25,
    )
    spec = ApplicationSpec(
        namespace=name,
        deployment_id=1,
        mode="single",
        champion=served_version(store, tag),
        scaling=settings.autoscaling(),
        replica_cpus=settings.replica_cpus,
    )
    return deploy_spec(spec, settings)


def _wait_ready(url: str, timeout_s: float = 120.0) -> None:
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout_s:.0f}s")


def _sample(
    ctx: Context,
    plan: list[tuple[str, int]],
    urls: dict[str, str],
    groups: dict[str, list[int]],
    body: bytes,
    seconds: float,
    rounds: int,
    label: str,
) -> dict[tuple[str, int], list[dict[str, Any]]]:
    samples: dict[tuple[str, int], list[dict[str, Any]]] = {case: [] for case in plan}
    for index in range(rounds):
        for name, concurrency in plan:
            ctx.log(f"{label} round {index + 1}/{rounds}: {name} at concurrency {concurrency}")
            samples[(name, concurrency)].append(
                drive(urls[name] + "/predict", body, concurrency, seconds, groups[name])
            )
    return samples


def _summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {key: median([float(r[key]) for r in runs]) for key in KEYS}


def _note(name: str, s: dict[str, float]) -> str:
    return (
        f"{name}: {s['throughput']:.0f} req/s, p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, "
        f"server CPU {s['server_cpu_us']:.0f} µs/request"
    )


def run(ctx: Context) -> list[Row]:
    from benchmarks.bench_serving import _train_and_build
    from resources.ray import serve as ray_serve
    from resources.ray.cluster import RayHead, disconnect, free_port

    seconds = 3.0 if ctx.quick else 8.0
    rounds = 1 if ctx.quick else 3
    load_before = os.getloadavg()[0]
    ctx.log("training the model and building its bento")
    _, tag, row, store = _train_and_build(ctx)
    body = json.dumps({"instances": [row]}).encode()

    bento = store.serve(tag)
    head = RayHead.start(host="127.0.0.1", num_cpus=RAY_CPUS)
    try:
        bento.wait_until_ready()
        port = free_port()
        ctx.log("deploying the Ray Serve application with one replica and with two")
        urls = {
            "bento": bento.url,
            "ray": _deploy(store, tag, head, port, 1, "one"),
            "ray-2": _deploy(store, tag, head, port, 2, "two"),
        }
        for url in urls.values():
            _wait_ready(url)
        ray_pids = process_tree(head.pid)  # head, GCS, raylet, proxy, gateways, replicas
        groups = {"bento": process_tree(bento.process.pid), "ray": ray_pids, "ray-2": ray_pids}
        pinned = can_pin()
        if pinned:
            for pids in groups.values():
                pin(pids, SERVER_CPUS)
        plan = [("bento", 8), ("ray", 8), ("bento", 32), ("ray", 32), ("ray-2", 32)]
        samples = _sample(ctx, plan, urls, groups, body, seconds, rounds, "pinned")
        unpinned: dict[tuple[str, int], list[dict[str, Any]]] = {}
        if pinned:
            all_cpus = os.sched_getaffinity(0)
            for pids in groups.values():
                pin(pids, all_cpus)
            unpinned = _sample(
                ctx, [("ray", 32), ("ray-2", 32)], urls, groups, body, seconds, rounds, "unpinned"
            )
        replicas_two = ray_serve.running_replicas("two", "model-champion")
    finally:
        try:
            disconnect()
        finally:
            head.stop()
            bento.stop()

    s = {case: _summary(runs) for case, runs in samples.items()}
    rows: list[Row] = []
    for concurrency in (8, 32):
        ray, ben = s[("ray", concurrency)], s[("bento", concurrency)]
        both = f"{_note('ray', ray)}; {_note('bento', ben)}"
        for key, unit, what in (
            ("throughput", "req/s", "throughput"),
            ("p50_ms", "ms", "p50 latency"),
            ("p99_ms", "ms", "p99 latency"),
        ):
            rows.append(
                compare(
                    NAME,
                    f"{what}, concurrency {concurrency}",
                    subject="Ray Serve, 1 replica",
                    subject_value=ray[key],
                    baseline="bento, 1 worker",
                    baseline_value=ben[key],
                    unit=unit,
                    note=both,
                    extra={
                        "samples": samples[("ray", concurrency)] + samples[("bento", concurrency)]
                    },
                )
            )
    one, two = s[("ray", 32)], s[("ray-2", 32)]
    rows.append(
        compare(
            NAME,
            "replicas 1 → 2, concurrency 32, servers on one core",
            subject="Ray Serve, 2 replicas",
            subject_value=two["throughput"],
            baseline="Ray Serve, 1 replica",
            baseline_value=one["throughput"],
            unit="req/s",
            note=f"{_note('2 replicas', two)}; {_note('1 replica', one)}; "
            f"{replicas_two} replicas running in the 2-replica application",
            extra={"samples": samples[("ray-2", 32)]},
        )
    )
    if unpinned:
        u1, u2 = _summary(unpinned[("ray", 32)]), _summary(unpinned[("ray-2", 32)])
        rows.append(
            compare(
                NAME,
                "replicas 1 → 2, concurrency 32, unpinned (client shares both cores)",
                subject="Ray Serve, 2 replicas",
                subject_value=u2["throughput"],
                baseline="Ray Serve, 1 replica",
                baseline_value=u1["throughput"],
                unit="req/s",
                note=f"{_note('2 replicas', u2)}; {_note('1 replica', u1)}",
                extra={"samples": unpinned[("ray-2", 32)] + unpinned[("ray", 32)]},
            )
        )
    errors = sum(v["errors"] for v in s.values())
    placement = "servers pinned to core 0, client to core 1" if pinned else "no pinning (one core)"
    load = f"load avg {load_before:.1f}-{os.getloadavg()[0]:.1f} over the run"
    for row_ in rows:
        row_.extra["method"] = f"{placement}; medians of {rounds} round(s) of {seconds:.0f} s"
        row_.extra["machine_load"] = load
        if errors:
            row_.note += f"; {errors:.0f} non-200 answers (median per run) excluded"
    rows[0].note += f"; {load}"
    return rows
