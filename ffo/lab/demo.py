"""`ffo lab demo`: real daemons elect a master, its cable is pulled while a client pings the VIP, and back.

The steps, each waited for by polling the daemons' control sockets and the probe with a generous deadline
(the only fixed sleeps are the few intervals of steady state shown around each fault):

1. `LabCluster.up`, then wait for the election (the highest priority, n1, MASTER; the others BACKUP).
2. The client starts pinging the VIP every 10 ms (`ffo.lab.probe`); wait until it answers — or, when no node
   holds the VIP (no VIP actor yet), note that the client's outage cannot be measured, and go on.
3. A few intervals of steady state, then `Lab.cut(master)`: its bridge port goes down. The old master loses
   carrier (and steps down, releasing the VIP); the others just stop hearing it, as from a dead machine.
4. Wait for exactly one new MASTER among the others (the next priority, after Master_Down_Interval), then for
   the client's first reply through it.
5. `Lab.restore`: the old master is heard again; with preemption on, it is MASTER again and the others BACKUP.

Everything observed is returned as a `DemoRun`; `ffo.lab.report` turns it, with the event logs, into the
measurements and the explained timeline. Tearing the lab down is the caller's (`ffo.cli.lab`), in a
``finally`` that also runs on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs

from ffo.lab import layout
from ffo.lab.cluster import LabCluster, single_master
from ffo.lab.namespaces import LabError
from ffo.lab.probe import Echo, Prober
from ffo.vrrp import timers

__all__ = [
    "PROBE_PERIOD_NS",
    "VIP_ADDRESS",
    "DemoRun",
    "Moment",
    "VipSight",
    "now",
    "run_demo",
    "vip_unreachable_reason",
]

PROBE_PERIOD_NS = 10_000_000
VIP_ADDRESS = layout.VIP.split("/")[0]
_POLL_S = 0.02


@attrs.frozen(kw_only=True)
class Moment:
    """One instant on both clocks: monotonic (to compare with the logs' ``mono_ns``) and wall (to print)."""

    mono_ns: int
    wall_ns: int


def now() -> Moment:
    return Moment(mono_ns=time.monotonic_ns(), wall_ns=time.time_ns())


@attrs.frozen(kw_only=True)
class VipSight:
    """What the client could see of the VIP before the cut, and why not when it could not."""

    master: str
    reachable: bool
    holders: tuple[str, ...]
    """Nodes with the VIP on ``eth0``."""
    vip_actor: bool
    """Whether the master's daemon runs an actor named ``vip`` (`ffo status`)."""


@attrs.define
class DemoRun:
    """What the demo saw: the moments of each step, who was master, the probe's echoes, what went wrong."""

    interval_cs: int
    started: Moment
    elected: Moment | None = None
    old_master: str | None = None
    vip: VipSight | None = None
    cut_issued: Moment | None = None
    """When `ip link set down` was started: the link goes down between this and `cut`."""
    cut: Moment | None = None
    """When it returned: t = 0 of the report."""
    new_master: str | None = None
    restore_issued: Moment | None = None
    restored: Moment | None = None
    back: Moment | None = None
    end: Moment | None = None
    echoes: tuple[Echo, ...] = ()
    problems: list[str] = attrs.field(factory=list)


def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)
    return True


def _vip_holders(cluster: LabCluster) -> tuple[str, ...]:
    return tuple(
        node
        for node in cluster.nodes
        if any(entry.get("local") == VIP_ADDRESS for entry in cluster.lab.addresses(node))
    )


def _has_vip_actor(cluster: LabCluster, node: str) -> bool:
    status = cluster.status(node) or {}
    return any(actor.get("name") == "vip" for actor in status.get("actors", []))


def _replied_after(prober: Prober, moment: Moment) -> bool:
    last = prober.last_reply_ns()
    return last is not None and last > moment.mono_ns


def run_demo(cluster: LabCluster, interval_cs: int, emit: Callable[[str], None]) -> DemoRun:
    """Run the steps above on a cluster that is not up yet; return what was seen (the lab is left up)."""
    steps = _Steps(cluster, interval_cs, emit)
    cluster.up()
    steps.elect()
    with Prober(cluster.lab.namespace(cluster.client), VIP_ADDRESS, PROBE_PERIOD_NS) as prober:
        steps.look_at_vip(prober)
        steps.cut(prober)
        steps.restore(prober)
        steps.run.end = now()
    steps.run.echoes = prober.echoes()
    return steps.run


