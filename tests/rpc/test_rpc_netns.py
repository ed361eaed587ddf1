"""RPC between real VRRP daemons in lab namespaces: shared history, the cluster view, partitions, split brain.

Each node runs `ffo run` with one VRRP instance (VRID 51, 100 ms advertisements) and RPC links over CurveZMQ
to the other nodes on the same segment (`tests.rpc.netns_support`). What is checked is what an operator sees:
`ffo status --cluster`, each node's event files and its replicas of the others, and `ffo replay`.

Times are bounded, never measured against the wall: the link-down bound is checked on the daemons' own
records (a ``rpc.peer_down`` record's monotonic stamp against the moment the partition was made; the test and
the daemons share CLOCK_MONOTONIC), and every other condition is polled with a generous timeout.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from ffo.lab import Lab, netns_unavailable
from tests.lab.support import PREFIX
from tests.rpc.netns_support import (
    HEARTBEAT_S,
    LIVENESS,
    VRID,
    LabRpcNode,
    all_replicas_match,
    block_vrrp,
    generate_keys,
    masters,
    reachable,
    replica_matches,
    unblock_vrrp,
)
from tests.rpc.support import wait_for

pytestmark = pytest.mark.netns

NAMES = ["n1", "n2", "n3"]
PRIORITIES = {"n1": 200, "n2": 150, "n3": 100}
DOWN_SLACK_S = 2.0
"""Beyond the link bound (3 heartbeats of silence): the actor's 50 ms tick and a busy 2-core machine."""


@pytest.fixture(scope="module")
def keys() -> Iterator[Path]:
    """Every node's key pair, made once for the module with `ffo keygen`."""
    path = Path(tempfile.mkdtemp(prefix="ffo-k-"))
    generate_keys(path, NAMES)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ffo-n-"))  # short: the control socket's ipc:// path is limited
    yield path
    shutil.rmtree(path, ignore_errors=True)


def cluster_of(lab: Lab, root: Path, keys: Path, count: int) -> list[LabRpcNode]:
    nodes = [LabRpcNode(lab=lab, name=name, root=root, keys=keys, priority=PRIORITIES[name]) for name in NAMES[:count]]
    for node in nodes:
        node.write_config([peer for peer in nodes if peer is not node])
    return nodes


@pytest.fixture
def trio(keys: Path, root: Path) -> Iterator[list[LabRpcNode]]:
    """Three nodes, configured, not started; stopped (and their namespaces deleted) whatever the test did."""
    yield from _running_lab(keys, root, 3)


@pytest.fixture
def duo(keys: Path, root: Path) -> Iterator[list[LabRpcNode]]:
    yield from _running_lab(keys, root, 2)


def _running_lab(keys: Path, root: Path, count: int) -> Iterator[list[LabRpcNode]]:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with Lab(PREFIX, nodes=count) as lab:
        nodes = cluster_of(lab, root, keys, count)
        try:
            yield nodes
        finally:
            for node in nodes:
                node.stop()


def start_and_converge(nodes: list[LabRpcNode]) -> None:
    """Start every node; wait for n1 (the highest priority) to be master and every replica to be complete."""
    for node in nodes:
        node.start()
    wait_for(lambda: [node.state() for node in nodes] == ["MASTER"] + ["BACKUP"] * (len(nodes) - 1), "the election")
    wait_for(lambda: all_replicas_match(nodes), "every node to hold every other node's history")


def assert_cluster_whole(node: LabRpcNode, names: list[str]) -> None:
    """The node's `ffo status --cluster`: everyone reachable with their instance, one master, exit 0."""

    def whole() -> tuple[int, dict[str, Any]] | None:
        answer = node.cluster()
        if answer is None or not all(reachable(answer[1]).values()) or masters(answer[1]) != ["n1"]:
            return None
        return answer

    code, view = wait_for(whole, f"{node.name}'s cluster view to be whole")
    assert code == 0 and view["split_brain"] == [], view
    assert sorted(reachable(view)) == names
    for entry in view["nodes"]:
        (instance,) = entry["instances"]
        assert instance["vrid"] == VRID and instance["family"] == "IPv4", entry
        assert instance["state"] == ("MASTER" if entry["name"] == "n1" else "BACKUP"), entry


def stop_and_replay(nodes: list[LabRpcNode]) -> None:
    """The closing invariant: every daemon stops cleanly and its own event log replays without divergence."""
    for node in nodes:
        assert node.stop() == 0, node.log_text()[-2000:]
    for node in nodes:
        done = node.replay()
        assert done.returncode == 0, f"{node.name}: {done.stdout}\n{done.stderr}"
        assert done.stdout.splitlines()[-1].endswith(" 0 divergences"), done.stdout


def test_three_nodes_hold_each_others_history_and_agree_on_one_master(trio: list[LabRpcNode]) -> None:
    start_and_converge(trio)
    for node in trio:
        assert_cluster_whole(node, NAMES)
    for holder in trio:  # what was compared includes each node's VRRP history: its election, transition by transition
        for source in trio:
            if holder is not source:
                held = [row for row in holder.replica_of(source)["vrrp"] if row[5] == "vrrp.transition"]
                assert held and held[-1][7]["step"]["effects"][0]["to_role"] == source.state(), held
    stop_and_replay(trio)


