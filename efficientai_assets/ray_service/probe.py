"""A hardware probe per node: a tiny Ray actor pinned to a declared node that reads that machine.

The watcher on the head cannot read another machine's thermal state or memory pressure, so each
node runs a ``NodeProbe`` (no CPUs reserved, a sliver of the node's declared resource so it can
only run there) that returns ``HardwareResource().snapshot()`` of its own machine. ``NodeProbes``
keeps one probe per live node — new nodes get one, gone nodes' are dropped — and reads them all
at once; a probe that fails or does not answer in time yields an unknown reading naming the node,
which the gate judges by its ``unknown_behaviour`` like any unknown reading.

Imports Ray at the top: the code location never imports this module (the watcher imports it
inside the functions that start probes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ray

from resources.hardware.types import HardwareSnapshot, unknown_snapshot
from resources.ray.cluster import node_resource

PROBE_SHARE = 0.001  # of the node's declared resource: pins the probe, reserves nothing real
READ_TIMEOUT_S = 10.0


@ray.remote(num_cpus=0)
class NodeProbe:
    """Reads the machine it runs on (the first reading also imports the hardware readers)."""

    def __init__(self, hardware_config: dict[str, Any]) -> None:
        self.hardware_config = hardware_config

    def read(self) -> dict[str, Any]:
        from resources.hardware.resource import HardwareResource

        return HardwareResource(**self.hardware_config).snapshot().to_dict()

    def node_id(self) -> str:
        return str(ray.get_runtime_context().get_node_id())


class NodeProbes:
    """One probe per live node, kept in step with the cluster's declared nodes."""

    def __init__(self, hardware_config: Mapping[str, Any] | None = None) -> None:
        self.hardware_config = dict(hardware_config or {})
        self.probes: dict[str, Any] = {}

    def sync(self, nodes: list[str]) -> None:
        """Start probes on new nodes and forget those of nodes that are gone."""
        for gone in set(self.probes) - set(nodes):
            ray.kill(self.probes.pop(gone), no_restart=True)
        for node in sorted(set(nodes) - set(self.probes)):
            self.probes[node] = NodeProbe.options(  # type: ignore[attr-defined]
                resources={node_resource(node): PROBE_SHARE}
            ).remote(self.hardware_config)

    def read(self, timeout_s: float = READ_TIMEOUT_S) -> dict[str, HardwareSnapshot]:
        """Every probed node's reading, taken in parallel; unknown where a probe failed."""
        pending = {node: probe.read.remote() for node, probe in self.probes.items()}
        ready, _ = ray.wait(list(pending.values()), num_returns=len(pending), timeout=timeout_s)
        done = set(ready)
        out: dict[str, HardwareSnapshot] = {}
        for node, ref in pending.items():
            if ref not in done:
                out[node] = unknown_snapshot(f"the probe on node {node} gave no reading in time")
                continue
            try:
                out[node] = HardwareSnapshot.from_dict(ray.get(ref))
            except Exception as error:  # a probe that died: unknown, named, never fatal
                out[node] = unknown_snapshot(f"the probe on node {node} failed: {error}")
        return out

    def stop(self) -> None:
        self.sync([])
