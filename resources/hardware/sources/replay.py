"""Replayed readings: a recorded trace stands in for the machine (tests, demos, incident replays).

The trace is also the clock (each reading's ``taken_at``), so a replay drives the gate's
hysteresis through exactly the timings it recorded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from resources.hardware.types import HardwareSnapshot


class ReplaySource:
    """Replays recorded readings, one per ``read()``; the last reading repeats forever.

    Time comes from the readings (``taken_at``), so a trace is also the clock. When
    ``position_path`` is given, the position survives across processes and fresh resource
    objects (a Dagster step retry or a sensor tick is a fresh call).
    """

    def __init__(
        self, readings: Sequence[HardwareSnapshot], position_path: Path | None = None
    ) -> None:
        if not readings:
            raise ValueError("a replay trace needs at least one reading")
        self._readings = list(readings)
        self._position_path = position_path
        self._position = 0

    @classmethod
    def from_trace_file(cls, path: str | os.PathLike[str]) -> ReplaySource:
        """Load a JSON trace: ``{"start": <epoch s>, "readings": [{"at": <s>, ...fields}]}``.

        Each reading is a partial snapshot; ``at`` is seconds after ``start`` (default 0).
        The position is kept next to the trace in ``<trace>.position``.
        """
        trace_path = Path(path)
        try:
            document = json.loads(trace_path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read hardware replay trace {trace_path}: {exc}") from exc
        return cls(
            parse_trace(document, str(trace_path)),
            trace_path.with_name(trace_path.name + ".position"),
        )

    def _load_position(self) -> int:
        if self._position_path is None:
            return self._position
        try:
            return int(self._position_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _store_position(self, position: int) -> None:
        if self._position_path is None:
            self._position = position
            return
        tmp = self._position_path.with_name(self._position_path.name + f".{os.getpid()}.tmp")
        tmp.write_text(str(position))
        os.replace(tmp, self._position_path)

    def read(self) -> HardwareSnapshot:
        position = self._load_position()
        reading = self._readings[min(position, len(self._readings) - 1)]
        self._store_position(position + 1)
        return reading


def parse_trace(document: Any, origin: str = "trace") -> list[HardwareSnapshot]:
    """Turn a trace document into snapshots; errors name the offending reading."""
    if not isinstance(document, Mapping) or not isinstance(document.get("readings"), list):
        raise ValueError(f"{origin}: a replay trace is an object with a 'readings' list")
    start = float(document.get("start", 0.0))
    snapshots = []
    for i, raw in enumerate(document["readings"]):
        if not isinstance(raw, Mapping):
            raise ValueError(f"{origin}: reading {i} is not an object")
        data = dict(raw)
        offset = data.pop("at", None)
        if offset is None and "taken_at" not in data:
            raise ValueError(f"{origin}: reading {i} needs 'at' (seconds after start)")
        if offset is not None:
            data["taken_at"] = start + float(offset)
        data.setdefault("source", "replay")
        if data.get("thermal_state", "unknown") != "unknown":
            data.setdefault("thermal_source", "replay")
        try:
            snapshots.append(HardwareSnapshot.from_dict(data))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{origin}: reading {i}: {exc}") from exc
    return snapshots
