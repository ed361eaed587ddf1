"""The simulated-cluster demo: three routers, the master fails three ways, and every step is explained.

This is what `make demo` shows until the real-network lab lands: the same state machine the daemon will run,
on a simulated LAN with a simulated clock, so the timeline is exact and reproducible.
"""

from __future__ import annotations

from collections.abc import Callable

from ffo.sim.checker import check
from ffo.sim.cluster import Cluster
from ffo.sim.schedule import Action, ActionKind, Scenario, node_specs
from ffo.vrrp import timers


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


def run_demo(interval_cs: int, emit: Callable[[str], None]) -> int:
    scenario = demo_scenario(interval_cs)
    cluster = Cluster(scenario=scenario, trace_vips=True)
    violation = check(cluster)
    interval = timers.cs_to_ns(interval_cs)
    emit("ffo demo: a SIMULATED 3-node cluster (simulated LAN and clock; the real-network lab comes later)")
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
    emit(f"{cluster.packets} advertisements delivered; invariants: {violation.message if violation else 'all held'}")
    return 1 if violation else 0
