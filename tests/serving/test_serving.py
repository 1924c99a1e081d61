"""The champion's bento, built by the real ``bentoml build`` and served by the real ``bentoml serve``
on 127.0.0.1, called with BentoML's own client and with raw HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import numpy as np
import pandas as pd
import psutil
import pytest
from conftest import PipelineHome

from efficientai_assets.defs.serving.assets import model_bento
from efficientai_assets.names import CHAMPION_ALIAS, LABEL_COLUMN, MODEL_NAME, SPLITS_DIR
from resources.bentoml.servers import BentoServer
from resources.bentoml.store import BentoMLResource
from resources.bentoml.types import BentoInfo

pytestmark = pytest.mark.slow

TOKEN_ENV = "EFFICIENTAI_TEST_SERVE_TOKEN"
TOKEN = "test-token-3f9a"
MAX_ROWS = 64


def serving_resource(home_root: Path) -> BentoMLResource:
    return BentoMLResource(
        bentoml_home=str(home_root), port=0, max_rows=MAX_ROWS, token_env=TOKEN_ENV
    )


@pytest.fixture(scope="module")
def bento_store(trained_pipeline: PipelineHome) -> BentoMLResource:
    return serving_resource(trained_pipeline.home.bentoml_home)


@pytest.fixture(scope="module")
def bento_result(
    trained_pipeline: PipelineHome, bento_store: BentoMLResource
) -> dg.ExecuteInJobResult:
    return dg.materialize(
        [model_bento],
        resources={**trained_pipeline.resources, "bentoml": bento_store},
        instance=trained_pipeline.instance,
    )


@pytest.fixture(scope="module")
def bento(bento_result: dg.ExecuteInJobResult, bento_store: BentoMLResource) -> BentoInfo:
    tag = bento_result.asset_materializations_for_node("model_bento")[0].metadata["bento_tag"]
    info = bento_store.get_bento(str(tag.value))
    assert info is not None
    return info


@pytest.fixture(scope="module")
def server(bento_store: BentoMLResource, bento: BentoInfo) -> Iterator[BentoServer]:
    with bento_store.serve(bento.tag, env={TOKEN_ENV: TOKEN}) as running:
        running.wait_until_ready()
        yield running


@pytest.fixture(scope="module")
def validation(trained_pipeline: PipelineHome) -> pd.DataFrame:
    dvc = trained_pipeline.resources["dvc"]
    return pd.read_parquet(dvc.root() / dvc.project_path(SPLITS_DIR) / "validation.parquet")


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


HTTP = httpx.Client(timeout=30)  # one client: a new one per request costs ~35 ms of TLS setup


def post(server: BentoServer, body: bytes, **headers: str) -> httpx.Response:
    return HTTP.post(
        server.url + "/predict",
        content=body,
        headers={"Content-Type": "application/json", **auth(), **headers},
    )


def rows(n: int, width: int = 64, value: str = "0.5") -> list[str]:
    return ["[" + ",".join([value] * width) + "]" for _ in range(n)]


def instances_body(row_texts: list[str], extra: str = "") -> bytes:
    return ('{"instances": [' + ",".join(row_texts) + "]" + extra + "}").encode()


def test_bento_asset_builds_a_bento_labelled_with_the_champions_provenance(
    trained_pipeline: PipelineHome, bento_result: dg.ExecuteInJobResult, bento: BentoInfo
) -> None:
    mlflow = trained_pipeline.resources["mlflow"]
    name = mlflow.model_name(MODEL_NAME)
    champion = mlflow.version_for_alias(name, CHAMPION_ALIAS)
    metadata = bento_result.asset_materializations_for_node("model_bento")[0].metadata

    listed = subprocess.run(
        [sys.executable, "-m", "bentoml", "list", "-o", "json"],
        env={**bento_store_env(trained_pipeline)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert bento.tag in [entry["tag"] for entry in json.loads(listed.stdout)]
    assert bento.labels["model_name"] == name
    assert bento.labels["model_version"] == str(champion.version)
    assert bento.labels["data_md5"] == champion.tags["efficientai.data_md5"]
    assert bento.labels["git_sha"] == champion.tags["efficientai.git_sha"]
    assert metadata["bento_tag"].value == bento.tag
    assert metadata["bento_size_bytes"].value == bento.size_bytes > 0
    assert Path(metadata["bento_path"].value) == bento.path
    assert (bento.path / "env" / "docker" / "Dockerfile").is_file()
    assert champion.tags["efficientai.bento_tag"] == bento.tag
    # The tool's own description of the API: strict schema; BentoML's batcher is off because the
    # service merges concurrent requests itself, behind a bounded queue (bento_service/batching.py).
    described = json.loads(
        subprocess.run(
            [sys.executable, "-m", "bentoml", "get", bento.tag, "-o", "json"],
            env=bento_store_env(trained_pipeline),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    route = next(r for r in described["schema"]["routes"] if r["name"] == "predict")
    assert route["batchable"] is False
    assert route["input"]["additionalProperties"] is False


def bento_store_env(pipeline: PipelineHome) -> dict[str, str]:
    return serving_resource(pipeline.home.bentoml_home).environment()


def test_rematerializing_the_bento_reuses_the_identical_build(
    trained_pipeline: PipelineHome, bento_store: BentoMLResource, bento: BentoInfo
) -> None:
    again = dg.materialize(
        [model_bento],
        resources={**trained_pipeline.resources, "bentoml": bento_store},
        instance=trained_pipeline.instance,
    )
    metadata = again.asset_materializations_for_node("model_bento")[0].metadata
    assert metadata["bento_tag"].value == bento.tag
    assert metadata["built"].value is False


def test_served_predictions_equal_the_in_process_model(
    server: BentoServer, bento: BentoInfo, bento_store: BentoMLResource, validation: pd.DataFrame
) -> None:
    import bentoml

    from efficientai_assets.models.mlp import MLXClassifier

    model_dir = bento_store.resolved_home() / "models" / Path(*bento.model_tags[0].split(":"))
    local = MLXClassifier.load_dir(model_dir)
    features = validation.drop(columns=[LABEL_COLUMN]).to_numpy(dtype=np.float32)[:50]
    expected = local.predict_proba(features)

    with bentoml.SyncHTTPClient(server.url, token=TOKEN) as client:
        answered = client.predict(instances=features.tolist())
    raw = httpx.post(
        server.url + "/predict", json={"instances": features.tolist()}, headers=auth(), timeout=30
    )
    assert raw.status_code == 200
    for answer in (answered, raw.json()):
        labels = [row["label"] for row in answer]
        proba = np.array(
            [[row["probabilities"][str(c)] for c in local.config.classes] for row in answer]
        )
        assert labels == local.predict(features).tolist()
        np.testing.assert_allclose(proba, expected, rtol=1e-5, atol=1e-6)
    accuracy = np.mean(np.array(labels) == validation[LABEL_COLUMN].to_numpy()[:50])
    assert accuracy > 0.8


BAD_BODIES: dict[str, tuple[bytes, int, str]] = {
    "nan": (instances_body([rows(1, 63)[0][:-1] + ",NaN]"]), 400, "finite"),
    "infinity": (instances_body([rows(1, 63)[0][:-1] + ",Infinity]"]), 400, "finite"),
    "minus_infinity": (instances_body([rows(1, 63)[0][:-1] + ",-Infinity]"]), 400, "finite"),
    "overflow_1e400": (instances_body([rows(1, 63)[0][:-1] + ",1e400]"]), 400, "finite"),
    "string_number": (instances_body([rows(1, 63)[0][:-1] + ',"1.5"]']), 400, "valid number"),
    "boolean": (instances_body([rows(1, 63)[0][:-1] + ",true]"]), 400, "valid number"),
    "null": (instances_body([rows(1, 63)[0][:-1] + ",null]"]), 400, "valid number"),
    "too_few_features": (instances_body(rows(1, 63)), 400, "at least 64"),
    "too_many_features": (instances_body(rows(1, 65)), 400, "at most 64"),
    "extra_field": (instances_body(rows(1), ', "debug": true'), 400, "Extra inputs"),
    "no_rows": (b'{"instances": []}', 400, "at least 1"),
    "too_many_rows": (instances_body(rows(MAX_ROWS + 1)), 400, f"at most {MAX_ROWS}"),
    "missing_field": (b"{}", 400, "Field required"),
    "not_json": (b"instances=1", 400, "Invalid JSON"),
    "top_level_array": (b"[[0.5]]", 400, "should be an object"),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_input_gets_a_4xx_naming_the_problem_and_the_server_keeps_serving(
    server: BentoServer, case: str
) -> None:
    body, status, message = BAD_BODIES[case]
    response = post(server, body)
    assert response.status_code == status, response.text
    assert message.lower() in response.text.lower(), response.text
    assert post(server, instances_body(rows(2))).status_code == 200


def test_oversize_bodies_are_refused_before_parsing(server: BentoServer) -> None:
    big = instances_body(rows(4000))  # ~1.2 MB, over the 1 MB default
    declared = post(server, big)
    assert declared.status_code == 413
    assert "exceeds the limit" in declared.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the body is streamed
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = httpx.post(
        server.url + "/predict",
        content=chunks(),
        headers={"Content-Type": "application/json", **auth()},
        timeout=30,
    )
    assert streamed.status_code == 413
    assert post(server, instances_body(rows(1))).status_code == 200


def test_other_media_types_are_refused(server: BentoServer) -> None:
    for media_type in ("application/vnd.bentoml+pickle", "multipart/form-data", "text/plain"):
        response = post(server, instances_body(rows(1)), **{"Content-Type": media_type})
        assert response.status_code == 415, media_type


def test_requests_without_the_bearer_token_are_refused_while_probes_stay_open(
    server: BentoServer,
) -> None:
    body = instances_body(rows(1))
    anonymous = httpx.post(
        server.url + "/predict", content=body, headers={"Content-Type": "application/json"}
    )
    wrong = post(server, body, Authorization="Bearer nope")
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert httpx.get(server.url + "/metadata").status_code == 401
    for probe in ("/readyz", "/livez", "/healthz"):
        assert httpx.get(server.url + probe).status_code == 200, probe


def test_metadata_and_headers_name_the_serving_model_version(
    server: BentoServer, bento: BentoInfo
) -> None:
    metadata = httpx.get(server.url + "/metadata", headers=auth()).json()
    for key in ("model_name", "model_version", "data_md5", "git_sha"):
        assert metadata[key] == bento.labels[key]
    assert metadata["ready"] is True
    assert metadata["n_features"] == 64
    assert metadata["max_rows"] == MAX_ROWS
    response = post(server, instances_body(rows(1)))
    assert response.headers["x-efficientai-model-version"] == bento.labels["model_version"]
    assert response.headers["x-efficientai-data-md5"] == bento.labels["data_md5"]
    assert response.headers["x-efficientai-git-sha"] == bento.labels["git_sha"]


def test_the_server_listens_on_loopback_only(server: BentoServer) -> None:
    listening = [
        c.laddr
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == server.port
    ]
    assert listening
    assert {address.ip for address in listening} == {"127.0.0.1"}


def _copy_store(source: BentoMLResource, target: Path) -> BentoMLResource:
    shutil.copytree(
        source.resolved_home(), target, ignore=shutil.ignore_patterns("logs", "deployments")
    )
    return serving_resource(target)


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_weights_missing_or_corrupt_leave_the_server_up_but_not_ready(
    bento_store: BentoMLResource, bento: BentoInfo, tmp_path: Path, damage: str
) -> None:
    store = _copy_store(bento_store, tmp_path / "bentoml")
    weights = (
        store.resolved_home() / "models" / Path(*bento.model_tags[0].split(":"))
    ) / "weights.safetensors"
    if damage == "missing":
        weights.unlink()
    else:
        weights.write_bytes(b"\x00not-a-safetensors-file" * 10)
    with store.serve(bento.tag) as running:
        running.wait_until_listening()
        assert httpx.get(running.url + "/livez").status_code == 200
        assert httpx.get(running.url + "/readyz").status_code == 503
        response = post(running, instances_body(rows(1)))
        assert response.status_code == 503
        assert "failed to load" in response.json()["error"]
        metadata: dict[str, Any] = httpx.get(running.url + "/metadata").json()
        assert metadata["ready"] is False
        assert (
            "weights" in metadata["not_ready_reason"]
            or "safetensors" in metadata["not_ready_reason"].lower()
        )
        assert httpx.get(running.url + "/readyz").status_code == 503  # still up, still honest
