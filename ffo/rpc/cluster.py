"""`ffo status --cluster`: every node's instances side by side, and split brain said loudly (pure).

The node's own instances come from its VRRP actor's last report; the peers' from the RPC actor's view (their
last pong). A split brain is two or more *reachable* nodes (this one included) each master of the same
(VRID, family): an unreachable peer's last report is stale, so it is shown but never counted. Within one side
of a partition this cannot see the other side: the JSON marks those peers unreachable, which is the honest
answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ffo.bus.convert import unstructure
from ffo.rpc.events import ClusterStatus


def cluster_view(node: str, instances: Sequence[object], cluster: ClusterStatus | None) -> dict[str, Any]:
    """CLI.md's JSON: ``{"nodes": [...], "split_brain": [...]}``; this node first, then its peers by name.

    `instances` are this node's, already in their JSON form (the kernel's `ffo status` entries)."""
    nodes: list[dict[str, Any]] = [
        {
            "name": node,
            "reachable": True,
            "rtt_ms": 0.0,
            "clock_offset_ms": 0.0,
            "instances": list(instances),
        }
    ]
    for peer in sorted(cluster.peers if cluster is not None else (), key=lambda item: item.name):
        nodes.append(
            {
                "name": peer.name,
                "reachable": peer.reachable,
                "rtt_ms": peer.rtt_ms,
                "clock_offset_ms": peer.clock_offset_ms,
                "instances": [unstructure(instance) for instance in peer.instances],
                "last_heard_ms": peer.last_heard_ms,
            }
        )
    return {"nodes": nodes, "split_brain": split_brain(nodes)}


def split_brain(nodes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    masters: defaultdict[tuple[int, str], list[str]] = defaultdict(list)
    for entry in nodes:
        if not entry["reachable"]:
            continue
        for instance in entry["instances"]:
            if instance.get("state") == "MASTER":
                masters[(int(instance["vrid"]), str(instance.get("family", "")))].append(str(entry["name"]))
    return [
        {"vrid": vrid, "family": family, "masters": sorted(names)}
        for (vrid, family), names in sorted(masters.items())
        if len(names) > 1
    ]