class _Steps:
    """The demo's steps, sharing the cluster, the timeouts and the `DemoRun` they fill in."""

    def __init__(self, cluster: LabCluster, interval_cs: int, emit: Callable[[str], None]) -> None:
        self.cluster, self.emit = cluster, emit
        self.run = DemoRun(interval_cs=interval_cs, started=now())
        self.interval_s = timers.cs_to_ns(interval_cs) / 1e9
        down_ns = max(timers.master_down_interval_ns(node.priority, interval_cs, 3) for node in cluster.plan)
        self.down_s = down_ns / 1e9
        self.settle_s = max(0.3, 3 * self.interval_s)
        """Steady state shown before and after each fault: at least three advertisements."""
        self.old = ""
        self.others: list[str] = []

    def elect(self) -> None:
        self.old = self.cluster.wait_for_election(timeout=30 + 10 * self.down_s)
        self.run.elected, self.run.old_master = now(), self.old
        self.others = [node for node in self.cluster.nodes if node != self.old]
        elapsed = (self.run.elected.mono_ns - self.run.started.mono_ns) / 1e9
        self.emit(f"elected: {self.old} MASTER, {', '.join(self.others)} BACKUP ({elapsed:.1f} s after the start)")

    def look_at_vip(self, prober: Prober) -> None:
        self.run.vip = _look_at_vip(self.cluster, prober, self.old)
        self.emit(_vip_line(self.run.vip))
        time.sleep(self.settle_s)

    def cut(self, prober: Prober) -> None:
        lab = self.cluster.lab
        self.emit(f"cutting {self.old}'s cable: ip -n {lab.switch} link set {lab.port(self.old)} down")
        self.run.cut_issued = now()
        lab.cut(self.old)
        self.run.cut = moment = now()  # t = 0: `ip link set down` has returned, the cable is out
        try:
            self.run.new_master = self.cluster.wait_for(
                lambda roles: single_master(roles, self.others), self.others, timeout=10 + 3 * self.down_s
            )
            self.emit(f"{self.run.new_master} is MASTER (as its control socket tells)")
        except LabError as error:
            self.run.problems.append(f"after the cut: {error}")
        self._wait_for_reply(prober, moment, "the cut")
        time.sleep(self.settle_s)

    def restore(self, prober: Prober) -> None:
        lab, old = self.cluster.lab, self.old
        self.emit(f"restoring {old}'s cable: ip -n {lab.switch} link set {lab.port(old)} up")
        self.run.restore_issued = now()
        lab.restore(old)
        self.run.restored = moment = now()
        try:
            nodes = self.cluster.nodes
            self.cluster.wait_for(lambda roles: single_master(roles, nodes, old), nodes, timeout=10 + 3 * self.down_s)
            self.run.back = now()
            priority = self.cluster.node(old).priority
            self.emit(f"{old} is MASTER again, {', '.join(self.others)} BACKUP (preemption, priority {priority})")
        except LabError as error:
            self.run.problems.append(f"after the restore: {error}")
        self._wait_for_reply(prober, moment, "the restore")
        time.sleep(self.settle_s)

    def _wait_for_reply(self, prober: Prober, moment: Moment, what: str) -> None:
        """When the VIP answered before, wait for its first answer after `moment`; a problem if none comes."""
        if self.run.vip is None or not self.run.vip.reachable:
            return
        if not _wait(lambda: _replied_after(prober, moment), 5 + 10 * self.interval_s):
            self.run.problems.append(f"the client got no reply from {VIP_ADDRESS} after {what}")


def _look_at_vip(cluster: LabCluster, prober: Prober, master: str) -> VipSight:
    """Wait for the client's first reply; give up early when no node holds the VIP (nothing will answer)."""
    started = time.monotonic()
    holders: tuple[str, ...] = ()
    while True:
        if prober.last_reply_ns() is not None:
            break
        holders = _vip_holders(cluster)
        waited = time.monotonic() - started
        if waited > 5.0 or (not holders and waited > 1.0):
            break
        time.sleep(0.05)
    return VipSight(
        master=master,
        reachable=prober.last_reply_ns() is not None,
        holders=_vip_holders(cluster),
        vip_actor=_has_vip_actor(cluster, master),
    )


def _vip_line(vip: VipSight) -> str:
    if vip.reachable:
        return f"VIP: {VIP_ADDRESS} answers the client (held by {', '.join(vip.holders) or 'no node?'})"
    return f"VIP: {VIP_ADDRESS} does not answer the client: {vip_unreachable_reason(vip)}"


def vip_unreachable_reason(vip: VipSight) -> str:
    """Why the client gets no reply, as far as the lab can tell."""
    if not vip.holders and not vip.vip_actor:
        return (
            f"it is on no node, and {vip.master}'s daemon runs no VIP actor, so the client's outage cannot be "
            "measured; the failover is shown from the VRRP event logs"
        )
    if not vip.holders:
        return f"the VIP actor runs, but no node holds {VIP_ADDRESS} (see the daemons' logs under {layout.LAB_DIR})"
    return f"{', '.join(vip.holders)} holds it, but no echo reply came back"
