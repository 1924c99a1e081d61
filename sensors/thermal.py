"""The thermal gate sensor: requests heavy assets only when the machine is clear.

Each tick reads the hardware once, advances the gate's hysteresis (kept in the cursor as
JSON), and either requests one run of the heavy assets that are stale or missing, or skips
with the readings and the reason, which the UI shows on the tick. Staleness is judged by the
rules of Dagster's stale badges, from public APIs only (``sensors.staleness``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from efficientai_assets import names
from efficientai_assets.gate.policy import (
    PRIORITIES,
    Evaluation,
    GatePolicy,
    GateState,
    Priority,
    evaluate,
)
from resources.hardware.resource import HardwareResource
from sensors.staleness import read_facts, read_latest, run_key, staleness

CURSOR_VERSION = 1
DEFAULT_SENSOR_NAME = names.THERMAL_SENSOR


def encode_cursor(state: GateState, evaluation: Evaluation | None = None) -> str:
    """The cursor: gate state plus the last verdict, for humans reading it in the UI."""
    data: dict[str, Any] = {"version": CURSOR_VERSION, "gate": state.to_json()}
    if evaluation is not None:
        data["last"] = {"verdict": evaluation.verdict, "level": evaluation.level}
    return json.dumps(data, sort_keys=True)


def decode_cursor(cursor: str | None) -> GateState:
    """Gate state from a cursor; a missing, foreign or corrupt cursor starts clear."""
    if not cursor:
        return GateState()
    try:
        data = json.loads(cursor)
    except ValueError:
        return GateState()
    if not isinstance(data, dict) or data.get("version") != CURSOR_VERSION:
        return GateState()
    return GateState.from_json(data.get("gate"))


# ---- the sensor ---------------------------------------------------------------------------


def build_thermal_gate_sensor(
    heavy_asset_keys: Sequence[AssetKey | str],
    *,
    name: str = DEFAULT_SENSOR_NAME,
    priority: Priority = "normal",
    minimum_interval_seconds: int = 60,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
) -> SensorDefinition:
    """A sensor that launches the stale or missing ``heavy_asset_keys`` when the gate is clear.

    The hardware resource is taken from the ``hardware`` resource key.
    Starts STOPPED by default: turning on something that launches training is an operator's
    decision (the daemon would otherwise train every missing model as soon as it starts).
    """
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {PRIORITIES}, got {priority!r}")
    keys = [AssetKey.from_user_string(k) if isinstance(k, str) else k for k in heavy_asset_keys]
    if not keys:
        raise ValueError("build_thermal_gate_sensor needs at least one heavy asset key")

    @sensor(
        name=name,
        asset_selection=AssetSelection.assets(*keys),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Requests stale or missing heavy assets only while the hardware gate is clear; "
            "otherwise skips with the readings and the reason."
        ),
    )
    def _thermal_gate(context: SensorEvaluationContext, hardware: HardwareResource) -> SensorResult:
        snap = hardware.snapshot()
        policy = GatePolicy.from_resource(hardware)
        result = evaluate(policy, decode_cursor(context.cursor), snap, priority)
        cursor = encode_cursor(result.state, result)
        readings = snap.summary()
        if result.verdict == "hold":
            return SensorResult(
                skip_reason=SkipReason(
                    f"Hardware gate {result.state.phase}: {result.reason}. Readings: {readings}"
                ),
                cursor=cursor,
            )
        if context.repository_def is None:
            return SensorResult(
                skip_reason=SkipReason(
                    "Hardware gate clear, but the sensor was evaluated without its definitions "
                    "so staleness cannot be resolved."
                ),
                cursor=cursor,
            )
        facts = read_facts(context.repository_def, keys)
        unknown = [k.to_user_string() for k in keys if k.to_user_string() not in facts]
        if unknown:
            raise ValueError(
                f"{name}: heavy asset(s) not in the definitions: {', '.join(unknown)}; "
                "pass build_thermal_gate_sensor the keys of assets the code location defines."
            )
        latest = read_latest(context.instance, facts)
        heavy = [facts[k.to_user_string()] for k in keys]
        judged = {a.key: staleness(a, facts, latest) for a in heavy}
        stale = [a for a in heavy if judged[a.key].status != "fresh"]
        if not stale:
            return SensorResult(
                skip_reason=SkipReason(
                    f"Hardware gate clear: {result.reason}; no heavy asset is stale or "
                    f"missing. Readings: {readings}"
                ),
                cursor=cursor,
            )
        tags = {
            names.TAG_GATE_DECISION: result.verdict,
            names.TAG_GATE_STATE: result.state.phase,
            names.TAG_GATE_LEVEL: result.level,
            names.TAG_GATE_PRIORITY: priority,
            names.TAG_GATE_THERMAL_STATE: snap.thermal_state,
        }
        why = "; ".join(f"{a.key} {judged[a.key].status}: {judged[a.key].reason}" for a in stale)
        context.log.info(f"hardware gate clear: requesting {why} ({result.reason}; {readings})")
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=run_key(stale, latest),
                    asset_selection=[AssetKey.from_user_string(a.key) for a in stale],
                    tags=tags,
                )
            ],
            cursor=cursor,
        )

    return _thermal_gate


HEAVY_ASSET_KEYS: tuple[AssetKey, ...] = (
    AssetKey(names.CANDIDATE_ASSET),
    AssetKey(names.BENTO_ASSET),
)
"""The project's heavy assets (pool ``heavy``): training and the bento build."""

thermal_gate_sensor = build_thermal_gate_sensor(HEAVY_ASSET_KEYS)
"""The sensor for the project's definitions (needs the ``hardware`` resource)."""

__all__ = [
    "DEFAULT_SENSOR_NAME",
    "HEAVY_ASSET_KEYS",
    "build_thermal_gate_sensor",
    "decode_cursor",
    "encode_cursor",
    "thermal_gate_sensor",
]
