"""`ffo sim`: run seeded failure schedules against the state machine, or `--demo` one explained failover."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ffo.config import parse_duration
from ffo.errors import FfoError
from ffo.sim import demo
from ffo.sim.runner import SimOptions, report, run_seeds
from ffo.vrrp import timers


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="run seeded failure schedules on a simulated cluster",
        description="Runs N seeded schedules (crashes, link cuts, partitions, loss, restarts, priority "
        "changes) on a simulated LAN and checks RFC 9568 §6.4 invariants. Last line: `N passed, N failed`.",
    )
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--seed-start", type=int, default=0)
    parser.add_argument("--advert-interval", default="1s", help="advertisement interval, e.g. 1s, 100ms, 10ms")
    parser.add_argument("--duration", default="60s", help="simulated time per schedule")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--demo", action="store_true", help="one explained failover of a 3-node cluster")
    parser.add_argument(
        "--events-dir", type=Path, metavar="DIR", help="with --demo: write each node's event log under DIR/<node>/"
    )
    parser.set_defaults(run=run)


def _options(args: argparse.Namespace) -> SimOptions:
    interval_ns = parse_duration(args.advert_interval)
    if interval_ns % timers.NS_PER_CS or not 1 <= interval_ns // timers.NS_PER_CS <= 4095:
        raise ValueError(f"--advert-interval: {args.advert_interval} is not a multiple of 10ms in 10ms..40.95s")
    duration_ns = parse_duration(args.duration)
    if duration_ns <= 0:
        raise ValueError(f"--duration: {args.duration} must be positive")
    if args.nodes < 1 or args.seeds < 0:
        raise ValueError("--nodes must be at least 1 and --seeds at least 0")
    return SimOptions(nodes=args.nodes, interval_cs=interval_ns // timers.NS_PER_CS, duration_ns=duration_ns)


def run(args: argparse.Namespace) -> int:
    try:
        options = _options(args)
    except (ValueError, FfoError) as error:
        print(f"ffo sim: {error}", file=sys.stderr)
        return 2
    if args.demo:
        return demo.run_demo(options.interval_cs, print, args.events_dir)
    seeds = range(args.seed_start, args.seed_start + args.seeds)
    _, failed = report(run_seeds(seeds, options, jobs=args.jobs), options, lambda line: print(line, flush=True))
    return 1 if failed else 0
