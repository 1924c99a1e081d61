"""The per-node replica ceiling as pure decisions, on replayed per-node traces: each node has its
own gate, a hot node lowers only its own ceiling and gets it back after the cool-down, nodes join
and leave; the watcher applies exactly the changes (retrying one the cluster refused); the
gateway's balancer sends each node its replicas' share of requests. No Ray: the cluster tests
are in test_ray_nodes.py."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest

from efficientai_assets.defs.serving.ray_scaling import NodeCeilingWatcher
from efficientai_assets.gate.policy import GatePolicy
from efficientai_assets.gate.replicas import CeilingDecision, CeilingRule, replay_node_ceilings
from efficientai_assets.ray_service.balance import NodeBalancer, routing_weights
from efficientai_assets.ray_service.spec import ApplicationSpec, ServedVersion
from resources.hardware.gate_settings import GateSettings
from resources.hardware.types import HardwareSnapshot
from resources.ray.cluster import check_node_name, declared_in, node_resource
from resources.ray.serve import Autoscaling

POLICY = GatePolicy.from_settings(
    GateSettings(bad_readings_to_hold=2, cooldown_seconds=60, hold_thermal_state="serious")
)
RULE = CeilingRule(max_replicas=3, held_replicas=1)


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


# Node a runs hot for two rounds, then has memory pressure, then cools down; b stays nominal.
TRACE: list[Mapping[str, HardwareSnapshot]] = [
    {"a": reading(0), "b": reading(0)},
    {"a": reading(10, "serious"), "b": reading(10)},  # a suspect: kept
    {"a": reading(20, "serious"), "b": reading(20)},  # a held: only a drops
    {"a": reading(30, memory="warning"), "b": reading(30)},  # still held, cool-down restarts
    {"a": reading(40), "b": reading(40)},  # cooling down
    {"a": reading(90), "b": reading(90)},  # 50 s good: still held
    {"a": reading(100), "b": reading(100)},  # 60 s good: released
]


def test_a_hot_node_lowers_only_its_own_ceiling_and_gets_it_back_after_the_cool_down() -> None:
    rounds = replay_node_ceilings(POLICY, RULE, TRACE)
    assert [r.ceilings for r in rounds] == [
        {"a": 3, "b": 3},
        {"a": 3, "b": 3},
        {"a": 1, "b": 3},
        {"a": 1, "b": 3},
        {"a": 1, "b": 3},
        {"a": 1, "b": 3},
        {"a": 3, "b": 3},
    ]
    assert [[(d.node, d.previous, d.ceiling) for d in r.changed] for r in rounds] == [
        [],
        [],
        [("a", 3, 1)],
        [],
        [],
        [],
        [("a", 1, 3)],
    ]
    assert {r.decisions["b"].state.phase for r in rounds} == {"clear"}  # b's gate never moved
    dropped = rounds[2].changed[0]
    assert "on node a drops 3 -> 1" in dropped.summary()
    assert "thermal=serious" in dropped.summary()
    metadata = dropped.to_metadata()
    assert metadata["ray.node"] == "a" and metadata["ray.replica_ceiling"] == 1
    assert metadata["gate.state"] == "hold" and metadata["hardware.thermal_state"] == "serious"


def test_both_nodes_hot_hold_each_on_its_own_clock() -> None:
    """Each node's cool-down counts its own good readings: b, hot later, is released later."""
    rounds = replay_node_ceilings(
        POLICY,
        RULE,
        [
            {"a": reading(0, "critical"), "b": reading(0)},
            {"a": reading(10), "b": reading(10, "critical")},
            {"a": reading(70), "b": reading(70)},  # a: 60 s of good readings; b: 0 s
            {"a": reading(130), "b": reading(130)},  # b: 60 s
        ],
    )
    assert [r.ceilings for r in rounds] == [
        {"a": 1, "b": 3},
        {"a": 1, "b": 1},
        {"a": 3, "b": 1},
        {"a": 3, "b": 3},
    ]


def test_a_node_that_leaves_is_forgotten_and_comes_back_fresh() -> None:
    rounds = replay_node_ceilings(
        POLICY,
        RULE,
        [
            {"a": reading(0, "serious"), "b": reading(0)},
            {"a": reading(10, "serious"), "b": reading(10)},  # a held
            {"b": reading(20)},  # a left (stopped, or its machine went away)
            {"a": reading(30, "serious"), "b": reading(30)},  # a is back: a fresh gate
            {"a": reading(40), "b": reading(40), "c": reading(40, "critical")},  # c joins hot
        ],
    )
    assert [r.ceilings for r in rounds] == [
        {"a": 3, "b": 3},
        {"a": 1, "b": 3},
        {"b": 3},
        {"a": 3, "b": 3},  # one bad reading on a fresh gate is only suspect
        {"a": 3, "b": 3, "c": 1},  # a critical reading holds at once, even on arrival
    ]
    assert [(r.joined, r.left) for r in rounds] == [
        (("a", "b"), ()),
        ((), ()),
        ((), ("a",)),
        (("a",), ()),
        (("c",), ()),
    ]
    assert [(d.node, d.ceiling) for d in rounds[4].changed] == [("c", 1)]


