"""`ffo status --cluster`'s view: nodes side by side; split brain only among reachable nodes."""

from __future__ import annotations

import attrs

from ffo.bus.convert import unstructure
from ffo.rpc.cluster import cluster_view
from ffo.rpc.events import ClusterStatus, PeerStatus
from ffo.vrrp.status import InstanceStatus

BASE = InstanceStatus(
    name="web",
    vrid=51,
    family="IPv4",
    state="BACKUP",
    priority=100,
    effective_priority=100,
    master="192.0.2.1",
    vips=("192.0.2.100/24",),
    timer_lateness_ms={"p50": 0.0, "p99": 0.0, "max": 0.0},
    counters={},
)


def _peer(name: str, state: str, *, reachable: bool = True, vrid: int = 51) -> PeerStatus:
    return PeerStatus(
        name=name,
        endpoint=f"tcp://{name}:7000",
        reachable=reachable,
        rtt_ms=0.3 if reachable else None,
        clock_offset_ms=1.5 if reachable else None,
        instances=(attrs.evolve(BASE, state=state, vrid=vrid),),
        last_heard_ms=10.0,
    )


def test_own_node_first_then_peers_by_name_and_no_split_brain() -> None:
    own = [unstructure(attrs.evolve(BASE, state="MASTER"))]
    view = cluster_view(
        "a", own, ClusterStatus(node="a", peers=(_peer("c", "BACKUP"), _peer("b", "BACKUP")), counters={})
    )
    assert [node["name"] for node in view["nodes"]] == ["a", "b", "c"]
    assert view["nodes"][1]["clock_offset_ms"] == 1.5 and view["nodes"][1]["instances"][0]["state"] == "BACKUP"
    assert view["split_brain"] == []


def test_two_reachable_masters_of_one_vrid_are_a_split_brain() -> None:
    own = [unstructure(attrs.evolve(BASE, state="MASTER"))]
    peers = (_peer("b", "MASTER"), _peer("c", "MASTER", vrid=52))
    view = cluster_view("a", own, ClusterStatus(node="a", peers=peers, counters={}))
    assert view["split_brain"] == [{"vrid": 51, "family": "IPv4", "masters": ["a", "b"]}]


def test_an_unreachable_peers_stale_master_is_shown_but_not_counted() -> None:
    own = [unstructure(attrs.evolve(BASE, state="MASTER"))]
    view = cluster_view("a", own, ClusterStatus(node="a", peers=(_peer("b", "MASTER", reachable=False),), counters={}))
    assert view["nodes"][1]["reachable"] is False and view["nodes"][1]["instances"][0]["state"] == "MASTER"
    assert view["split_brain"] == []


def test_without_rpc_the_view_is_this_node_alone() -> None:
    view = cluster_view("a", [], None)
    assert [node["name"] for node in view["nodes"]] == ["a"] and view["split_brain"] == []
