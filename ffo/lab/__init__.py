"""The namespace lab: nodes on a bridged segment for the real-network tests, `ffo lab` and the benchmarks."""

from ffo.lab.namespaces import LabError, cleanup_stale, list_namespaces, netns_unavailable, stop_process
from ffo.lab.netns import (
    Lab,
    NodeSpec,
    client_node,
    default_nodes,
)
from ffo.lab.nsenter import inside
from ffo.lab.ping import ping

__all__ = [
    "Lab",
    "LabError",
    "NodeSpec",
    "cleanup_stale",
    "client_node",
    "default_nodes",
    "inside",
    "list_namespaces",
    "netns_unavailable",
    "ping",
    "stop_process",
]
