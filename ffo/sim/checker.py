"""The invariants of RFC 9568 §6.4, judged on a simulated cluster.

Judged only in calm windows: no packet loss, and nothing has happened (no action of the schedule) for the
settle time, `Master_Down_Interval(priority 1) + one interval + 2 x max delay`. In a calm window:

- SINGLE_MASTER: every connected group of running routers has exactly one master.
- HIGHEST_PRIORITY: with preemption on, that master has the highest priority of its group. Ties are not
  broken among backups: an equal-priority backup never preempts (§6.4.2); two equal masters resolve by the
  address tie-break (§6.4.3), or SINGLE_MASTER fails.
- NOT_DISPLACED: a router that (re)starts does not displace a working master, unless it is the address
  owner or, with preemption on, it has a higher priority.
- VIPS_WITH_MASTER: at every instant, a router holds the VIPs exactly when it is master.
- FAILOVER_BOUND: when a calm group's master dies or loses its link, a backup takes over within
  Master_Down_Interval of the master's last advertisement (plus the maximum delay); after a graceful
  shutdown, within Skew_Time (plus the maximum delay).
- SUCCESSOR: the first router to take over is one of the highest priority: Skew_Time makes it fire first.

Any other action during a pending failover cancels the expectation: it is no longer a single failure.
"""

from __future__ import annotations

import attrs

from ffo.sim.cluster import Cluster, Observer, SimNode, Violation, ViolationFoundError
from ffo.sim.schedule import Action, ActionKind
from ffo.vrrp import timers
from ffo.vrrp.effects import Transitioned
from ffo.vrrp.state import Role


@attrs.define
class _Failover:
    """A pending expectation: one of `group` becomes master by `deadline_ns`, first one of `best_priority`."""

    group: frozenset[int]
    deadline_ns: int
    best_priority: int
    what: str


@attrs.define
class _Incumbent:
    """A pending expectation: `master` stays master until `until_ns` despite `newcomer` starting."""

    master: int
    newcomer: int
    until_ns: int


