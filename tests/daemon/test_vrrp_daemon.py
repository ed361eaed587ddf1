"""Real ffo daemons in lab namespaces: election, a graceful handover, the event log of a real failover.

Each node runs `ffo run -c FILE` (the kernel and its VRRP actor as processes) inside its own namespace; the
test reads their state through the control socket (`ffo status --json`) and their event logs with the CLI.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from ffo.lab import Lab
from tests.daemon.support import VIP4, Node, finish, holders, lab, root, wait_for

__all__ = ["lab", "root"]  # the fixtures
pytestmark = pytest.mark.netns


def test_two_daemons_elect_a_master_and_hand_over_on_sigterm(lab: Lab, root: Path) -> None:
    n1 = Node(lab, "n1", root, priority=200).start()
    n2 = Node(lab, "n2", root, priority=100).start()
    wait_for(lambda: n1.state() == "MASTER" and n2.state() == "BACKUP", "the election")
    report = n2.instance()
    assert report is not None and report["master"] == "192.0.2.11"

    assert n1.stop() == 0  # its VRRP actor stops first: priority 0 goes out
    n2.wait_state("MASTER")
    wait_for(lambda: holders(lab, VIP4) == ["n2"], "the VIP on n2")

    assert "MASTER -> INITIALIZE because shutdown requested" in n1.why_last()
    assert any("announced priority 0 (leaving)" in (t["cause"] or "") for t in n2.transitions())
    finish(lab, [n1, n2], master=n2)  # stops n2 and replays both logs with 0 divergences
    assert "MASTER -> INITIALIZE because shutdown requested" in n2.why_last()


def test_the_vip_follows_the_master_and_a_killed_vrrp_actor_hands_over_at_once(lab: Lab, root: Path) -> None:
    n1 = Node(lab, "n1", root, priority=200, interval="1s").start()
    n2 = Node(lab, "n2", root, priority=100, interval="1s").start()
    wait_for(lambda: n1.state() == "MASTER" and n2.state() == "BACKUP", "the election")
    wait_for(lambda: "n1" in holders(lab, VIP4), "the VIP on the master")
    assert holders(lab, VIP4) == ["n1"]

    # The master's VRRP process dies (SIGKILL: no goodbye of its own). Its VIP actor sends the priority-0
    # advertisement it was given and removes the VIP; n2 takes over after Skew_Time, not 3 x 1 s.
    vrrp_pid = n1.actor_pid("vrrp")
    assert vrrp_pid is not None
    os.kill(vrrp_pid, signal.SIGKILL)
    n2.wait_state("MASTER")
    wait_for(lambda: holders(lab, VIP4) == ["n2"], "the VIP to move")
    takeovers = n2.takeovers()
    assert any(event["cause_data"]["kind"] == "master_left" for event in takeovers), takeovers

    # The kernel restarts n1's VRRP actor; with the higher priority and preemption it takes the VIP back.
    n1.wait_state("MASTER", timeout=60)
    wait_for(lambda: holders(lab, VIP4) == ["n1"], "the VIP to come back")
    assert "vip.acquired" in n1.why_last()  # what the VIP actor did because of the transition

    finish(lab, [n1, n2], master=n1)
    assert holders(lab, VIP4) == []


def test_a_master_whose_link_goes_down_steps_down_and_drops_the_vip(lab: Lab, root: Path) -> None:
    n1 = Node(lab, "n1", root, priority=200).start()
    n2 = Node(lab, "n2", root, priority=100).start()
    wait_for(lambda: n1.state() == "MASTER" and "n1" in holders(lab, VIP4), "n1 master with the VIP")
    lab.cut("n1")  # the switch side of n1's veth goes down: n1's eth0 loses its carrier
    wait_for(lambda: n1.state() == "INITIALIZE" and "n1" not in holders(lab, VIP4), "n1 to step down")
    wait_for(lambda: n2.state() == "MASTER" and "n2" in holders(lab, VIP4), "n2 to take over")
    lab.restore("n1")
    wait_for(lambda: n1.state() == "MASTER" and "n1" in holders(lab, VIP4), "n1 to come back")
    wait_for(lambda: "n2" not in holders(lab, VIP4), "n2 to release the VIP")
    finish(lab, [n1, n2], master=n1)
    events = n1.transition_lines()
    assert "MASTER -> INITIALIZE" in events and "interface went down" in events
    assert "INITIALIZE -> BACKUP" in events and "interface came up" in events
