"""The thermal gate sensor's ticks against real materializations, and the staleness it requests by."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resources.hardware.gate_settings import GateSettings
from resources.hardware.resource import HardwareResource
from sensors.staleness import AssetFacts, Recorded, run_key, staleness
from sensors.thermal import (
    HEAVY_ASSET_KEYS,
    build_thermal_gate_sensor,
    decode_cursor,
    encode_cursor,
    thermal_gate_sensor,
)


@dg.asset
def raw_data() -> int:
    return 1


@dg.asset(deps=[raw_data], pool="heavy")
def trained_model() -> int:
    return 2


@dg.asset(deps=[trained_model], pool="heavy")
def packaged_model() -> int:
    return 3


@dg.asset
def light_report() -> int:
    return 4


HEAVY = [dg.AssetKey("trained_model"), dg.AssetKey("packaged_model")]
SENSOR = build_thermal_gate_sensor(HEAVY)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as fresh:
        yield fresh


class Ticker:
    """Ticks the sensor like the daemon would: each tick gets the previous tick's cursor."""

    def __init__(self, instance: dg.DagsterInstance, trace: Path, **gate: Any) -> None:
        self.instance = instance
        self.hw = HardwareResource(
            source="replay", replay_trace_path=str(trace), gate=GateSettings(**gate)
        )
        self.defs = dg.Definitions(
            assets=[raw_data, trained_model, packaged_model, light_report],
            sensors=[SENSOR],
            resources={"hardware": self.hw},
        )
        self.cursor: str | None = None

    def tick(self) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            definitions=self.defs,
            resources={"hardware": self.hw},
        )
        result = SENSOR(context)
        assert isinstance(result, dg.SensorResult)
        assert result.cursor is not None, "every tick stores the gate state"
        self.cursor = result.cursor
        return result

    def materialize(self, *assets: dg.AssetsDefinition) -> None:
        assert dg.materialize(list(assets), instance=self.instance).success


def write_trace(path: Path, *states: str, every: float = 60.0) -> Path:
    readings = [
        {"at": i * every, "thermal_state": s, "psi_cpu": {"some_avg10": 3.5}}
        for i, s in enumerate(states)
    ]
    path.write_text(json.dumps({"start": 2_000_000, "readings": readings}))
    return path


def skip_message(result: dg.SensorResult) -> str:
    assert result.skip_reason is not None and result.skip_reason.skip_message is not None
    return result.skip_reason.skip_message


def first_request(result: dg.SensorResult) -> dg.RunRequest:
    assert result.run_requests, "expected a run request"
    return result.run_requests[0]


def requested(result: dg.SensorResult) -> list[set[dg.AssetKey]]:
    return [set(r.asset_selection or []) for r in result.run_requests or []]


