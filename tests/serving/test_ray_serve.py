"""The Ray Serve backend on a real local Ray head (127.0.0.1, 2 CPUs, fractional replica CPUs,
one declared node: per-node behaviour on two nodes is in test_ray_nodes.py),
next to the real bento served by ``bentoml serve``: the same answers, the same refusals, canary
routing, a killed replica, and the hardware gate's replica ceiling on replayed traces. The head
is stopped at the end of the module."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import numpy as np
import pytest
from conftest import PipelineHome, trained_home, training_run_config

from efficientai_assets.defs.serving.assets import deployment, model_bento
from efficientai_assets.defs.serving.ray_backend import (
    ENV_PREFIX,
    RayBackendError,
    RayServeSettings,
    application_spec,
    check_cluster,
    deploy_record,
    deploy_spec,
)
from efficientai_assets.defs.serving.ray_scaling import (
    NodeCeilingWatcher,
    observation_recorder,
    ray_applier,
    rule_for,
)
from efficientai_assets.defs.training.assets import candidate_model
from efficientai_assets.gate.policy import GatePolicy
from efficientai_assets.gate.replicas import CeilingRule, replay_ceilings
from efficientai_assets.names import DEPLOYMENT_ASSET, MODEL_NAME
from efficientai_assets.ray_service.app import deployment_name
from efficientai_assets.ray_service.spec import ServedVersion
from resources.bentoml.servers import BentoServer
from resources.bentoml.store import BentoMLResource
from resources.bentoml.types import BentoInfo, DeploymentRecord, ModelProvenance, ServedModel
from resources.hardware.gate_settings import GateSettings
from resources.hardware.types import HardwareSnapshot
from resources.ray import serve as ray_serve
from resources.ray.cluster import RayHead, disconnect, free_port

pytestmark = pytest.mark.slow

TOKEN_ENV = "EFFICIENTAI_TEST_SERVE_TOKEN"
TOKEN = "test-token-ray-51c2"
MAX_ROWS = 64
NAMESPACE = "test"
HEAD = "head"  # the node the module's head declares (RayHead's default name)


@pytest.fixture(scope="module")
def bento_store(tmp_path_factory: pytest.TempPathFactory) -> BentoMLResource:
    return BentoMLResource(
        bentoml_home=str(tmp_path_factory.mktemp("ray-serve") / "bentoml"),
        port=0,
        max_rows=MAX_ROWS,
        token_env=TOKEN_ENV,
    )


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data.astype(np.float32), data.target


@pytest.fixture(scope="module")
def bento(
    bento_store: BentoMLResource,
    digits: tuple[np.ndarray, np.ndarray],
    tmp_path_factory: pytest.TempPathFactory,
) -> BentoInfo:
    """A real bento (``bentoml build``) of an MLP trained here on digits."""
    from efficientai_assets.defs.serving.packaging import build_service_bento
    from efficientai_assets.models import mlp

    x, y = digits
    params = mlp.TrainingParams(
        epochs=3, batch_size=64, learning_rate=1e-3, hidden_units=(64,), seed=0
    )
    names = [f"pixel_{i}" for i in range(x.shape[1])]
    outcome, model = mlp.train(x[:1400], y[:1400], x[1400:], y[1400:], names, params)
    model_dir = tmp_path_factory.mktemp("model") / "model"
    mlp.save(model, outcome.config, model_dir)
    provenance = ModelProvenance(f"{NAMESPACE}-{MODEL_NAME}", "1", "md5-of-digits", "sha-of-tree")
    return build_service_bento(bento_store, model_dir, provenance)[1]


@pytest.fixture(scope="module")
def bento_server(bento_store: BentoMLResource, bento: BentoInfo) -> Iterator[BentoServer]:
    with bento_store.serve(bento.tag, env={TOKEN_ENV: TOKEN}) as running:
        running.wait_until_ready()
        yield running


@pytest.fixture(scope="module")
def head() -> Iterator[RayHead]:
    """A head whose processes (and so every replica) see the serving token, as a node started
    by ``make ray-up`` in an environment that holds it; it declares node ``head``."""
    previous = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = TOKEN
    started = RayHead.start(host="127.0.0.1", num_cpus=2)
    try:
        yield started
    finally:
        disconnect()
        started.stop()
        if previous is None:
            os.environ.pop(TOKEN_ENV, None)
        else:
            os.environ[TOKEN_ENV] = previous


@pytest.fixture(scope="module")
def settings(head: RayHead) -> RayServeSettings:
    return RayServeSettings(
        address=head.address,
        http_port=free_port(),
        min_replicas=1,
        max_replicas=2,
        replica_cpus=0.25,
        downscale_delay_s=2.0,
    )


@pytest.fixture(scope="module")
def ray_url(bento_store: BentoMLResource, bento: BentoInfo, settings: RayServeSettings) -> str:
    """The champion alone on the cluster, under the namespace's prefix."""
    url = deploy_record(bento_store, _record(bento, 1), NAMESPACE, settings)
    wait_ready(url)
    return url


