"""The hardware gate's settings: one typed, validated config block, nested in ``HardwareResource``.

The gate's policy (``efficientai_assets.gate.policy.GatePolicy``) is built from these settings as
they are, so every threshold and timing is declared, defaulted and validated here once. In run
config they sit under the resource's ``gate`` key::

    resources:
      hardware:
        config:
          gate:
            cooldown_seconds: 600
"""

from __future__ import annotations

from dagster import Config
from pydantic import Field

from resources.hardware.types import GateThermalLimit, GateUnknownBehaviour


class GateSettings(Config):
    """Thresholds and timings of the hardware gate (see docs/hardware-gate.md)."""

    bad_readings_to_hold: int = Field(
        default=3, ge=1, description="Consecutive bad readings that put the gate in hold."
    )
    cooldown_seconds: float = Field(
        default=300.0, ge=0, description="Seconds of good readings needed to leave hold."
    )
    hold_thermal_state: GateThermalLimit = Field(
        default="serious", description="Thermal state at or above which a reading is bad."
    )
    unknown_behaviour: GateUnknownBehaviour = Field(
        default="allow", description="What an unknown thermal state does (recorded either way)."
    )
    psi_memory_some_max: float = Field(
        default=20.0, ge=0, le=100, description="Memory PSI some avg10 (%) above which: bad."
    )
    psi_memory_full_max: float = Field(
        default=5.0, ge=0, le=100, description="Memory PSI full avg10 (%) above which: bad."
    )
    psi_cpu_some_max: float = Field(
        default=75.0, ge=0, le=100, description="CPU PSI some avg10 (%) above which: bad."
    )
    gpu_slowdown_margin_c: float = Field(
        default=5.0, ge=0, description="A GPU this close (C) to its slowdown threshold: bad."
    )
    hold_on_battery: bool = Field(default=False, description="Treat battery power as bad.")
    hold_in_low_power_mode: bool = Field(default=False, description="Treat low-power mode as bad.")
    retry_initial_seconds: float = Field(
        default=30.0, gt=0, description="First wait before the step re-checks the gate."
    )
    retry_max_seconds: float = Field(
        default=600.0, gt=0, description="Longest single wait between re-checks."
    )
    retry_jitter: float = Field(
        default=0.2, ge=0, lt=1, description="Relative jitter on each wait (0.2 = +/-20%)."
    )
    max_wait_seconds: float = Field(
        default=7200.0, gt=0, description="Total time a step may be held before it fails."
    )
    state_dir: str | None = Field(
        default=None,
        description="Where the in-step gate keeps its state; default: the Dagster instance's "
        "storage directory.",
    )