@attrs.define
class InvariantChecker(Observer):
    settle_ns: int = 0
    calm_from_ns: int = 0
    failover: _Failover | None = None
    incumbent: _Incumbent | None = None

    def bind(self, cluster: Cluster) -> None:
        scenario = cluster.scenario
        self.settle_ns = (
            timers.master_down_interval_ns(1, scenario.interval_cs, 3)
            + scenario.interval_ns
            + 2 * scenario.delay_max_ns
        )
        self.calm_from_ns = self.settle_ns

    # --- hooks ---

    def on_action(self, cluster: Cluster, now: int, action: Action) -> None:
        calm = self._calm(cluster, now)
        self.failover = None
        self.incumbent = None
        if calm and action.node is not None:
            self._expect(cluster, now, action)
        self.calm_from_ns = now + self.settle_ns
        cluster.schedule_check(self.calm_from_ns)

    def on_transition(self, cluster: Cluster, now: int, node: SimNode, change: Transitioned) -> None:
        incumbent = self.incumbent
        if incumbent and node.index == incumbent.master and change.from_role is Role.MASTER:
            newcomer = cluster.nodes[incumbent.newcomer]
            self._fail(
                "NOT_DISPLACED",
                now,
                f"{node.name} (priority {node.priority}) was displaced after {newcomer.name} "
                f"(priority {newcomer.priority}) started",
            )
        failover = self.failover
        if failover and change.to_role is Role.MASTER and node.index in failover.group:
            self.failover = None
            if now > failover.deadline_ns:
                self._late(now, failover, node)
            if node.priority < failover.best_priority:
                self._fail(
                    "SUCCESSOR",
                    now,
                    f"{node.name} (priority {node.priority}) took over first after {failover.what}, "
                    f"but a backup of priority {failover.best_priority} was running",
                )

    def after_step(self, cluster: Cluster, now: int, node: SimNode) -> None:
        if node.holds_vips != (node.role is Role.MASTER):
            state = node.role.value if node.role else "down"
            held = "holds" if node.holds_vips else "does not hold"
            self._fail("VIPS_WITH_MASTER", now, f"{node.name} is {state} but {held} the VIPs")
        if self._calm(cluster, now):
            self._judge(cluster, now)

    def on_check(self, cluster: Cluster, now: int) -> None:
        failover = self.failover
        if failover and now >= failover.deadline_ns:
            self._late(now, failover, None)
        if self.incumbent and now >= self.incumbent.until_ns:
            self.incumbent = None
        if self._calm(cluster, now):
            self._judge(cluster, now)

    # --- judging ---

    def _calm(self, cluster: Cluster, now: int) -> bool:
        return cluster.loss == 0.0 and now >= self.calm_from_ns

    def _judge(self, cluster: Cluster, now: int) -> None:
        for group in _groups(cluster):
            masters = [node for node in group if node.role is Role.MASTER]
            names = ", ".join(node.name for node in group)
            if len(masters) != 1:
                found = ", ".join(m.name for m in masters) or "none"
                self._fail("SINGLE_MASTER", now, f"group {{{names}}} has masters: {found}")
            best = max(node.priority for node in group)
            if cluster.scenario.preempt and masters[0].priority < best:
                self._fail(
                    "HIGHEST_PRIORITY",
                    now,
                    f"{masters[0].name} (priority {masters[0].priority}) is master of {{{names}}} "
                    f"with preemption on, but priority {best} is running",
                )

    def _expect(self, cluster: Cluster, now: int, action: Action) -> None:
        assert action.node is not None
        node = cluster.nodes[action.node]
        group = next((g for g in _groups(cluster) if node in g), None)
        if action.kind in (ActionKind.START, ActionKind.RESTART):
            self._expect_incumbent(cluster, now, node)
            return
        if group is None or node.role is not Role.MASTER or len(group) < 2:
            return
        if action.kind not in (ActionKind.CRASH, ActionKind.LINK_DOWN, ActionKind.SHUTDOWN):
            return
        rest = [other for other in group if other is not node]
        best = max(other.priority for other in rest)
        delay = cluster.scenario.delay_max_ns
        interval = cluster.scenario.interval_cs
        if action.kind is ActionKind.SHUTDOWN:
            bound = now + delay + timers.skew_time_ns(best, interval, 3)
            what = f"{node.name} shut down"
        else:
            last = node.last_sent_ns if node.last_sent_ns is not None else now
            bound = last + delay + timers.master_down_interval_ns(best, interval, 3)
            what = f"{node.name} {action.kind.value}"
        self.failover = _Failover(
            group=frozenset(other.index for other in rest), deadline_ns=bound, best_priority=best, what=what
        )
        cluster.schedule_check(bound + 1)

    def _expect_incumbent(self, cluster: Cluster, now: int, newcomer: SimNode) -> None:
        if not newcomer.link_up:
            return
        group = next((g for g in _groups(cluster) if any(cluster.connected(newcomer, n) for n in g)), None)
        masters = [node for node in group or [] if node.role is Role.MASTER]
        if len(masters) != 1:
            return
        master = masters[0]
        if newcomer.config.is_address_owner:
            return
        if cluster.scenario.preempt and newcomer.priority > master.priority:
            return
        self.incumbent = _Incumbent(master=master.index, newcomer=newcomer.index, until_ns=now + self.settle_ns)

    def _late(self, now: int, failover: _Failover, node: SimNode | None) -> None:
        who = f"{node.name} took over only at {now / 1e9:.6f}s" if node else "no backup had taken over"
        self._fail(
            "FAILOVER_BOUND",
            now,
            f"after {failover.what}, {who}; the bound was {failover.deadline_ns / 1e9:.6f}s",
        )

    def _fail(self, kind: str, now: int, message: str) -> None:
        raise ViolationFoundError(Violation(kind=kind, at_ns=now, message=f"{kind}: {message}"))


def _groups(cluster: Cluster) -> list[list[SimNode]]:
    """Connected groups of running routers (started, link up, same side of a partition)."""
    groups: dict[int, list[SimNode]] = {}
    for node in cluster.nodes:
        if node.running:
            groups.setdefault(cluster.side[node.index], []).append(node)
    return list(groups.values())


def check(cluster: Cluster) -> Violation | None:
    """Run the cluster under the invariant checker; the first violation, or None."""
    checker = InvariantChecker()
    checker.bind(cluster)
    cluster.observer = checker
    return cluster.run()
