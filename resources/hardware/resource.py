"""``HardwareResource``: reads the machine for heavy assets, the gate and training settings.

The resource only picks and configures a source (``resources.hardware.sources``) and hands its
snapshot to whoever asked; the snapshot types live in ``resources.hardware.types``, the training
recommendation in ``resources.hardware.recommend`` and the gate's settings in
``resources.hardware.gate_settings``, so none of them imports this module (no cycle).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from dagster import ConfigurableResource
from pydantic import Field

from resources.hardware.gate_settings import GateSettings
from resources.hardware.recommend import TrainingRecommendation, recommend_training
from resources.hardware.sources import macos
from resources.hardware.sources.linux import LinuxSource
from resources.hardware.sources.replay import ReplaySource
from resources.hardware.types import HardwareSnapshot, HardwareSource, unknown_snapshot

SourceName = Literal["auto", "macos", "linux", "replay"]


class HardwareResource(ConfigurableResource):
    """Reads the machine for heavy assets, the thermal gate and training recommendations.

    Defaults read the real machine. ``source="replay"`` with ``replay_trace_path`` replays a
    recorded trace (tests, demos); ``macos_fixture_path`` feeds canned command outputs to the
    macOS reader; ``proc_root``/``sys_root`` point the Linux reader at a fake tree.
    ``gate`` configures ``efficientai_assets.gate`` (see docs/hardware-gate.md).
    """

    source: SourceName = Field(
        default="auto", description="auto picks macos on Darwin, linux elsewhere."
    )
    replay_trace_path: str | None = Field(
        default=None, description="JSON trace replayed one reading per snapshot (source=replay)."
    )
    macos_fixture_path: str | None = Field(
        default=None, description="JSON of canned macOS command outputs instead of running them."
    )
    proc_root: str = Field(default="/proc", description="procfs root for the Linux reader.")
    sys_root: str = Field(default="/sys", description="sysfs root for the Linux reader.")
    command_timeout_seconds: float = Field(
        default=1.0, gt=0, le=30, description="Timeout of each macOS command (run in parallel)."
    )
    probe_accelerators: bool = Field(
        default=True, description="Import mlx/pynvml to see Metal, MLX GPU and CUDA."
    )
    gate: GateSettings = Field(
        default_factory=GateSettings,
        description="Thresholds and timings of the hardware gate for heavy work.",
    )

    def build_source(self) -> HardwareSource:
        """The source named by config; raises ValueError on inconsistent config."""
        name = self.source
        if name == "auto":
            name = "macos" if sys.platform == "darwin" else "linux"
        if name == "replay":
            if not self.replay_trace_path:
                raise ValueError("source='replay' needs replay_trace_path")
            return ReplaySource.from_trace_file(self.replay_trace_path)
        if name == "macos":
            return self._macos_source()
        real_tree = self.proc_root == "/proc" and self.sys_root == "/sys"
        return LinuxSource(
            proc_root=Path(self.proc_root),
            sys_root=Path(self.sys_root),
            use_psutil=real_tree,
            probe_accelerators=self.probe_accelerators and real_tree,
        )

    def _macos_source(self) -> HardwareSource:
        """The macOS reader on real commands, or on canned outputs when a fixture is given."""
        if self.macos_fixture_path:
            runner, native = macos.load_macos_fixture(self.macos_fixture_path)
            return macos.MacOSSource(runner, native_thermal=native, probe_accelerators=False)
        return macos.MacOSSource(
            macos.SubprocessRunner(self.command_timeout_seconds),
            native_thermal=macos.ns_process_info_thermal_state,
            probe_accelerators=self.probe_accelerators,
        )

    def snapshot(self) -> HardwareSnapshot:
        """Read the machine now. Never raises: a broken source yields an unknown snapshot."""
        try:
            snap = self.build_source().read()
        except Exception as exc:  # a reader must never take a step or a sensor down
            return unknown_snapshot(f"hardware source {self.source!r} failed: {exc}")
        return snap

    def recommend_training(
        self, n_samples: int, n_features: int, hidden_units: int
    ) -> TrainingRecommendation:
        """Batch size and device for training on this machine now (see recommend_training)."""
        return recommend_training(self.snapshot(), n_samples, n_features, hidden_units)


__all__ = ["HardwareResource", "SourceName"]
