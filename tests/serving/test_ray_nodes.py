"""The per-node replica ceiling on a real two-node Ray cluster on this machine: a head declaring
node ``a`` and a worker declaring node ``b`` (one CPU each, ``ray start`` processes started by
``RayHead``), the project's application with one model deployment per node. Replicas land on
both nodes; each node's probe reads its own node; a replayed hot trace on ``a`` lowers ``a``'s
replicas while ``b`` keeps its own, and the cool-down brings them back, with predictions
answered throughout. Both nodes are stopped at the end of the module."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
import httpx
import numpy as np
import pytest

from efficientai_assets.defs.serving.ray_backend import RayServeSettings, deploy_spec, with_ceilings
from efficientai_assets.defs.serving.ray_scaling import (
    NodeCeilingWatcher,
    observation_recorder,
    ray_applier,
    rule_for,
)
from efficientai_assets.gate.policy import GatePolicy
from efficientai_assets.names import DEPLOYMENT_ASSET, MODEL_NAME
from efficientai_assets.ray_service.app import deployment_name
from efficientai_assets.ray_service.spec import ApplicationSpec
from resources.bentoml.store import BentoMLResource
from resources.bentoml.types import BentoInfo, ModelProvenance
from resources.hardware.gate_settings import GateSettings
from resources.hardware.types import HardwareSnapshot
from resources.ray import serve as ray_serve
from resources.ray.cluster import RayHead, connect, declared_nodes, disconnect, free_port

pytestmark = pytest.mark.slow

APP = "nodes"
HTTP = httpx.Client(timeout=30)
BODY = ('{"instances": [[' + ",".join(["0.5"] * 64) + "]]}").encode()


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[RayHead, RayHead]]:
    head = RayHead.start(host="127.0.0.1", num_cpus=1, node_name="a")
    worker = None
    try:
        worker = RayHead.join(head.address, "b", num_cpus=1)
        yield head, worker
    finally:
        disconnect()
        if worker is not None:
            worker.stop()
        head.stop()


@pytest.fixture(scope="module")
def settings(cluster: tuple[RayHead, RayHead]) -> RayServeSettings:
    return RayServeSettings(
        address=cluster[0].address,
        http_port=free_port(),
        min_replicas=2,
        max_replicas=2,
        held_replicas=1,
        replica_cpus=0.25,
        downscale_delay_s=2.0,
    )


@pytest.fixture(scope="module")
def bento(tmp_path_factory: pytest.TempPathFactory) -> tuple[BentoMLResource, BentoInfo]:
    """A real bento (``bentoml build``) of an MLP trained here on digits (no serving token)."""
    from sklearn.datasets import load_digits

    from efficientai_assets.defs.serving.packaging import build_service_bento
    from efficientai_assets.models import mlp

    store = BentoMLResource(
        bentoml_home=str(tmp_path_factory.mktemp("ray-nodes") / "bentoml"),
        port=0,
        token_env="EFFICIENTAI_TEST_RAY_NODES_NO_TOKEN",
    )
    data = load_digits()
    x, y = data.data.astype(np.float32), data.target
    params = mlp.TrainingParams(
        epochs=2, batch_size=64, learning_rate=1e-3, hidden_units=(32,), seed=0
    )
    names = [f"pixel_{i}" for i in range(x.shape[1])]
    outcome, model = mlp.train(x[:1400], y[:1400], x[1400:], y[1400:], names, params)
    model_dir = tmp_path_factory.mktemp("model") / "model"
    mlp.save(model, outcome.config, model_dir)
    provenance = ModelProvenance(f"{APP}-{MODEL_NAME}", "1", "md5-of-digits", "sha-of-tree")
    return store, build_service_bento(store, model_dir, provenance)[1]


@pytest.fixture(scope="module")
def spec(
    bento: tuple[BentoMLResource, BentoInfo], settings: RayServeSettings
) -> Iterator[ApplicationSpec]:
    """The application on both declared nodes, two replicas each."""
    from efficientai_assets.defs.serving.ray_backend import served_version

    store, info = bento
    connect(settings.address, namespace=APP)
    assert sorted(declared_nodes()) == ["a", "b"]
    built = ApplicationSpec(
        namespace=APP,
        deployment_id=1,
        mode="single",
        champion=served_version(store, info.tag),
        scaling=settings.autoscaling(),
        replica_cpus=settings.replica_cpus,
        nodes=("a", "b"),
    )
    yield built
    ray_serve.delete_application(APP)


@pytest.fixture(scope="module")
def url(spec: ApplicationSpec, settings: RayServeSettings) -> str:
    served = deploy_spec(spec, settings)
    deadline = time.monotonic() + 120
    while HTTP.get(served + "/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the application did not get ready"
        time.sleep(0.5)
    for node in ("a", "b"):
        _wait_replicas(node, 2)
    return served


def _wait_replicas(node: str, count: int, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while ray_serve.running_replicas(APP, deployment_name("champion", node)) != count:
        assert time.monotonic() < deadline, f"node {node} did not reach {count} replicas"
        time.sleep(0.5)


def _predict(url: str) -> int:
    response = HTTP.post(
        url + "/predict", content=BODY, headers={"Content-Type": "application/json"}
    )
    return response.status_code


def test_replicas_land_on_both_nodes_and_requests_reach_both(url: str) -> None:
    def _gateway() -> dict[str, Any]:
        return dict(HTTP.get(url + "/deployment").json())

    from ray import serve

    ids = declared_nodes()
    for node in ("a", "b"):
        handle = serve.get_deployment_handle(deployment_name("champion", node), app_name=APP)
        seen = {handle.status.remote().result(timeout_s=30)["node_id"] for _ in range(6)}
        assert seen == {ids[node]}, f"node {node}'s replicas ran on {seen}"
    assert ids["a"] != ids["b"]
    # The gateway weighs a node by the replicas it last saw running there (read every 2 s): wait
    # until it has seen both nodes' replicas, then count only the requests sent from there.
    deadline = time.monotonic() + 30
    while min(_gateway()["weights"]["champion"].values()) < 2:
        assert time.monotonic() < deadline, _gateway()["weights"]
        time.sleep(0.5)
    before = _gateway()["routed_by_node"]
    assert all(_predict(url) == 200 for _ in range(40))
    after = _gateway()["routed_by_node"]
    routed = {node: after.get(node, 0) - before.get(node, 0) for node in ("a", "b")}
    # two replicas each: an even split (smooth round-robin), whatever a retry moved
    assert sum(routed.values()) >= 40 and min(routed.values()) >= 15, routed


def test_each_nodes_probe_reads_from_that_node(url: str) -> None:
    from efficientai_assets.ray_service.probe import NodeProbes

    probes = NodeProbes({"probe_accelerators": False})
    try:
        probes.sync(["a", "b"])
        readings = probes.read(timeout_s=60)
        ids = declared_nodes()
        import ray

        placed = {n: ray.get(p.node_id.remote(), timeout=30) for n, p in probes.probes.items()}
        assert placed == ids
        for node, snap in readings.items():
            assert snap.source not in ("unknown", "replay"), (node, snap.notes)
            assert snap.memory_pressure != "unknown" or snap.psi_memory is not None, snap
        probes.sync(["b"])  # a leaves: its probe is stopped
        assert set(probes.read(timeout_s=30)) == {"b"}
    finally:
        probes.stop()


def reading(at: float, thermal: str = "nominal", memory: str = "normal") -> HardwareSnapshot:
    return HardwareSnapshot.from_dict(
        {
            "taken_at": 1_000_000.0 + at,
            "source": "replay",
            "thermal_state": thermal,
            "thermal_source": "replay",
            "memory_pressure": memory,
        }
    )


POLICY = GatePolicy.from_settings(
    GateSettings(bad_readings_to_hold=2, cooldown_seconds=60, hold_thermal_state="serious")
)
HOT_A = [
    {"a": reading(0), "b": reading(0)},
    {"a": reading(10, "serious"), "b": reading(10)},
    {"a": reading(20, "serious"), "b": reading(20)},  # a held: a's ceiling 1, b keeps 2
    {"a": reading(30, memory="warning"), "b": reading(30)},
    {"a": reading(40), "b": reading(40)},
    {"a": reading(100), "b": reading(100)},  # 60 s good on a: released
]


def test_a_hot_trace_on_one_node_lowers_its_replicas_while_the_other_keeps_its_own(
    url: str,
    spec: ApplicationSpec,
    settings: RayServeSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                statuses.append(_predict(url))
            except httpx.HTTPError:
                statuses.append(-1)
            time.sleep(0.02)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    caplog.set_level(logging.WARNING, logger="efficientai.serving.ray")
    try:
        with dg.instance_for_test() as instance:
            watcher = NodeCeilingWatcher(
                POLICY,
                rule_for(settings),
                ray_applier(spec, settings),
                observation_recorder(instance, APP),
            )
            for readings in HOT_A[:3]:
                watcher.observe(readings)
            assert watcher.ceilings == {"a": 1, "b": 2}
            _wait_replicas("a", 1)
            time.sleep(3)  # longer than the downscale delay: b must not follow a down
            assert ray_serve.running_replicas(APP, deployment_name("champion", "b")) == 2
            deadline = time.monotonic() + 30
            while HTTP.get(url + "/deployment").json()["weights"]["champion"] != {"a": 1, "b": 2}:
                assert time.monotonic() < deadline, "the gateway did not reweigh the nodes"
                time.sleep(0.5)
            for readings in HOT_A[3:]:
                watcher.observe(readings)
            assert watcher.ceilings == {"a": 2, "b": 2}
            _wait_replicas("a", 2)
            assert ray_serve.running_replicas(APP, deployment_name("champion", "b")) == 2
            observations = instance.fetch_observations(dg.AssetKey(DEPLOYMENT_ASSET), limit=10)
            recorded = [
                (
                    e.asset_observation.metadata["ray.node"].value,
                    e.asset_observation.metadata["ray.replica_ceiling"].value,
                )
                for e in reversed(observations.records)
                if e.asset_observation is not None
            ]
            assert recorded == [("a", 1), ("a", 2)]
    finally:
        stop.set()
        loader.join(timeout=60)
    counts = {s: statuses.count(s) for s in set(statuses)}
    assert statuses and counts.get(200) == len(statuses), counts  # none lost throughout
    lines = [r.getMessage() for r in caplog.records if "replica ceiling on node" in r.getMessage()]
    assert len(lines) == 2
    assert "node a drops 2 -> 1" in lines[0] and "thermal=serious" in lines[0]
    assert "node a rises 1 -> 2" in lines[1] and "released" in lines[1]


def test_a_node_joining_the_application_gets_its_deployment_while_requests_are_answered(
    url: str, spec: ApplicationSpec, settings: RayServeSettings
) -> None:
    """Reshaping: the application drops node b's deployment, then takes it back (what the
    watcher applies when b leaves and rejoins); requests are answered on the way."""
    deploy_spec(with_ceilings(spec, {"a": 2}), settings)
    _wait_replicas("b", 0)
    assert deployment_name("champion", "b") not in ray_serve.deployment_names(APP)
    assert HTTP.get(url + "/deployment").json()["nodes"] == ["a"]
    assert all(_predict(url) == 200 for _ in range(10))
    deploy_spec(with_ceilings(spec, {"a": 2, "b": 1}), settings)
    _wait_replicas("b", 1)
    deadline = time.monotonic() + 30
    while HTTP.get(url + "/deployment").json()["nodes"] != ["a", "b"]:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert all(_predict(url) == 200 for _ in range(20))
