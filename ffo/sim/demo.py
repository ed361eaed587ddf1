"""The simulated-cluster demo: three routers, the master fails three ways, and every step is explained.

This is what `make demo` shows until the real-network lab lands: the same state machine the daemon will run,
on a simulated LAN with a simulated clock, so the timeline is exact and reproducible.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import attrs

from ffo.sim.checker import InvariantChecker
from ffo.sim.cluster import Cluster, SimNode
from ffo.sim.journal import MemoryJournal
from ffo.sim.schedule import Action, ActionKind, Scenario, node_specs
from ffo.vrrp import timers
from ffo.vrrp.effects import Transitioned
from ffo.vrrp.record import TransitionMade
from ffo.vrrp.state import Role
from ffo.vrrp.why import Logged, explain

WALL_EPOCH_NS = 1_796_083_200 * 1_000_000_000
"""The demo's simulated time 0 on the wall clock: 2026-12-01T00:00:00Z, so timestamps read as dates."""


@attrs.define
class _Failover:
    what: str
    last_advert_ns: int
    new_master: str = ""
    at_ns: int = 0
    bound_ns: int = 0


@attrs.define
class _GapRecorder(InvariantChecker):
    """The invariant checker, also noting each failure of the master and who took over how fast."""

    failovers: list[_Failover] = attrs.field(factory=list)

    def on_action(self, cluster: Cluster, now: int, action: Action) -> None:
        node = cluster.nodes[action.node] if action.node is not None else None
        if node is not None and node.role is Role.MASTER and node.last_sent_ns is not None:
            graceful = action.kind is ActionKind.SHUTDOWN
            # Gap as measured on the wire: the old master's last advertisement (its priority-0 one, when
            # it says goodbye) to the new master's first.
            self.failovers.append(
                _Failover(
                    what=f"{node.name} {action.kind.value}", last_advert_ns=now if graceful else node.last_sent_ns
                )
            )
        super().on_action(cluster, now, action)

    def on_transition(self, cluster: Cluster, now: int, node: SimNode, change: Transitioned) -> None:
        pending = self.failovers[-1] if self.failovers else None
        if pending and not pending.new_master and change.to_role is Role.MASTER:
            interval = cluster.scenario.interval_cs
            graceful = pending.what.endswith("shutdown")
            pending.new_master, pending.at_ns = node.name, now
            pending.bound_ns = (
                timers.skew_time_ns(node.priority, interval, 3)
                if graceful
                else timers.master_down_interval_ns(node.priority, interval, 3)
            )
        super().on_transition(cluster, now, node, change)


def demo_scenario(interval_cs: int) -> Scenario:
    interval = timers.cs_to_ns(interval_cs)
    return Scenario(
        seed=2026,
        nodes=node_specs([200, 150, 100]),
        interval_cs=interval_cs,
        preempt=True,
        duration_ns=40 * interval,
        delay_min_ns=interval // 10_000,
        delay_max_ns=interval // 1000,
        actions=(
            Action(at_ns=10 * interval + interval // 3, kind=ActionKind.CRASH, node=0),
            Action(at_ns=20 * interval, kind=ActionKind.RESTART, node=0),
            Action(at_ns=30 * interval + interval // 2, kind=ActionKind.SHUTDOWN, node=0),
        ),
    )


def run_demo(interval_cs: int, emit: Callable[[str], None], events_dir: Path | None = None) -> int:
    scenario = demo_scenario(interval_cs)
    journal = MemoryJournal()
    cluster = Cluster(scenario=scenario, trace_vips=True, journal=journal)
    recorder = _GapRecorder()
    recorder.bind(cluster)
    cluster.observer = recorder
    violation = cluster.run()
    interval = timers.cs_to_ns(interval_cs)
    emit("ffo demo: a SIMULATED 3-node cluster (simulated LAN and clock; `ffo lab demo` runs real daemons)")
    emit(f"  VRID {scenario.vrid}, VIP 192.0.2.100, advertisement interval {timers.format_ns(interval)}")
    for spec in scenario.nodes:
        bound = timers.master_down_interval_ns(spec.priority, interval_cs, 3)
        emit(
            f"  {spec.name} {spec.address} priority {spec.priority}: "
            f"Master_Down_Interval {timers.format_ns(bound)}, "
            f"Skew_Time {timers.format_ns(timers.skew_time_ns(spec.priority, interval_cs, 3))}"
        )
    emit("")
    emit("timeline (simulated seconds):")
    for entry in cluster.trace:
        emit(f"  {entry.at_ns / 1e9:9.6f}s  {entry.text}")
    emit("")
    emit("failovers (gap = the new master's first advertisement minus the old master's last):")
    for failover in recorder.failovers:
        if not failover.new_master:
            continue
        gap = failover.at_ns - failover.last_advert_ns
        rule = "Skew_Time" if failover.what.endswith("shutdown") else "3 x interval + Skew_Time"
        emit(
            f"  {failover.what:14} -> {failover.new_master} master after {timers.format_ns(gap)}"
            f" (RFC bound {rule} = {timers.format_ns(failover.bound_ns)}, plus the network delay)"
        )
    emit("")
    emit("why? each takeover explained from the new master's event stream (what `ffo why` prints):")
    for failover in recorder.failovers:
        if failover.new_master:
            _explain_takeover(journal, failover, emit)
    if events_dir is not None:
        _write_files(journal, scenario, events_dir, emit)
    emit("")
    emit(f"{cluster.packets} advertisements delivered; invariants: {violation.message if violation else 'all held'}")
    return 1 if violation else 0


def _logged(journal: MemoryJournal, node: str) -> list[Logged]:
    return [
        Logged(id=f"vrrp:{seq}", mono_ns=entry.mono_ns, ts_ns=WALL_EPOCH_NS + entry.mono_ns, record=entry.record)
        for seq, entry in enumerate(journal.streams.get(node, []), 1)
    ]


def _explain_takeover(journal: MemoryJournal, failover: _Failover, emit: Callable[[str], None]) -> None:
    logged = _logged(journal, failover.new_master)
    target = next(
        (
            item.id
            for item in logged
            if isinstance(item.record, TransitionMade)
            and item.record.step.now_ns == failover.at_ns
            and item.record.transition.to_role is Role.MASTER
        ),
        None,
    )
    if target is None:
        return
    emit("")
    emit(f"  [{failover.new_master} {target}] after {failover.what}:")
    for paragraph in explain(logged, target):
        emit(textwrap.fill(paragraph, 104, initial_indent="    ", subsequent_indent="    "))


def _write_files(journal: MemoryJournal, scenario: Scenario, events_dir: Path, emit: Callable[[str], None]) -> None:
    from ffo.sim.eventfiles import write_journal  # file I/O only when asked for

    for spec in scenario.nodes:  # a previous demo's streams would be continued, not replaced
        shutil.rmtree(events_dir / spec.name, ignore_errors=True)
    written = write_journal(journal, events_dir, wall_epoch_ns=WALL_EPOCH_NS)
    emit("")
    emit(f"each node's event log was written under {events_dir}/; try:")
    for state_dir in written.values():
        emit(f"  ffo events --dir {state_dir}      ffo why --dir {state_dir} --last      ffo replay --dir {state_dir}")
