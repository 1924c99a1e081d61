"""The rollout: canary and shadow deployments served for real, promotion and rollback as alias moves
recorded in MLflow, in deployment records and in Dagster metadata."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
from conftest import PipelineHome, make_home, resources_for_tests, training_run_config

from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
from efficientai_assets.defs.serving.assets import deployment, model_bento
from efficientai_assets.defs.serving.packaging import router_program
from efficientai_assets.defs.training.assets import candidate_model, champion_model
from efficientai_assets.names import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    DEPLOYMENTS_EXPERIMENT,
    MODEL_NAME,
)
from resources.bentoml.store import BentoMLResource
from resources.bentoml.types import DeploymentRecord

pytestmark = pytest.mark.slow

ROW = [0.5] * 64


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineHome]:
    """Version 1 is the champion and deployed alone (deployment #1); version 2 is the challenger."""
    home = make_home(tmp_path_factory.mktemp("deploy") / "home")
    with dg.instance_for_test(temp_dir=str(home.dagster_home)) as instance:
        resources = {
            **resources_for_tests("test", home),
            "bentoml": BentoMLResource(bentoml_home=str(home.bentoml_home), port=0),
        }
        pipeline = PipelineHome(home, resources, instance)
        pipeline.materialize(
            [raw_dataset, dataset_splits, candidate_model, champion_model, model_bento, deployment],
            run_config=training_run_config(),
        )
        pipeline.materialize(
            [candidate_model], run_config=training_run_config(seed=1, force_retrain=True)
        )
        yield pipeline


def deploy(
    pipeline: PipelineHome, raise_on_error: bool = True, **config: Any
) -> dg.ExecuteInJobResult:
    return pipeline.materialize(
        [deployment],
        run_config={"ops": {"deployment": {"config": config}}},
        raise_on_error=raise_on_error,
    )


def metadata_of(result: dg.ExecuteInJobResult) -> dict[str, Any]:
    event = result.asset_materializations_for_node("deployment")[0]
    return {key: getattr(value, "value", value) for key, value in event.metadata.items()}


def aliases(pipeline: PipelineHome) -> tuple[str, str]:
    mlflow = pipeline.resources["mlflow"]
    name = mlflow.model_name(MODEL_NAME)
    champion = mlflow.version_for_alias(name, CHAMPION_ALIAS)
    challenger = mlflow.version_for_alias(name, CHALLENGER_ALIAS)
    return str(champion.version), str(challenger.version)


def current(pipeline: PipelineHome) -> DeploymentRecord:
    store: BentoMLResource = pipeline.resources["bentoml"]
    record = store.current_deployment(pipeline.resources["mlflow"].model_name(MODEL_NAME))
    assert record is not None
    return record


HTTP = httpx.Client(timeout=30)  # one client: a new one per request costs ~35 ms of TLS setup


def predict(url: str, **headers: str) -> httpx.Response:
    response = HTTP.post(url + "/predict", json={"instances": [ROW]}, headers=headers)
    assert response.status_code == 200, response.text
    return response


def test_a_canary_deployment_records_both_bentos_the_share_and_who_and_why(
    two_versions: PipelineHome,
) -> None:
    assert aliases(two_versions) == ("1", "2")
    result = deploy(two_versions, canary_share=0.1, requested_by="alice", reason="try v2 on 10%")
    meta = metadata_of(result)
    record = current(two_versions)

    assert (record.mode, record.action, record.canary_share) == ("canary", "deploy", 0.1)
    assert record.champion.model_version == "1" and record.canary is not None
    assert record.canary.model_version == "2"
    assert record.champion.bento_tag != record.canary.bento_tag
    assert (record.requested_by, record.reason) == ("alice", "try v2 on 10%")
    assert meta["deployment_id"] == record.deployment_id
    assert meta["live_bento"] == record.champion.bento_tag
    assert meta["canary_bento"] == record.canary.bento_tag
    assert meta["canary_share"] == 0.1
    assert Path(meta["record_path"]).is_file()

    mlflow = two_versions.resources["mlflow"]
    client = mlflow.client()
    name = mlflow.model_name(MODEL_NAME)
    experiment = client.get_experiment_by_name(mlflow.experiment_name(DEPLOYMENTS_EXPERIMENT))
    runs = client.search_runs(
        [experiment.experiment_id],
        f"tags.`efficientai.deployment.id` = '{record.deployment_id}'",
    )
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    tags = runs[0].data.tags
    assert tags["efficientai.deployment.requested_by"] == "alice"
    assert tags["efficientai.deployment.reason"] == "try v2 on 10%"
    assert tags["efficientai.deployment.canary_version"] == "2"
    assert client.get_model_version(name, "2").tags["efficientai.deployment.role"] == "canary"
    assert client.get_model_version(name, "1").tags["efficientai.deployment.role"] == "champion"
    assert "canary v2" in client.get_registered_model(name).tags["efficientai.deployment.live"]
    assert aliases(two_versions) == ("1", "2")  # a canary moves no alias


def test_the_canary_share_is_honoured_over_hundreds_of_requests(
    two_versions: PipelineHome,
) -> None:
    """Without a routing key the split is exact (20 of 200 at 10%, off by at most one); with
    200 distinct keys it is a hash split, held within ±13 (3 binomial standard deviations)."""
    deploy(two_versions, canary_share=0.1, reason="measure the split")
    store: BentoMLResource = two_versions.resources["bentoml"]
    with store.serve_deployment(current(two_versions), router_program()) as served:
        served.wait_until_ready()
        unkeyed = Counter(
            predict(served.url).headers["x-efficientai-model-version"] for _ in range(200)
        )
        keyed = Counter(
            predict(served.url, **{"X-Routing-Key": f"user-{i}"}).headers[
                "x-efficientai-model-version"
            ]
            for i in range(200)
        )
        sticky = {
            predict(served.url, **{"X-Routing-Key": "user-7"}).headers["x-efficientai-route"]
            for _ in range(10)
        }
        routed = httpx.get(served.url + "/deployment").json()["routed"]
    assert abs(unkeyed["2"] - 20) <= 1 and unkeyed["1"] + unkeyed["2"] == 200
    assert 7 <= keyed["2"] <= 33, keyed
    assert len(sticky) == 1
    assert routed["canary"] == unkeyed["2"] + keyed["2"] + (10 if sticky == {"canary"} else 0)


def test_in_shadow_mode_the_champion_answers_and_the_challenger_is_logged(
    two_versions: PipelineHome,
) -> None:
    deploy(two_versions, shadow=True, reason="compare v2 silently")
    record = current(two_versions)
    assert record.mode == "shadow"
    store: BentoMLResource = two_versions.resources["bentoml"]
    log = store.shadow_log_path(record)
    with store.serve_deployment(record, router_program()) as served:
        served.wait_until_ready()
        versions = {predict(served.url).headers["x-efficientai-model-version"] for _ in range(30)}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (
            not log.exists() or len(log.read_text().splitlines()) < 30
        ):
            time.sleep(0.2)
    assert versions == {"1"}
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) == 30
    assert {(e["champion_version"], e["shadow_version"]) for e in entries} == {("1", "2")}
    assert all(e["shadow_status"] == 200 and e["agree"] in (True, False) for e in entries)


