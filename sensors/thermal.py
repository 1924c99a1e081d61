"""The thermal gate sensor: requests heavy assets only when the machine is clear.

Each tick reads the hardware once, advances the gate's hysteresis (kept in the cursor as
JSON), and either requests one run of the heavy assets that are stale or missing, or skips
with the readings and the reason, which the UI shows on the tick.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.loader import LoadingContext

from efficientai_assets.gate.policy import (
    PRIORITIES,
    Evaluation,
    GatePolicy,
    GateState,
    Priority,
    evaluate,
)
from resources.hardware.resource import HardwareResource, HardwareSnapshot

if TYPE_CHECKING:
    from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph

CURSOR_VERSION = 1
TAG_PREFIX = "efficientai/"
DEFAULT_SENSOR_NAME = "thermal_gate_sensor"


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


class _TickLoadingContext(LoadingContext):
    """Per-tick batch-loading caches for Dagster's stale-status resolver."""

    def __init__(self, instance: DagsterInstance) -> None:
        self._instance = instance
        self._loaders: dict[type, Any] = {}

    @property
    def instance(self) -> DagsterInstance:
        return self._instance

    @property
    def loaders(self) -> dict[type, Any]:
        return self._loaders


def _stale_or_missing(
    context: SensorEvaluationContext, asset_graph: BaseAssetGraph, keys: Sequence[AssetKey]
) -> list[AssetKey]:
    """Keys Dagster itself marks STALE or MISSING (the same resolver the UI's badges use)."""
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus

    resolver = CachingStaleStatusResolver(
        context.instance, asset_graph, _TickLoadingContext(context.instance)
    )
    return [
        key for key in keys if resolver.get_status(key) in (StaleStatus.STALE, StaleStatus.MISSING)
    ]


def _run_key(
    context: SensorEvaluationContext, asset_graph: BaseAssetGraph, keys: Sequence[AssetKey]
) -> str:
    """Same stale set + same latest materializations of it and its parents -> same key.

    Dagster launches a run key once per sensor, so a tick never duplicates a queued or
    running request, and a failed run is not retried until something it depends on changes:
    heavy work must not crash-loop every tick.
    """
    involved = set(keys)
    for key in keys:
        involved.update(asset_graph.get(key).parent_keys)
    latest: dict[AssetKey, int] = {}
    for record in context.instance.get_asset_records(list(involved)):
        last = record.asset_entry.last_materialization_record
        if last is not None:
            latest[record.asset_entry.asset_key] = last.storage_id
    parts = [",".join(sorted(k.to_user_string() for k in keys))]
    parts += [
        f"{k.to_user_string()}@{latest.get(k, 'missing')}"
        for k in sorted(involved, key=lambda k: k.to_user_string())
    ]
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return f"thermal-gate-{digest}"


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
        hw = hardware
        policy = GatePolicy.from_resource(hw)
        snap: HardwareSnapshot = hw.snapshot()
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
        graph = context.repository_def.asset_graph
        unknown = [k for k in keys if not graph.has(k)]
        if unknown:
            raise ValueError(
                f"{name}: heavy asset(s) not in the definitions: "
                f"{', '.join(k.to_user_string() for k in unknown)}"
            )
        stale = _stale_or_missing(context, graph, keys)
        if not stale:
            return SensorResult(
                skip_reason=SkipReason(
                    f"Hardware gate clear: {result.reason}; no heavy asset is stale or "
                    f"missing. Readings: {readings}"
                ),
                cursor=cursor,
            )
        tags = {
            f"{TAG_PREFIX}gate.decision": result.verdict,
            f"{TAG_PREFIX}gate.state": result.state.phase,
            f"{TAG_PREFIX}gate.level": result.level,
            f"{TAG_PREFIX}gate.priority": priority,
            f"{TAG_PREFIX}hardware.thermal_state": snap.thermal_state,
        }
        context.log.info(
            f"hardware gate clear: requesting {', '.join(k.to_user_string() for k in stale)} "
            f"({result.reason}; {readings})"
        )
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=_run_key(context, graph, stale), asset_selection=stale, tags=tags
                )
            ],
            cursor=cursor,
        )

    return _thermal_gate


HEAVY_ASSET_KEYS: tuple[AssetKey, ...] = (AssetKey("candidate_model"), AssetKey("model_bento"))
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
