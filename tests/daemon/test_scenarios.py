"""Failure scenarios with real `ffo run` daemons in lab namespaces, each once (IPv4), each ending with `finish`.

Three nodes and a cut cable; the kernel process SIGKILLed (its actors live on long enough to say goodbye); the
whole daemon SIGKILLed (nothing is left to say anything); preemption on and off; the address owner; unicast
peers. Where timing is the point the advertisement interval is 1 s, so that Skew_Time (~0.6 s at priority 100)
and Master_Down_Interval (3 x 1 s + Skew_Time) cannot be mistaken for each other; elsewhere it is 100 ms. Times
are compared on CLOCK_MONOTONIC, which every namespace shares: the records' ``mono_ns`` and this test's own
`time.monotonic_ns` are on one axis.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from ffo.lab import Lab
from tests.daemon.support import (
    TIMEOUT_S,
    VIP4,
    Node,
    VrrpCapture,
    finish,
    holders,
    lab,
    make_lab,
    root,
    to_role,
    wait_for,
)

__all__ = ["lab", "root"]  # the fixtures
pytestmark = pytest.mark.netns

N1, N2, N3 = "192.0.2.11", "192.0.2.12", "192.0.2.13"
S = 1_000_000_000


def test_three_nodes_the_next_priority_takes_over_a_cut_master_and_the_lowest_stays_backup(root: Path) -> None:
    """200/150/100 at 1 s: the 150's Skew_Time is 195 ms shorter than the 100's, so the 150 wins the race to
    replace a silent master by a margin no scheduling delay here comes near; the 100 then hears the 150."""
    with make_lab(3) as lab3:
        n1, n2, n3 = nodes = [
            Node(lab3, name, root, priority=priority, interval="1s")
            for name, priority in (("n1", 200), ("n2", 150), ("n3", 100))
        ]
        for node in nodes:
            node.start()
        n1.wait_state("MASTER")
        n2.wait_state("BACKUP", master=N1)
        n3.wait_state("BACKUP", master=N1)
        wait_for(lambda: holders(lab3, VIP4) == ["n1"], "the VIP on n1")
        n3_transitions = len(n3.transitions())

        lab3.cut("n1")  # hard failure as the others see it: n1 goes silent
        n2.wait_state("MASTER")
        n3.wait_state("BACKUP", master=N2)
        wait_for(lambda: holders(lab3, VIP4) == ["n2"], lambda: f"the VIP on n2 alone: {holders(lab3, VIP4)}")
        cause = n2.takeovers()[-1]["cause_data"]
        assert (cause["kind"], cause["peer"]) == ("master_down", N1), cause

        lab3.restore("n1")
        n1.wait_state("MASTER")
        n2.wait_state("BACKUP", master=N1)
        n3.wait_state("BACKUP", master=N1)
        cause = n1.takeovers()[-1]["cause_data"]
        assert (cause["kind"], cause["peer"]) == ("preempted", N2), cause
        assert len(n3.transitions()) == n3_transitions, n3.transition_lines()  # n3 never moved
        finish(lab3, nodes, master=n1)


def test_a_master_whose_kernel_is_killed_hands_over_in_skew_time_and_releases_the_vip_first(
    lab: Lab, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL of the kernel (`ffo run`'s PID) alone: its actors get SIGTERM through PR_SET_PDEATHSIG and stop
    the normal way, the VRRP actor sending priority 0 and the VIP actor sending its goodbye and removing the VIP.
    So n2 takes over after Skew_Time (609 ms at priority 100 and 1 s), not Master_Down_Interval (3.6 s), and
    n1's VIP is gone before n2 even decides to take it: the event logs show n1's ``vip.released`` ahead of n2's
    transition (which is journaled before n2 asks for the VIP)."""
    n1 = Node(lab, "n1", root, priority=200, interval="1s").start()
    n2 = Node(lab, "n2", root, priority=100, interval="1s").start()
    n1.wait_state("MASTER")
    n2.wait_state("BACKUP", master=N1)
    wait_for(lambda: holders(lab, VIP4) == ["n1"], "the VIP on n1")

    killed_ns = time.monotonic_ns()
    n1.kill_kernel()
    both: list[list[str]] = []

    def moved() -> bool:
        now = holders(lab, VIP4)
        if len(now) > 1:
            both.append(now)
        return now == ["n2"]

    wait_for(moved, lambda: f"the VIP on n2 alone: {holders(lab, VIP4)}")
    assert not both, f"the VIP was on two nodes at once: {both}"
    wait_for(lambda: not n1.processes(), lambda: f"n1's actors to exit: {n1.processes()}")

    takeover = n2.takeovers()[-1]
    cause = takeover["cause_data"]
    assert (cause["kind"], cause["peer"]) == ("master_left", N1), cause
    assert cause["down_interval_ns"] < S  # the timer that ran was Skew_Time
    elapsed_ns = takeover["mono_ns"] - killed_ns
    assert 0 < elapsed_ns < 1.5 * S, f"n2 took over {elapsed_ns / 1e6:.0f} ms after the kill"

    goodbye = n1.transitions()[-1]  # the VRRP actor's own shutdown, after the kernel had gone
    assert goodbye["cause_data"]["kind"] == "shutdown" and goodbye["mono_ns"] > killed_ns, goodbye
    released = n1.events("--type", "vip.released")[-1]
    acquired = n2.events("--type", "vip.acquired")[-1]
    assert killed_ns < released["mono_ns"] < takeover["mono_ns"] < acquired["mono_ns"]
    with capsys.disabled():
        print(
            f"\n  kernel SIGKILL: n1's VIP released {(released['mono_ns'] - killed_ns) / 1e6:.0f} ms, "
            f"n2 master {elapsed_ns / 1e6:.0f} ms (Skew_Time {cause['down_interval_ns'] / 1e6:.0f} ms) after the kill"
        )
    finish(lab, [n1, n2], master=n2)