def test_moves_that_make_no_sense_fail_and_change_nothing(two_versions: PipelineHome) -> None:
    before = (aliases(two_versions), current(two_versions).deployment_id)
    for config in (
        {"action": "promote"},  # no reason
        {"action": "deploy", "canary_share": 0.1, "shadow": True},
        {"action": "rollback", "reason": "x", "rollback_to_version": "99"},
        {"action": "rollback", "reason": "x", "rollback_to_version": "1"},  # already champion
    ):
        result = deploy(two_versions, raise_on_error=False, **config)
        assert not result.success, config
    assert (aliases(two_versions), current(two_versions).deployment_id) == before


def test_promotion_then_rollback_restores_the_previous_champion(two_versions: PipelineHome) -> None:
    first_bento = next(
        r.champion.bento_tag
        for r in two_versions.resources["bentoml"].deployment_history(
            two_versions.resources["mlflow"].model_name(MODEL_NAME)
        )
        if r.champion.model_version == "1"
    )
    promoted = metadata_of(deploy(two_versions, action="promote", reason="canary looked good"))
    assert aliases(two_versions)[0] == "2"
    assert (promoted["action"], promoted["champion_version"], promoted["alias_moved"]) == (
        "promote",
        "2",
        True,
    )

    rolled = metadata_of(
        deploy(two_versions, action="rollback", reason="v2 misbehaves", requested_by="oncall")
    )
    record = current(two_versions)
    assert aliases(two_versions)[0] == "1"
    assert (record.action, record.mode, record.champion.model_version) == (
        "rollback",
        "single",
        "1",
    )
    assert record.champion.bento_tag == first_bento  # the bento that served before, not a rebuild
    assert record.previous_champion_version == "2"
    assert rolled["previous_champion_version"] == "2" and rolled["requested_by"] == "oncall"

    mlflow = two_versions.resources["mlflow"]
    client = mlflow.client()
    experiment = client.get_experiment_by_name(mlflow.experiment_name(DEPLOYMENTS_EXPERIMENT))
    run = client.search_runs(
        [experiment.experiment_id], "tags.`efficientai.deployment.action` = 'rollback'"
    )[0]
    assert run.data.tags["efficientai.deployment.reason"] == "v2 misbehaves"
    assert run.data.tags["efficientai.deployment.requested_by"] == "oncall"
    name = mlflow.model_name(MODEL_NAME)
    assert client.get_model_version(name, "2").tags["efficientai.deployment.role"] == "retired"

    store: BentoMLResource = two_versions.resources["bentoml"]
    with store.serve_deployment(record, router_program()) as served:
        served.wait_until_ready()
        assert httpx.get(served.url + "/metadata").json()["model_version"] == "1"
        assert predict(served.url).headers["x-efficientai-model-version"] == "1"


