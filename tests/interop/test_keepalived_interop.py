"""ffo and keepalived in one virtual router, on the wire: real `ffo run` daemons and the real keepalived.

keepalived (the Debian package) runs in n1, an ffo daemon in n2, on one lab bridge. Each scenario runs once
(CLI.md: the suite covers each real-network scenario once; the cross product is `tools/bench_failover.py`).

What proves that a side *accepted* the other's advertisements, without timing anything:

- ffo is BACKUP and names keepalived as its master, or ffo's transition cause is "preempted" by keepalived's
  address at keepalived's priority: ffo decoded keepalived's packets (checksum form, TTL, fields);
- keepalived went from MASTER to BACKUP: keepalived leaves MASTER only for a valid higher-priority
  advertisement, so it accepted ffo's; keepalived logging "Backup received priority 0 advertisement" before
  taking over: it accepted ffo's shutdown advertisement.

keepalived is started with ``state MASTER`` where it must be master first (it then takes over at once instead
of after Master_Down_Interval); ffo, as the RFC says, always starts as a backup. Intervals are 100 ms for
VRRPv3 (keepalived's fractional ``advert_int``) and 1 s for VRRPv2 (whole seconds only).

After every scenario, ffo's own event log from the real daemon must replay through the state machine with 0
divergences (`ffo replay`): the golden-log test for real daemons (issue 5).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ffo.lab import Lab
from ffo.lab.keepalived import Keepalived, KeepalivedInstance
from tests.interop.support import VIP4, VIP6, VRID, FfoDaemon, assert_replays, holders, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.interop]

StartKeepalived = Callable[..., Keepalived]
FAST_CS = 10  # 100 ms, in keepalived's and the wire's centiseconds


def roles(transition: dict[str, Any]) -> tuple[str, str]:
    """A ``vrrp.transition`` event's (from, to) roles, from its step's `Transitioned` effect."""
    change = next(e for e in transition["step"]["effects"] if e["_type"] == "vrrp.transitioned")
    return change["from_role"], change["to_role"]


def assert_preempted(daemon: FfoDaemon, peer: str, peer_priority: int) -> None:
    """ffo's latest transition is BACKUP -> MASTER, preempting `peer` that advertised `peer_priority`.

    The cause names the peer and its priority, which ffo can only know from advertisements it accepted.
    """
    transition = daemon.transitions()[-1]
    cause = transition["cause_data"]
    assert roles(transition) == ("BACKUP", "MASTER"), transition
    assert (cause["kind"], cause["peer"], cause["peer_priority"]) == ("preempted", peer, peer_priority), cause
    why = daemon.why_last()
    assert f"master {peer} advertises priority {peer_priority} < our {daemon.priority}" in why, why


def assert_master_left(daemon: FfoDaemon, peer: str) -> None:
    """ffo's latest transition is BACKUP -> MASTER after `peer` announced priority 0, and `ffo why` says so."""
    transition = daemon.transitions()[-1]
    cause = transition["cause_data"]
    assert roles(transition) == ("BACKUP", "MASTER"), transition
    assert (cause["kind"], cause["peer"]) == ("master_left", peer), cause
    why = daemon.why_last()
    assert f"master {peer} announced priority 0" in why, why


def wait_vip_on(lab: Lab, vip: str, nodes: list[str]) -> None:
    wait_for(lambda: holders(lab, vip) == nodes, lambda: f"{vip} on {nodes} exactly; it is on {holders(lab, vip)}")


