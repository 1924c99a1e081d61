"""Which node's model deployment takes the next request: smooth weighted round-robin.

The gateway holds one model deployment per node per served version; each node's weight is the
number of its replicas running now (Serve's status), so a node whose ceiling dropped to one
replica gets a third of the requests beside a node with two, and a node with none (gone, or not
started yet) gets nothing. Smooth weighted round-robin (nginx's) spreads a node's turns evenly
instead of in bursts and is deterministic, so a test can replay it. Plain Python: no Ray import.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping


class NodeBalancer:
    """Picks a node for each request in proportion to ``weights``."""

    def __init__(self) -> None:
        self._credit: dict[str, float] = {}

    def pick(self, weights: Mapping[str, int], avoid: Collection[str] = ()) -> str | None:
        """The next node among those with a positive weight not in ``avoid`` (a node that just
        failed a request); ``None`` when there is none."""
        live = {node: w for node, w in weights.items() if w > 0 and node not in avoid}
        if not live:
            return None
        for gone in set(self._credit) - set(live):
            del self._credit[gone]  # a node that comes back starts even
        total = sum(live.values())
        for node, weight in live.items():
            self._credit[node] = self._credit.get(node, 0.0) + weight
        chosen = max(sorted(live), key=lambda node: self._credit[node])
        self._credit[chosen] -= total
        return chosen


def routing_weights(running: Mapping[str, int], nodes: Collection[str]) -> dict[str, int]:
    """Each node's weight from its running replica counts; while no node reports a running
    replica (the application is starting, or the status is unknown) every node weighs one, so
    requests wait in Serve's queue for the first replica rather than being refused."""
    weights = {node: max(0, int(running.get(node, 0))) for node in nodes}
    if not any(weights.values()):
        return dict.fromkeys(nodes, 1)
    return weights