def test_clear_machine_requests_missing_heavy_assets_only(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    ticker = Ticker(instance, write_trace(tmp_path / "t.json", "nominal"))
    result = ticker.tick()
    assert result.skip_reason is None
    assert requested(result) == [set(HEAVY)], "light assets are not this sensor's business"
    request = first_request(result)
    assert request.run_key and request.tags["efficientai/gate.decision"] == "go"


def test_hot_trace_skips_with_readings_then_requests_after_cool_down(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    trace = write_trace(tmp_path / "t.json", "serious", "serious", "nominal", "nominal", "nominal")
    ticker = Ticker(instance, trace, bad_readings_to_hold=2, cooldown_seconds=120)
    skips = [ticker.tick() for _ in range(4)]
    messages = [skip_message(s) for s in skips if s.skip_reason]
    assert len(messages) == 4 and not any(s.run_requests for s in skips)
    assert "Hardware gate suspect: waiting: bad reading 1 of 2" in messages[0]
    assert "Hardware gate hold: hold entered after 2 consecutive bad readings" in messages[1]
    assert "cooling down: 0s of 120s" in messages[2]
    assert "cooling down: 60s of 120s" in messages[3]
    assert all("Readings: thermal=" in m and "psi.cpu some=3.5%" in m for m in messages)
    released = ticker.tick()
    assert requested(released) == [set(HEAVY)]


def test_only_stale_heavy_assets_are_requested(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    ticker = Ticker(instance, write_trace(tmp_path / "t.json", "nominal"))
    ticker.materialize(raw_data, trained_model, packaged_model, light_report)
    up_to_date = ticker.tick()
    assert up_to_date.skip_reason is not None
    assert "no heavy asset is stale or missing" in skip_message(up_to_date)
    ticker.materialize(raw_data)  # new data: the trained model is now stale
    stale = ticker.tick()
    assert requested(stale) == [{dg.AssetKey("trained_model")}]
    again = ticker.tick()
    assert first_request(again).run_key == first_request(stale).run_key, "same state, same key"
    ticker.materialize(raw_data)
    newer = ticker.tick()
    assert first_request(newer).run_key != first_request(stale).run_key


def test_critical_reading_skips_at_once(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    ticker = Ticker(instance, write_trace(tmp_path / "t.json", "critical"), bad_readings_to_hold=5)
    result = ticker.tick()
    assert result.skip_reason is not None
    assert "nothing heavy runs at critical" in skip_message(result)


def test_cursor_round_trips_and_a_corrupt_cursor_starts_clear(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    ticker = Ticker(
        instance,
        write_trace(tmp_path / "t.json", "serious", "nominal"),
        bad_readings_to_hold=1,
    )
    ticker.tick()
    state = decode_cursor(ticker.cursor)
    assert state.phase == "hold" and state.held_since == 2_000_000
    assert decode_cursor(encode_cursor(state)) == state
    assert decode_cursor("{not json").phase == "clear"
    assert decode_cursor(json.dumps({"version": 99, "gate": {"phase": "hold"}})).phase == "clear"


def test_unknown_thermal_state_is_allowed_and_said_so(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    ticker = Ticker(instance, write_trace(tmp_path / "t.json", "unknown"))
    ticker.materialize(raw_data, trained_model, packaged_model)
    result = ticker.tick()
    assert result.skip_reason is not None
    assert "thermal state unknown, allowed by policy" in skip_message(result)


def test_sensor_without_definitions_skips_rather_than_guessing(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    hw = HardwareResource(
        source="replay", replay_trace_path=str(write_trace(tmp_path / "t.json", "nominal"))
    )
    context = dg.build_sensor_context(instance=instance, resources={"hardware": hw})
    result = SENSOR(context)
    assert isinstance(result, dg.SensorResult)
    assert "staleness cannot be resolved" in skip_message(result)


def test_project_sensor_targets_training_and_bento_build() -> None:
    assert set(HEAVY_ASSET_KEYS) == {dg.AssetKey("candidate_model"), dg.AssetKey("model_bento")}
    assert thermal_gate_sensor.name == "thermal_gate_sensor"
    assert thermal_gate_sensor.default_status == dg.DefaultSensorStatus.STOPPED


def test_sensor_refuses_bad_configuration() -> None:
    with pytest.raises(ValueError, match="at least one heavy asset key"):
        build_thermal_gate_sensor([])
    with pytest.raises(ValueError, match="priority must be one of"):
        build_thermal_gate_sensor(HEAVY, priority="asap")  # type: ignore[arg-type]
    assert SENSOR.default_status == dg.DefaultSensorStatus.STOPPED


# ---- staleness, the pure decision behind the requests -------------------------------------

CODE = "dagster/code_version"
DATA = "dagster/data_version"


def inputs(**versions: str) -> dict[str, str]:
    return {f"dagster/input_data_version/{k}": v for k, v in versions.items()}


def record(storage_id: int, **tags: str) -> Recorded:
    return Recorded(storage_id=storage_id, timestamp=float(storage_id), tags=tags)


MODEL = AssetFacts("model", code_version="1", parents=("data",))
DATA_FACTS = {"data": AssetFacts("data"), "model": MODEL}


def judged(asset: AssetFacts, **latest: Recorded | None) -> str:
    return staleness(asset, {**DATA_FACTS, asset.key: asset}, latest).status


def test_an_asset_never_materialized_is_missing() -> None:
    assert judged(MODEL, data=record(1, **{DATA: "d1"}), model=None) == "missing"


def test_an_asset_computed_from_the_current_data_and_code_is_fresh() -> None:
    model = record(2, **{CODE: "1", DATA: "m1"}, **inputs(data="d1"))
    assert judged(MODEL, data=record(1, **{DATA: "d1"}), model=model) == "fresh"
    assert judged(MODEL, data=record(3, **{DATA: "d1"}), model=model) == "fresh", (
        "a parent re-materialized with the same data version changes nothing"
    )


def test_a_new_parent_data_version_makes_an_asset_stale() -> None:
    model = record(2, **{CODE: "1"}, **inputs(data="d1"))
    result = staleness(MODEL, DATA_FACTS, {"data": record(3, **{DATA: "d2"}), "model": model})
    assert result.status == "stale" and "data data version d1 -> d2" in result.reason


def test_a_new_code_version_makes_an_asset_stale() -> None:
    model = record(2, **{CODE: "0"}, **inputs(data="d1"))
    assert judged(MODEL, data=record(1, **{DATA: "d1"}), model=model) == "stale"


def test_an_added_or_removed_dependency_makes_an_asset_stale() -> None:
    data = record(1, **{DATA: "d1"})
    removed = record(2, **{CODE: "1"}, **inputs(data="d1", labels="l1"))
    assert judged(MODEL, data=data, model=removed) == "stale"
    added = record(2, **{CODE: "1"})
    assert judged(MODEL, data=data, model=added) == "stale"


def test_a_parent_assumed_present_and_still_unmaterialized_is_no_change() -> None:
    model = record(2, **{CODE: "1"}, **inputs(data="INITIAL"))
    assert judged(MODEL, data=None, model=model) == "fresh"


def test_records_without_provenance_are_judged_by_time() -> None:
    old = record(2)  # written before Dagster tagged code and input versions
    assert judged(MODEL, data=record(1), model=old) == "fresh"
    assert judged(MODEL, data=record(3), model=old) == "stale"


def test_time_partitioned_parents_are_not_followed_other_partitions_are() -> None:
    model = record(2, **{CODE: "1"}, **inputs(data="d1"))
    for partitions, expected in (("time", "fresh"), ("other", "stale")):
        facts = {"data": AssetFacts("data", partitions=partitions), "model": MODEL}  # type: ignore[arg-type]
        latest = {"data": record(3, **{DATA: "d2"}), "model": model}
        assert staleness(MODEL, facts, latest).status == expected


def test_partitioned_or_external_assets_are_never_requested() -> None:
    for asset in (
        AssetFacts("model", parents=("data",), partitions="time"),
        AssetFacts("model", parents=("data",), external=True),
    ):
        assert judged(asset, data=record(1), model=None) == "fresh"


def test_the_run_key_changes_only_with_a_materialization_it_depends_on() -> None:
    data, model = record(1, **{DATA: "d1"}), record(2)
    key = run_key([MODEL], {"data": data, "model": model})
    assert run_key([MODEL], {"data": data, "model": model, "other": record(9)}) == key
    assert run_key([MODEL], {"data": record(3), "model": model}) != key


def test_sensor_requests_an_asset_whose_code_version_changed(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    @dg.asset(name="trained_model", deps=[raw_data], pool="heavy", code_version="2")
    def retrained_model() -> int:
        return 2

    ticker = Ticker(instance, write_trace(tmp_path / "t.json", "nominal"))
    ticker.materialize(raw_data, trained_model, packaged_model)
    assert ticker.tick().skip_reason is not None, "all fresh under the old code"
    changed = dg.Definitions(
        assets=[raw_data, retrained_model, packaged_model], resources={"hardware": ticker.hw}
    )
    context = dg.build_sensor_context(
        instance=instance,
        cursor=ticker.cursor,
        definitions=changed,
        resources={"hardware": ticker.hw},
    )
    result = SENSOR(context)
    assert isinstance(result, dg.SensorResult)
    assert requested(result) == [{dg.AssetKey("trained_model")}]