def test_ipv4_keepalived_master_then_ffo_takes_over_on_its_priority_0(
    lab: Lab, root: Path, keepalived: StartKeepalived
) -> None:
    """v3 IPv4: keepalived 200 is master, ffo 100 backs it up; keepalived's SIGTERM hands over within Skew_Time."""
    master = str(lab.ipv4("n1"))
    k = keepalived(KeepalivedInstance(vrid=VRID, priority=200, vips=(VIP4,), advert_interval_cs=FAST_CS))
    ffo = FfoDaemon(lab, "n2", root, priority=100).start()
    k.wait_state("MASTER")
    ffo.wait_state("BACKUP", master=master)
    wait_vip_on(lab, VIP4, ["n1"])

    assert k.stop() == 0
    assert "sent 0 priority" in k.output()
    ffo.wait_state("MASTER")
    assert_master_left(ffo, master)
    wait_vip_on(lab, VIP4, ["n2"])

    assert ffo.stop() == 0
    assert_replays(ffo)


def test_ipv4_ffo_preempts_keepalived_and_keepalived_takes_over_when_ffo_crashes(
    lab: Lab, root: Path, keepalived: StartKeepalived
) -> None:
    """v3 IPv4: ffo 200 preempts keepalived 100; SIGKILL of ffo's whole process group: keepalived takes over.

    Nothing is sent when the whole daemon dies, so keepalived waits out its Master_Down_Interval; and, as for a
    SIGKILLed keepalived (BENCHMARKS.md), nothing removes the dead node's VIP.
    """
    peer = str(lab.ipv4("n1"))
    k = keepalived(
        KeepalivedInstance(vrid=VRID, priority=100, vips=(VIP4,), advert_interval_cs=FAST_CS, initial_state="MASTER")
    )
    k.wait_state("MASTER")
    mastered = len(k.history())
    ffo = FfoDaemon(lab, "n2", root, priority=200).start()
    ffo.wait_state("MASTER")
    k.wait_state("BACKUP", since=mastered)  # left MASTER: it accepted ffo's priority-200 advertisement
    assert_preempted(ffo, peer, 100)
    wait_vip_on(lab, VIP4, ["n2"])

    entries = len(k.history())
    ffo.kill()
    k.wait_state("MASTER", since=entries)
    assert "Backup received priority 0 advertisement" not in k.output()
    wait_for(lambda: "n1" in holders(lab, VIP4), "keepalived to add the VIP")
    assert_replays(ffo)  # the log of a daemon killed mid-run still replays exactly


def test_ipv6_ffo_preempts_keepalived_and_hands_over_on_sigterm(
    lab: Lab, root: Path, keepalived: StartKeepalived
) -> None:
    """v3 IPv6 (link-local sources, ff02::12): ffo 200 preempts keepalived 100, then hands over on SIGTERM."""
    peer = lab.link_local("n1")
    assert peer is not None
    k = keepalived(
        KeepalivedInstance(vrid=VRID, priority=100, vips=(VIP6,), advert_interval_cs=FAST_CS, initial_state="MASTER")
    )
    k.wait_state("MASTER")
    mastered = len(k.history())
    ffo = FfoDaemon(lab, "n2", root, priority=200, vips=(VIP6,)).start()
    ffo.wait_state("MASTER")
    k.wait_state("BACKUP", since=mastered)
    assert_preempted(ffo, str(peer), 100)
    wait_vip_on(lab, VIP6, ["n2"])

    entries = len(k.history())
    assert ffo.stop() == 0  # its VRRP actor sends priority 0 before anything else stops
    k.wait_state("MASTER", since=entries)
    assert "Backup received priority 0 advertisement" in k.output()
    wait_vip_on(lab, VIP6, ["n1"])
    assert_replays(ffo)