def test_a_partition_is_seen_within_the_link_bound_and_heals_into_one_history(trio: list[LabRpcNode]) -> None:
    n1, n2, n3 = trio
    start_and_converge(trio)
    lab = n1.lab
    downs_before = {node.name: len(node.recorded("rpc.peer_down")) for node in trio}

    partitioned_ns = time.monotonic_ns()
    lab.loss("n1", 100)  # a silent partition: n1's carrier stays up, so its VRRP stays master
    wait_for(lambda: n2.state() == "MASTER", "n2 to take over on its side")
    assert n1.state() == "MASTER"  # two masters, one per side

    bound_ns = int((LIVENESS * HEARTBEAT_S + DOWN_SLACK_S) * 1e9)
    for node, cut_off in ((n1, {"n2", "n3"}), (n2, {"n1"}), (n3, {"n1"})):
        seen = partial(new_downs, node, downs_before[node.name], cut_off)
        rows = wait_for(seen, f"{node.name} to mark {sorted(cut_off)} down")
        assert {row[7]["peer"] for row in rows} == cut_off, rows  # n2 and n3 still hear each other
        for row in rows:
            assert 0 < row[4] - partitioned_ns <= bound_ns, (node.name, row, (row[4] - partitioned_ns) / 1e9)
    for node, cut_off in ((n1, {"n2", "n3"}), (n2, {"n1"}), (n3, {"n1"})):
        view = wait_for(node.cluster, f"{node.name}'s view")[1]
        assert {name for name, up in reachable(view).items() if not up} == cut_off, view
    n1_partition_head = n1.own_records()["rpc"][-1][2]  # n1's rpc stream, written while it was cut off

    lab.clear_loss("n1")
    wait_for(lambda: n2.state() == "BACKUP" and n1.state() == "MASTER", "n1 to be the one master again")
    wait_for(lambda: all_replicas_match(trio), "the replicas to converge after the heal")
    for node in trio:
        assert_cluster_whole(node, NAMES)
    for holder in (n2, n3):  # what n1 recorded alone reached both: its links going down, in order
        held = holder.replica_of(n1)["rpc"]
        assert held[-1][2] >= n1_partition_head
        assert {row[7]["peer"] for row in held if row[5] == "rpc.peer_down"} >= {"n2", "n3"}
    takeovers = [row for row in n1.replica_of(n2)["vrrp"] if row[5] == "vrrp.transition"]
    assert takeovers == [row for row in n2.own_records()["vrrp"] if row[5] == "vrrp.transition"]
    assert len(takeovers) >= 3  # n2's INITIALIZE -> BACKUP -> MASTER (partition) -> BACKUP (heal), all at n1
    stop_and_replay(trio)


def new_downs(node: LabRpcNode, skip: int, peers: set[str]) -> list[tuple[Any, ...]] | None:
    """The node's ``rpc.peer_down`` records after the first `skip`, once they name every one of `peers`."""
    rows = node.recorded("rpc.peer_down")[skip:]
    return rows if {row[7]["peer"] for row in rows} >= peers else None


def split_brain_seen(node: LabRpcNode) -> tuple[int, dict[str, Any]] | None:
    """The node's cluster view and exit code, once the view lists a split brain."""
    answer = node.cluster()
    return answer if answer is not None and answer[1]["split_brain"] else None


def test_two_masters_that_still_reach_each_other_are_a_split_brain(duo: list[LabRpcNode]) -> None:
    n1, n2 = duo
    start_and_converge(duo)
    lab = n1.lab
    for node in duo:  # VRRP (IP protocol 112) no longer crosses the segment; RPC's TCP still does
        block_vrrp(lab, node.name)
    wait_for(lambda: n2.state() == "MASTER", "n2 to stop hearing n1 and take over")

    for node in duo:
        code, view = wait_for(partial(split_brain_seen, node), f"{node.name} to flag the split brain")
        assert code == 1, view
        assert view["split_brain"] == [{"vrid": VRID, "family": "IPv4", "masters": ["n1", "n2"]}]
        assert all(reachable(view).values()), view  # the RPC links never went down
        code, text = node.cluster_text()
        assert code == 1 and f"SPLIT BRAIN: VRID {VRID} (IPv4) has 2 masters: n1, n2" in text, text

    for node in duo:
        unblock_vrrp(lab, node.name)
    wait_for(lambda: n2.state() == "BACKUP", "n2 to hear n1 again and step back")
    for node in duo:
        assert_cluster_whole(node, ["n1", "n2"])
    assert not any(node.recorded("rpc.peer_down") for node in duo)  # the split brain was VRRP's alone
    wait_for(lambda: replica_matches(n1, n2) and replica_matches(n2, n1), "the replicas to converge")
    stop_and_replay(duo)