def test_a_rolled_back_version_stays_out_until_an_operator_promotes_it(
    two_versions: PipelineHome,
) -> None:
    """After the rollback above: the pipeline's champion step does not bring v2 back, a second
    rollback does not go forward to v2, and only an explicit promotion trusts v2 again."""
    mlflow = two_versions.resources["mlflow"]
    name = mlflow.model_name(MODEL_NAME)
    client = mlflow.client()
    assert aliases(two_versions) == ("1", "2")
    assert (
        client.get_model_version(name, "2")
        .tags["efficientai.rolled_back"]
        .startswith("deployment ")
    )

    result = two_versions.materialize([champion_model])
    metadata = result.asset_materializations_for_node("champion_model")[0].metadata
    assert metadata["promoted"].value is False
    assert "rolled back" in metadata["reason"].value
    assert aliases(two_versions)[0] == "1"

    again = deploy(two_versions, raise_on_error=False, action="rollback", reason="once more")
    assert not again.success
    failure = again.failure_data_for_node("deployment")
    assert failure is not None and "no previous champion" in str(failure.error)
    assert aliases(two_versions)[0] == "1"

    deploy(two_versions, action="promote", reason="fixed upstream, v2 is fine")
    assert aliases(two_versions)[0] == "2"
    assert "efficientai.rolled_back" not in client.get_model_version(name, "2").tags


def test_two_moves_cannot_claim_the_same_deployment_record(two_versions: PipelineHome) -> None:
    """Of two concurrent moves, the one that loses the record id fails before touching the
    registry; the winner's record is intact."""
    import dataclasses

    from resources.bentoml.types import BentoStoreError

    store: BentoMLResource = two_versions.resources["bentoml"]
    latest = current(two_versions)
    winner = dataclasses.replace(
        latest, deployment_id=latest.deployment_id + 1, reason="the first of two moves"
    )
    loser = dataclasses.replace(winner, reason="the second of two moves")
    path = store.write_deployment(winner)
    with pytest.raises(BentoStoreError, match="already exists"):
        store.write_deployment(loser)
    assert json.loads(path.read_text())["reason"] == "the first of two moves"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "no staging left"