def test_a_whole_daemon_killed_is_replaced_after_master_down_interval_and_cleans_up_when_restarted(
    lab: Lab, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL of the daemon's whole process group, the kernel and every actor at once: nothing on n1 sends a
    goodbye or removes the VIP. n2 takes over only when Master_Down_Interval (3 x 1 s + 609 ms) has passed
    since the last advertisement it heard, and the VIP then stays configured on the dead node as well — as with
    keepalived, whose VIPs also outlive a SIGKILL — so for a while both nodes have it: VRRP cannot help a node
    that runs nothing. When ffo starts again on n1, its VIP actor's start-up reconcile removes the stale VIP
    while n1 is backup. Preemption is off here so that n1 stays backup after the restart: the VIP can only have
    left n1 through that reconcile, not through a takeover and handback."""
    n1 = Node(lab, "n1", root, priority=200, interval="1s", preempt=False).start()
    n1.wait_state("MASTER")  # started first: without preemption, the first master stays master
    n2 = Node(lab, "n2", root, priority=100, interval="1s", preempt=False).start()
    n2.wait_state("BACKUP", master=N1)
    wait_for(lambda: holders(lab, VIP4) == ["n1"], "the VIP on n1")

    killed_ns = time.monotonic_ns()
    os.killpg(n1.pid, signal.SIGKILL)
    assert n1.process is not None and n1.process.wait(TIMEOUT_S) == -signal.SIGKILL
    wait_for(lambda: not n1.processes(), lambda: f"every process of n1's daemon gone: {n1.processes()}")

    n2.wait_state("MASTER")
    takeover = n2.takeovers()[-1]
    cause = takeover["cause_data"]
    assert (cause["kind"], cause["peer"]) == ("master_down", N1), cause
    assert (
        cause["last_heard_ns"] < killed_ns
        and cause["deadline_ns"] == cause["last_heard_ns"] + cause["down_interval_ns"]
    ), cause
    elapsed_ns = takeover["mono_ns"] - killed_ns
    assert 2 * S < elapsed_ns < cause["down_interval_ns"] + 2 * S, f"n2 took over {elapsed_ns / 1e6:.0f} ms after"
    wait_for(lambda: "n2" in holders(lab, VIP4), "n2 to configure the VIP")
    assert holders(lab, VIP4) == ["n1", "n2"]  # the stale VIP on the dead node

    restarted_ns = time.monotonic_ns()
    n1.start()
    wait_for(lambda: holders(lab, VIP4) == ["n2"], lambda: f"the stale VIP to leave n1: {holders(lab, VIP4)}")
    n1.wait_state("BACKUP", master=N2)
    assert not [t for t in n1.takeovers() if t["mono_ns"] > restarted_ns], n1.transition_lines()
    with capsys.disabled():
        print(
            f"\n  daemon SIGKILL: n2 master {elapsed_ns / 1e6:.0f} ms after the kill "
            f"(Master_Down_Interval {cause['down_interval_ns'] / 1e6:.0f} ms after the last advertisement heard)"
        )
    finish(lab, [n1, n2], master=n2)


def adverts_received(node: Node) -> int:
    entry = node.instance()
    return int(entry["counters"].get("adverts_received", 0)) if entry is not None else 0


@pytest.mark.parametrize("preempt", [True, False], ids=["preempt", "no-preempt"])
def test_a_higher_priority_node_started_later_takes_over_only_with_preemption(
    lab: Lab, root: Path, preempt: bool
) -> None:
    """n2 (100) is master when n1 (200) starts. With preempt, n1 ignores the lower-priority master and takes
    over after its Master_Down_Interval (RFC 9568 §6.4.2). Without, it stays backup: watched for 20 of n2's
    advertisements received (2 s, six of n1's Master_Down_Intervals), counted by n1 itself rather than timed."""
    n2 = Node(lab, "n2", root, priority=100).start()
    n2.wait_state("MASTER")
    wait_for(lambda: holders(lab, VIP4) == ["n2"], "the VIP on n2")
    n1 = Node(lab, "n1", root, priority=200, preempt=preempt).start()
    if preempt:
        n1.wait_state("MASTER")
        n2.wait_state("BACKUP", master=N1)
        cause = n1.takeovers()[-1]["cause_data"]
        assert (cause["kind"], cause["peer"], cause["peer_priority"]) == ("preempted", N2, 100), cause
        finish(lab, [n1, n2], master=n1)
        return
    n1.wait_state("BACKUP", master=N2)
    heard = adverts_received(n1)
    wait_for(lambda: adverts_received(n1) >= heard + 20, "n1 to hear 20 more advertisements from n2")
    assert n1.state() == "BACKUP" and n2.state() == "MASTER"
    assert not n1.takeovers(), n1.transition_lines()
    finish(lab, [n1, n2], master=n2)


def test_the_address_owner_takes_over_as_soon_as_it_starts(lab: Lab, root: Path) -> None:
    """n1 owns the virtual address: it is n1's own (primary) interface address, and n1 runs at priority 255
    and advertises from it (RFC 9568 §5.1.1.1). It goes from Initialize straight to Master at start (§6.4.1),
    with n2 master at the time (holding the address while the owner was away), and n2 steps down on its first
    advertisement and releases it. ffo never adds or removes an owner's address: it is still there once ffo
    has stopped."""
    owned = f"{N1}/24"
    # n2 holds n1's address while n1 is away, so n1's advertisements then arrive from an address that is local
    # on n2: Linux drops such packets as martians unless the interface accepts local sources.
    lab.run("n2", ["sysctl", "-qw", "net.ipv4.conf.eth0.accept_local=1"])
    n2 = Node(lab, "n2", root, priority=100, vips=[owned]).start()
    n2.wait_state("MASTER")
    n1 = Node(lab, "n1", root, priority=255, vips=[owned]).start()
    n1.wait_state("MASTER")
    n2.wait_state("BACKUP", master=N1)
    (only,) = n1.transitions()  # never Backup, never a wait for a master
    assert only["cause_data"]["kind"] == "startup_address_owner", only
    assert to_role(only) == "MASTER" and only["cause"] == "started as the address owner (priority 255)"
    cause = n2.transitions()[-1]["cause_data"]
    assert (cause["kind"], cause["peer"], cause["peer_priority"]) == ("higher_priority", N1, 255), cause
    finish(lab, [n1, n2], master=n1, vip=owned)
    assert holders(lab, owned) == ["n1"]


def test_unicast_peers_elect_and_fail_over_without_multicast(lab: Lab, root: Path) -> None:
    """Each node names the other in `unicast_peers`: every advertisement on the segment (captured as it enters
    the bridge) goes from one node's address to the other's, none to 224.0.0.18, through an election, a cut
    cable (n2 takes over) and the restore (n1 preempts back)."""
    with VrrpCapture(lab) as capture:
        n1 = Node(lab, "n1", root, priority=200, unicast_peers=[N2]).start()
        n2 = Node(lab, "n2", root, priority=100, unicast_peers=[N1]).start()
        n1.wait_state("MASTER")
        n2.wait_state("BACKUP", master=N1)
        lab.cut("n1")
        n2.wait_state("MASTER")
        capture.drain()
        assert n2.takeovers()[-1]["cause_data"]["kind"] == "master_down"
        lab.restore("n1")
        n1.wait_state("MASTER")
        n2.wait_state("BACKUP", master=N1)
        finish(lab, [n1, n2], master=n1)
        packets = capture.drain()  # with the goodbye (priority 0) of n1's clean stop
    pairs = {(str(p.src), str(p.dst)) for p in packets}
    assert pairs == {(N1, N2), (N2, N1)}, pairs
    ports = {N1: "v-n1", N2: "v-n2"}
    assert all(p.vrid == 51 and p.port == ports[str(p.src)] for p in packets), packets
    assert any(str(p.src) == N1 and p.priority == 0 for p in packets), "n1's goodbye, sent to n2 alone"
