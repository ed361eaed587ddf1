"""Rates of the pure core: `machine.step` per input kind, and simulated schedules per second.

    .venv/bin/python tools/bench_core.py [--seconds 0.5] [--repeat 3] [--sim-seeds 10000] [--jobs 2]

`step` is timed on the inputs a running cluster feeds it most: a Backup accepting its master's advertisement,
a Master's Adver_Timer firing. The simulator figure is the `ffo sim` default workload (3 nodes, 1 s interval,
60 simulated seconds per seed), the issue's target being 10,000 seeds in a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import ipaddress
import time
from collections.abc import Callable

from benchlib import rate

from ffo.sim.runner import SimOptions, run_seeds
from ffo.vrrp import machine
from ffo.vrrp.inputs import AdvertisementReceived, Started, TimerExpired
from ffo.vrrp.packet import Advertisement, Family
from ffo.vrrp.state import InstanceConfig, InstanceState, TimerKind

VIP = ipaddress.IPv4Address("192.0.2.100")


def step_cases() -> list[tuple[str, Callable[[], object]]]:
    config = InstanceConfig(
        name="vi",
        vrid=51,
        family=Family.IPV4,
        priority=100,
        primary_address=ipaddress.IPv4Address("192.0.2.12"),
        vips=(VIP,),
    )
    backup, _ = machine.step(InstanceState.initial(config), Started(), 0)
    advert = AdvertisementReceived(
        source=ipaddress.IPv4Address("192.0.2.11"),
        advertisement=Advertisement(version=3, vrid=51, priority=200, interval_cs=100, addresses=(VIP,)),
    )
    due = machine.due_timer(backup)
    assert due is not None
    master, _ = machine.step(backup, due, due.deadline_ns)
    tick = machine.due_timer(master)
    assert tick is not None
    stale = TimerExpired(timer=TimerKind.ADVER, deadline_ns=1, fired_ns=1)
    return [
        ("Backup accepts an advertisement", lambda: machine.step(backup, advert, 10**9)),
        ("Master Adver_Timer fires", lambda: machine.step(master, tick, tick.deadline_ns)),
        ("Backup takes over (down timer)", lambda: machine.step(backup, due, due.deadline_ns)),
        ("stale timer dropped", lambda: machine.step(backup, stale, 1)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sim-seeds", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    print(f"{'machine.step input':40} {'steps/s':>12} {'µs/step':>9}")
    for name, action in step_cases():
        per_second = rate(action, args.seconds, args.repeat)
        print(f"{name:40} {per_second:12,.0f} {1e6 / per_second:9.2f}")
    if args.sim_seeds:
        options = SimOptions()
        start = time.perf_counter()
        results = list(run_seeds(range(args.sim_seeds), options, jobs=args.jobs))
        elapsed = time.perf_counter() - start
        failed = sum(1 for result in results if result.violation is not None)
        print(
            f"\nffo sim: {args.sim_seeds} seeds x 3 nodes x 60 simulated s, {args.jobs} jobs: {elapsed:.1f} s "
            f"({args.sim_seeds / elapsed:,.0f} seeds/s), {failed} failed"
        )


if __name__ == "__main__":
    main()