HTTP = httpx.Client(timeout=30)


def wait_ready(url: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while HTTP.get(url + "/readyz").status_code != 200:
        assert time.monotonic() < deadline, f"{url} not ready within {timeout_s}s"
        time.sleep(0.5)


def post(url: str, body: bytes, **headers: str) -> httpx.Response:
    return HTTP.post(
        url + "/predict",
        content=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {TOKEN}",
            **headers,
        },
    )


def rows(n: int, width: int = 64, value: str = "0.5") -> list[str]:
    return ["[" + ",".join([value] * width) + "]" for _ in range(n)]


def instances_body(row_texts: list[str], extra: str = "") -> bytes:
    return ('{"instances": [' + ",".join(row_texts) + "]" + extra + "}").encode()


# -- deploy through the asset, same answers as the bento -----------------------------------


def test_metadata_and_headers_name_the_bentos_model_version(ray_url: str, bento: BentoInfo) -> None:
    served = HTTP.get(ray_url + "/metadata", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    for key in ("model_name", "model_version", "data_md5", "git_sha"):
        assert served[key] == bento.labels[key]
    assert served["ready"] is True and served["backend"] == "ray"
    assert served["max_rows"] == MAX_ROWS and served["n_features"] == 64
    response = post(ray_url, instances_body(rows(1)))
    assert response.headers["x-efficientai-model-version"] == bento.labels["model_version"]
    assert response.headers["x-efficientai-data-md5"] == bento.labels["data_md5"]


def test_ray_predictions_equal_the_bentos_on_the_same_rows(
    ray_url: str, bento_server: BentoServer, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    features = digits[0][1400:1450].astype(np.float64)
    body = json.dumps({"instances": features.tolist()}).encode()
    from_ray, from_bento = post(ray_url, body), post(bento_server.url, body)
    assert from_ray.status_code == from_bento.status_code == 200
    ray_rows, bento_rows = from_ray.json(), from_bento.json()
    assert [r["label"] for r in ray_rows] == [r["label"] for r in bento_rows]
    for ours, theirs in zip(ray_rows, bento_rows, strict=True):
        assert ours["probabilities"].keys() == theirs["probabilities"].keys()
        for key, value in ours["probabilities"].items():
            assert value == pytest.approx(theirs["probabilities"][key], abs=1e-6)


HOSTILE: dict[str, tuple[bytes, dict[str, str]]] = {
    "nan": (instances_body([rows(1, 63)[0][:-1] + ",NaN]"]), {}),
    "infinity": (instances_body([rows(1, 63)[0][:-1] + ",Infinity]"]), {}),
    "overflow_1e400": (instances_body([rows(1, 63)[0][:-1] + ",1e400]"]), {}),
    "string_number": (instances_body([rows(1, 63)[0][:-1] + ',"1.5"]']), {}),
    "boolean": (instances_body([rows(1, 63)[0][:-1] + ",true]"]), {}),
    "null": (instances_body([rows(1, 63)[0][:-1] + ",null]"]), {}),
    "too_few_features": (instances_body(rows(1, 63)), {}),
    "too_many_features": (instances_body(rows(1, 65)), {}),
    "extra_field": (instances_body(rows(1), ', "debug": true'), {}),
    "no_rows": (b'{"instances": []}', {}),
    "too_many_rows": (instances_body(rows(MAX_ROWS + 1)), {}),
    "missing_field": (b"{}", {}),
    "not_json": (b"instances=1", {}),
    "top_level_array": (b"[[0.5]]", {}),
    "oversize": (instances_body(rows(4000)), {}),
    "pickle_media_type": (
        instances_body(rows(1)),
        {"Content-Type": "application/vnd.bentoml+pickle"},
    ),
    "text_media_type": (instances_body(rows(1)), {"Content-Type": "text/plain"}),
    "wrong_token": (instances_body(rows(1)), {"Authorization": "Bearer nope"}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_inputs_get_the_bentos_4xx_and_the_app_keeps_serving(
    ray_url: str, bento_server: BentoServer, case: str
) -> None:
    body, headers = HOSTILE[case]
    from_ray, from_bento = post(ray_url, body, **headers), post(bento_server.url, body, **headers)
    assert 400 <= from_ray.status_code < 500, from_ray.text
    assert from_ray.status_code == from_bento.status_code
    assert from_ray.json() == from_bento.json()
    assert post(ray_url, instances_body(rows(2))).status_code == 200


def test_probes_stay_open_and_everything_else_needs_the_token(ray_url: str) -> None:
    for probe in ("/readyz", "/livez", "/healthz"):
        assert httpx.get(ray_url + probe).status_code == 200, probe
    assert httpx.get(ray_url + "/metadata").status_code == 401


# -- failures ---------------------------------------------------------------------------------


def _record(bento: BentoInfo, deployment_id: int, **changes: Any) -> DeploymentRecord:
    served = ServedModel(bento.labels["model_version"], bento.tag)
    base = DeploymentRecord(
        deployment_id=deployment_id,
        model_name=f"{NAMESPACE}-{MODEL_NAME}",
        action="deploy",
        mode="single",
        champion=served,
        canary=None,
        canary_share=0.0,
        requested_by="test",
        reason="test",
        created_at="2026-11-30T00:00:00+00:00",
        backend="ray",
    )
    return replace(base, **changes)


def test_corrupt_weights_leave_the_application_up_but_not_ready(
    bento_store: BentoMLResource, bento: BentoInfo, settings: RayServeSettings, ray_url: str
) -> None:
    spec = application_spec(bento_store, _record(bento, 900), "broken", settings)
    corrupt = {name: b"\x00not-a-safetensors-file" * 10 for name in spec.champion.files}
    spec = replace(spec, champion=ServedVersion(settings=spec.champion.settings, files=corrupt))
    url = deploy_spec(spec, settings)  # a second namespace on the same cluster
    try:
        assert httpx.get(url + "/livez").status_code == 200
        deadline = time.monotonic() + 30
        while "failed to load" not in str(httpx.get(url + "/readyz").json().get("reason")):
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert httpx.get(url + "/readyz").status_code == 503
        response = post(url, instances_body(rows(1)))
        assert response.status_code == 503 and "failed to load" in response.json()["error"]
        metadata = HTTP.get(url + "/metadata", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert metadata["ready"] is False
        assert post(ray_url, instances_body(rows(1))).status_code == 200  # the other namespace
    finally:
        ray_serve.delete_application("broken")


# -- canary, a killed replica --------------------------------------------------------------


def test_the_canary_takes_its_share_of_requests(
    bento_store: BentoMLResource, bento: BentoInfo, settings: RayServeSettings
) -> None:
    served = ServedModel(bento.labels["model_version"], bento.tag)
    record = _record(bento, 901, mode="canary", canary=served, canary_share=0.2)
    spec = application_spec(bento_store, record, "canary", settings)
    url = deploy_spec(spec, settings)
    try:
        wait_ready(url)
        routes = [
            post(url, instances_body(rows(1))).headers["x-efficientai-route"] for _ in range(300)
        ]
        # Without a routing key the split is a smooth counter: floor(300 * 0.2) exactly, within
        # one request (the tolerance stated for one gateway replica).
        assert abs(routes.count("canary") - 60) <= 1
        keyed = [
            post(url, instances_body(rows(1)), **{"X-Routing-Key": f"user-{i}"}).headers[
                "x-efficientai-route"
            ]
            for i in range(300)
        ]
        # Keyed by user: a hash, so the share holds within 0.06 over 300 users (3.3 sigma).
        assert abs(keyed.count("canary") / 300 - 0.2) <= 0.06
        again = post(url, instances_body(rows(1)), **{"X-Routing-Key": "user-7"})
        assert again.headers["x-efficientai-route"] == keyed[7]
    finally:
        ray_serve.delete_application("canary")


def _load(url: str, requests: int, concurrency: int, during: Callable[[int], None]) -> list[int]:
    body = instances_body(rows(1))

    def one(i: int) -> int:
        during(i)
        try:
            return post(url, body).status_code
        except httpx.HTTPError:
            return -1

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(requests)))


def test_a_replica_killed_mid_load_is_replaced_and_loses_no_request(
    bento_store: BentoMLResource, bento: BentoInfo, settings: RayServeSettings
) -> None:
    two = replace(settings, min_replicas=2, max_replicas=2)
    spec = application_spec(bento_store, _record(bento, 902), "killed", two)
    url = deploy_spec(spec, two)
    model = deployment_name("champion", HEAD)
    try:
        wait_ready(url)
        victims = ray_serve.replica_actor_names("killed", model)
        assert len(victims) == 2

        def kill_once(i: int) -> None:
            if i == 100:
                ray_serve.kill_replica(victims[0])

        statuses = _load(url, 400, 8, kill_once)
        # Bound: none lost. The gateway retries a call whose replica died on the other one.
        assert statuses.count(200) == 400, {s: statuses.count(s) for s in set(statuses)}
        deadline = time.monotonic() + 90
        while ray_serve.running_replicas("killed", model) < 2:
            assert time.monotonic() < deadline, "the killed replica did not come back"
            time.sleep(1)
        assert victims[0] not in ray_serve.replica_actor_names("killed", model)
    finally:
        ray_serve.delete_application("killed")


# -- the hardware gate's replica ceiling -----------------------------------------------------


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
HOT_TRACE = [
    reading(0),
    reading(10, "serious"),  # one bad reading: suspect, ceiling kept
    reading(20, "serious"),  # second in a row: hold, ceiling drops
    reading(30, memory="warning"),  # memory pressure: still held, cool-down restarts
    reading(40),  # good: cooling down
    reading(90),  # 50 s of good readings: still cooling
    reading(100),  # 60 s: released, ceiling back
]


def test_the_ceiling_follows_the_gate_on_a_replayed_trace() -> None:
    ceilings = [d.ceiling for d in replay_ceilings(POLICY, CeilingRule(max_replicas=4), HOT_TRACE)]
    assert ceilings == [4, 4, 1, 1, 1, 1, 4]
    critical = replay_ceilings(
        POLICY, CeilingRule(max_replicas=4, held_replicas=2), [reading(0), reading(5, "critical")]
    )
    assert [d.ceiling for d in critical] == [4, 1]  # critical drops at once, below held


def test_a_hot_trace_scales_the_application_down_and_back_up_after_the_cool_down(
    bento_store: BentoMLResource,
    bento: BentoInfo,
    settings: RayServeSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    two = replace(settings, min_replicas=2, max_replicas=2, held_replicas=1)
    spec = application_spec(bento_store, _record(bento, 903), "hot", two)
    url = deploy_spec(spec, two)
    model = deployment_name("champion", HEAD)
    try:
        wait_ready(url)
        assert ray_serve.running_replicas("hot", model) == 2
        with dg.instance_for_test() as instance:
            watcher = NodeCeilingWatcher(
                POLICY, rule_for(two), ray_applier(spec, two), observation_recorder(instance, "hot")
            )
            caplog.set_level("WARNING", logger="efficientai.serving.ray")
            for snap in HOT_TRACE[:3]:
                watcher.observe({HEAD: snap})
            assert watcher.ceilings == {HEAD: 1}
            _wait_replicas("hot", model, 1)
            served = post(url, instances_body(rows(1)))
            assert served.status_code == 200, served.text
            for snap in HOT_TRACE[3:]:
                watcher.observe({HEAD: snap})
            assert watcher.ceilings == {HEAD: 2}
            _wait_replicas("hot", model, 2)
            observations = instance.fetch_observations(dg.AssetKey(DEPLOYMENT_ASSET), limit=10)
            ceilings = [
                e.asset_observation.metadata["ray.replica_ceiling"].value
                for e in reversed(observations.records)
                if e.asset_observation is not None
            ]
            assert ceilings == [1, 2]
            nodes = {
                e.asset_observation.metadata["ray.node"].value
                for e in observations.records
                if e.asset_observation is not None
            }
            assert nodes == {HEAD}
        lines = [r.getMessage() for r in caplog.records if "replica ceiling on" in r.getMessage()]
        assert len(lines) == 2
        assert "on node head drops 2 -> 1" in lines[0] and "thermal=serious" in lines[0]
        assert "on node head rises 1 -> 2" in lines[1] and "released" in lines[1]
    finally:
        ray_serve.delete_application("hot")


def _wait_replicas(app: str, model: str, count: int, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while ray_serve.running_replicas(app, model) != count:
        assert time.monotonic() < deadline, f"{app} did not reach {count} replicas"
        time.sleep(0.5)


# -- through the deployment asset (a trained pipeline: MLflow registry, DVC data) ------------


@pytest.fixture(scope="module")
def ray_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineHome]:
    """Its own trained home: these tests train a second version and move the deployment, which
    the session's shared home must not see."""
    with trained_home(tmp_path_factory.mktemp("ray-trained") / "home") as pipeline:
        yield pipeline


@pytest.fixture(scope="module")
def pipeline_store(ray_pipeline: PipelineHome) -> BentoMLResource:
    return BentoMLResource(
        bentoml_home=str(ray_pipeline.home.bentoml_home),
        port=0,
        max_rows=MAX_ROWS,
        token_env=TOKEN_ENV,
    )


def test_the_deployment_asset_serves_the_champion_on_ray_and_records_the_backend(
    ray_pipeline: PipelineHome, pipeline_store: BentoMLResource, settings: RayServeSettings
) -> None:
    env = {
        "EFFICIENTAI_RAY_ADDRESS": settings.address,
        "EFFICIENTAI_RAY_HTTP_PORT": str(settings.http_port),
        "EFFICIENTAI_RAY_REPLICA_CPUS": str(settings.replica_cpus),
    }
    os.environ.update(env)
    try:
        result = dg.materialize(
            [model_bento, deployment],
            resources={**ray_pipeline.resources, "bentoml": pipeline_store},
            instance=ray_pipeline.instance,
            run_config={"ops": {"deployment": {"config": {"backend": "ray"}}}},
        )
    finally:
        for key in env:
            os.environ.pop(key, None)
    metadata = result.asset_materializations_for_node("deployment")[0].metadata
    url = str(metadata["serve_url"].value)
    assert metadata["backend"].value == "ray" and url.endswith(f"/{NAMESPACE}")
    record = pipeline_store.current_deployment(f"{NAMESPACE}-{MODEL_NAME}")
    assert record is not None and record.backend == "ray"
    assert json.loads(Path(str(metadata["record_path"].value)).read_text())["backend"] == "ray"
    wait_ready(url)
    served = HTTP.get(url + "/metadata", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert served["model_version"] == record.champion.model_version
    assert served["deployment_id"] == record.deployment_id
    assert post(url, instances_body(rows(1))).status_code == 200


def test_an_unreachable_cluster_fails_within_seconds_naming_the_address(
    ray_pipeline: PipelineHome, pipeline_store: BentoMLResource
) -> None:
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(RayBackendError, match=address.replace(".", r"\.")):
        check_cluster(RayServeSettings(address=address))
    assert time.monotonic() - started < 5
    name = f"{NAMESPACE}-{MODEL_NAME}"
    before = pipeline_store.current_deployment(name)
    os.environ["EFFICIENTAI_RAY_ADDRESS"] = address
    try:
        result = dg.materialize(
            [deployment],
            resources={**ray_pipeline.resources, "bentoml": pipeline_store},
            instance=ray_pipeline.instance,
            run_config={"ops": {"deployment": {"config": {"backend": "ray"}}}},
            raise_on_error=False,
        )
    finally:
        os.environ.pop("EFFICIENTAI_RAY_ADDRESS")
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None and address in failure.message and "make ray-up" in failure.message
    assert pipeline_store.current_deployment(name) == before  # nothing recorded


def _move_on_ray(
    pipeline: PipelineHome,
    store: BentoMLResource,
    settings: RayServeSettings,
    **config: Any,
) -> dict[str, Any]:
    """One move of the deployment asset with the Ray backend; its materialization metadata."""
    env = {
        f"{ENV_PREFIX}ADDRESS": settings.address,
        f"{ENV_PREFIX}HTTP_PORT": str(settings.http_port),
        f"{ENV_PREFIX}REPLICA_CPUS": str(settings.replica_cpus),
    }
    os.environ.update(env)
    try:
        result = dg.materialize(
            [deployment],
            resources={**pipeline.resources, "bentoml": store},
            instance=pipeline.instance,
            run_config={"ops": {"deployment": {"config": {"backend": "ray", **config}}}},
        )
    finally:
        for key in env:
            os.environ.pop(key, None)
    event = result.asset_materializations_for_node("deployment")[0]
    return {key: getattr(value, "value", value) for key, value in event.metadata.items()}


def _served_version(url: str) -> tuple[str, int, str]:
    """What the application says it serves: /metadata's version and deployment, and the version
    header on a prediction."""
    wait_ready(url)
    served = HTTP.get(url + "/metadata", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    answer = post(url, instances_body(rows(1)))
    assert answer.status_code == 200, answer.text
    header = answer.headers["x-efficientai-model-version"]
    return str(served["model_version"]), int(served["deployment_id"]), header


def test_promote_then_rollback_through_the_asset_move_the_ray_application_between_versions(
    ray_pipeline: PipelineHome, pipeline_store: BentoMLResource, settings: RayServeSettings
) -> None:
    """Two real registered versions: v1 is the champion served on Ray (the asset test above),
    v2 is trained here as the challenger. Promote serves v2, rollback serves v1 again; each
    record says backend ray and the application answers with the record's version."""
    name = f"{NAMESPACE}-{MODEL_NAME}"
    before = pipeline_store.current_deployment(name)
    assert before is not None and before.backend == "ray"
    first = before.champion.model_version
    ray_pipeline.materialize(
        [candidate_model], run_config=training_run_config(seed=1, force_retrain=True)
    )

    promoted = _move_on_ray(
        ray_pipeline, pipeline_store, settings, action="promote", reason="v2 on ray"
    )
    record = pipeline_store.current_deployment(name)
    assert record is not None and record.deployment_id == before.deployment_id + 1
    second = record.champion.model_version
    assert (record.action, record.mode, record.backend) == ("promote", "single", "ray")
    assert second != first and promoted["champion_version"] == second
    assert promoted["backend"] == "ray" and promoted["alias_moved"] is True
    assert json.loads(Path(str(promoted["record_path"])).read_text())["backend"] == "ray"
    url = str(promoted["serve_url"])
    assert _served_version(url) == (second, record.deployment_id, second)

    rolled = _move_on_ray(
        ray_pipeline, pipeline_store, settings, action="rollback", reason="v2 misbehaves"
    )
    record = pipeline_store.current_deployment(name)
    assert record is not None
    assert (record.action, record.backend, record.champion.model_version) == (
        "rollback",
        "ray",
        first,
    )
    assert record.previous_champion_version == second and rolled["backend"] == "ray"
    assert record.champion.bento_tag == before.champion.bento_tag  # the bento served before
    assert str(rolled["serve_url"]) == url  # the namespace's one application, updated in place
    assert _served_version(url) == (first, record.deployment_id, first)