def test_vrrpv2_ipv4_election_and_handover(lab: Lab, root: Path, keepalived: StartKeepalived) -> None:
    """VRRPv2 (1 s, no pseudo-header, v2 Skew_Time): ffo 200 preempts keepalived 100, then hands over on SIGTERM."""
    peer = str(lab.ipv4("n1"))
    k = keepalived(KeepalivedInstance(vrid=VRID, priority=100, vips=(VIP4,), version=2, initial_state="MASTER"))
    k.wait_state("MASTER")
    mastered = len(k.history())
    ffo = FfoDaemon(lab, "n2", root, priority=200, version=2, interval="1s").start()
    ffo.wait_state("MASTER")
    k.wait_state("BACKUP", since=mastered)
    assert_preempted(ffo, peer, 100)
    configured = ffo.events("--type", "instance_configured")[-1]
    assert configured["config"]["version"] == 2, configured
    wait_vip_on(lab, VIP4, ["n2"])

    entries = len(k.history())
    assert ffo.stop() == 0
    k.wait_state("MASTER", since=entries)
    assert "Backup received priority 0 advertisement" in k.output()
    wait_vip_on(lab, VIP4, ["n1"])
    assert_replays(ffo)


def test_ipv4_plain_checksum_form_is_refused_by_keepalived(lab: Lab, root: Path, keepalived: StartKeepalived) -> None:
    """ffo sending the plain VRRPv3 IPv4 checksum (the message alone): keepalived 2.2.7 refuses it.

    RFC 9568 (§5.2.8 and its change list) covers the plain form, which Cisco and Juniper send; keepalived sums
    an IPv4 pseudo-header, as RFC 5798's wording was read, and before 2.2.8 (which added ``v3_checksum_as_v2``)
    has no way to accept anything else: each plain-form advertisement is logged "Invalid VRRPv3 checksum" and
    dropped. This pins that observed behaviour, which is why ffo's default is the pseudo-header form. ffo
    accepts both forms, so it still hears keepalived and preempts it, while keepalived never hears ffo: a split
    brain, both masters, the VIP on both nodes.
    """
    peer = str(lab.ipv4("n1"))
    k = keepalived(
        KeepalivedInstance(vrid=VRID, priority=100, vips=(VIP4,), advert_interval_cs=FAST_CS, initial_state="MASTER")
    )
    k.wait_state("MASTER")
    mastered = len(k.history())
    ffo = FfoDaemon(lab, "n2", root, priority=200, pseudo_header=False).start()
    ffo.wait_state("MASTER")
    assert_preempted(ffo, peer, 100)  # ffo took keepalived's pseudo-header form
    wait_for(lambda: k.output().count("Invalid VRRPv3 checksum") >= 5, "keepalived to refuse ffo's checksums")
    assert k.history()[mastered:] == [], "keepalived left MASTER: it accepted a plain-form checksum"
    entry = ffo.instance()
    assert entry is not None and entry["state"] == "MASTER", entry
    assert not any(key.startswith("rejected") for key in entry["counters"]), entry["counters"]
    wait_vip_on(lab, VIP4, ["n1", "n2"])

    assert ffo.stop() == 0
    assert_replays(ffo)


def test_ipv4_unicast_peers(lab: Lab, root: Path, keepalived: StartKeepalived) -> None:
    """Unicast (keepalived ``unicast_peer`` / ffo ``unicast_peers``): ffo 200 preempts keepalived 100, hands back."""
    n1, n2 = str(lab.ipv4("n1")), str(lab.ipv4("n2"))
    k = keepalived(
        KeepalivedInstance(
            vrid=VRID,
            priority=100,
            vips=(VIP4,),
            advert_interval_cs=FAST_CS,
            initial_state="MASTER",
            unicast_source=n1,
            unicast_peers=(n2,),
        )
    )
    k.wait_state("MASTER")
    mastered = len(k.history())
    ffo = FfoDaemon(lab, "n2", root, priority=200, unicast_peers=(n1,)).start()
    ffo.wait_state("MASTER")
    k.wait_state("BACKUP", since=mastered)
    assert_preempted(ffo, n1, 100)
    wait_vip_on(lab, VIP4, ["n2"])

    entries = len(k.history())
    assert ffo.stop() == 0
    k.wait_state("MASTER", since=entries)
    assert "Backup received priority 0 advertisement" in k.output()
    wait_vip_on(lab, VIP4, ["n1"])
    assert_replays(ffo)