def test_the_watcher_applies_each_change_once_and_retries_one_the_cluster_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    applied: list[dict[str, int]] = []
    refuse = {"next": False}

    def apply(ceilings: Mapping[str, int]) -> None:
        if refuse["next"]:
            refuse["next"] = False
            raise RuntimeError("Serve controller restarting")
        applied.append(dict(ceilings))

    recorded: list[CeilingDecision] = []
    watcher = NodeCeilingWatcher(POLICY, RULE, apply, recorded.append)
    caplog.set_level(logging.WARNING, logger="efficientai.serving.ray")
    for readings in TRACE[:2]:
        watcher.observe(readings)
    assert applied == [{"a": 3, "b": 3}]  # the first round applies; an unchanged one does not
    refuse["next"] = True
    watcher.observe(TRACE[2])  # a drops, but the cluster refuses this once
    assert applied == [{"a": 3, "b": 3}] and watcher.ceilings == {"a": 1, "b": 3}
    watcher.observe(TRACE[3])  # no new decision: the refused change is applied now
    assert applied[-1] == {"a": 1, "b": 3}
    for readings in TRACE[4:]:
        watcher.observe(readings)
    watcher.observe({"b": reading(110)})  # a leaves: the application loses a's deployments
    assert applied == [{"a": 3, "b": 3}, {"a": 1, "b": 3}, {"a": 3, "b": 3}, {"b": 3}]
    assert [(d.node, d.ceiling) for d in recorded] == [("a", 1), ("a", 3)]
    messages = [r.getMessage() for r in caplog.records]
    assert any("on node a drops 3 -> 1" in m and "thermal=serious" in m for m in messages)
    assert any("on node a rises 1 -> 3" in m and "released" in m for m in messages)
    assert any("node a left" in m for m in messages)
    assert any("not applied" in m and "Serve controller restarting" in m for m in messages)


def test_requests_follow_each_nodes_running_replicas() -> None:
    balancer = NodeBalancer()
    picks = [balancer.pick({"a": 1, "b": 2}) for _ in range(300)]
    assert picks.count("a") == 100 and picks.count("b") == 200
    # Smooth: every three requests, one to a and two to b (never a's or b's turns in a run).
    assert all(picks[i : i + 3].count("a") == 1 for i in range(0, 300, 3))
    assert {balancer.pick({"a": 2, "b": 2}, avoid={"a"}) for _ in range(10)} == {"b"}
    assert balancer.pick({"a": 0, "b": 0}) is None
    assert routing_weights({"a": 0, "b": 2}, ["a", "b"]) == {"a": 0, "b": 2}
    # Nothing running yet (starting, or Serve's status unknown): every node waits its turn.
    assert routing_weights({}, ["a", "b"]) == {"a": 1, "b": 1}


def test_each_node_scales_under_its_own_ceiling_and_bad_names_are_refused() -> None:
    version = ServedVersion(
        settings={
            "bento_model_tag": "m:1",
            "model_name": "m",
            "model_version": "1",
            "data_md5": "x",
            "git_sha": "y",
            "n_features": 4,
            "classes": [0, 1],
        },
        files={},
    )
    spec = ApplicationSpec(
        namespace="ns",
        deployment_id=1,
        mode="single",
        champion=version,
        scaling=Autoscaling(min_replicas=2, max_replicas=3),
        nodes=("a", "b"),
        ceilings={"a": 1},
    )
    assert spec.scaling_on("a").to_config()["max_replicas"] == 1
    assert spec.scaling_on("a").to_config()["min_replicas"] == 1
    assert spec.scaling_on("b").to_config()["max_replicas"] == 3
    with pytest.raises(ValueError, match="declares an efficientai_node"):
        ApplicationSpec("ns", 1, "single", version, nodes=())
    with pytest.raises(ValueError, match="serve nothing"):
        ApplicationSpec("ns", 1, "single", version, nodes=("a",), ceilings={"z": 1})
    for bad in ("", "Head", "a b", "a:b", "x" * 33):
        with pytest.raises(ValueError, match="node name"):
            check_node_name(bad)
    assert node_resource("gpu-box-2") == "efficientai_node:gpu-box-2"
    assert declared_in({"CPU": 2.0, "efficientai_node:a": 10_000.0, "node:127.0.0.1": 1.0}) == ["a"]
