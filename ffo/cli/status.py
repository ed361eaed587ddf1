"""`ffo status [-c FILE] [--json]`: ask the running daemon, through its control socket, how it is."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ffo.actors.control import ask
from ffo.cli.run import load

DEFAULT_CONFIG = Path("/etc/ffo/ffo.toml")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="the running daemon's actors and instances")
    parser.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, metavar="FILE")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load(args.config)
    if isinstance(config, int):
        return config
    try:
        reply = ask(config.run_dir / "control.sock", "status")
    except ConnectionError as error:
        print(f"ffo status: {error}", file=sys.stderr)
        return 3
    if not reply.get("ok"):
        print(f"ffo status: {reply.get('error')}", file=sys.stderr)
        return 3
    status: dict[str, Any] = reply["status"]
    if args.json:
        print(json.dumps(status))
        return 0
    print(f"node {status['node']} (kernel pid {status['pid']}, {status['mode']}, bus {status['bus']})")
    print(f"  {'actor':16} {'state':9} {'pid':>7} {'restarts':>8} {'heartbeat':>10} {'loop lag':>9}  last exit")
    for actor in status["actors"]:
        age = actor["heartbeat_age_ms"]
        print(
            f"  {actor['name']:16} {actor['state']:9} {actor['pid'] or '-':>7} {actor['restarts']:>8} "
            f"{'-' if age is None else f'{age:.0f} ms':>10} {actor['loop_lag_ms']:>7.1f}ms  {actor['last_exit'] or ''}"
        )
    journal = status.get("event_log")
    if journal is None:
        print("  event log: not written (see the daemon's log)")
    else:
        state = f"DEGRADED: {journal['last_error']}" if journal["degraded"] else "ok"
        print(f"  event log: {state}, kernel stream at seq {journal['next_seq'] - 1}, {journal['dropped']} dropped")
    if not status["instances"]:
        print("  no VRRP instance reported (no VRRP actor, or it has not started yet)")
        return 0
    header = f"  {'instance':12} {'vrid':>4} {'family':6} {'state':10} {'prio':>4} {'eff':>4} {'master':24}"
    print(f"{header} late p50/p99/max ms")
    for instance in status["instances"]:
        late = instance["timer_lateness_ms"]
        print(
            f"  {instance['name']:12} {instance['vrid']:>4} {instance['family']:6} {instance['state']:10} "
            f"{instance['priority']:>4} {instance['effective_priority']:>4} {instance['master'] or '-':24} "
            f"{late['p50']:.3f}/{late['p99']:.3f}/{late['max']:.3f}"
        )
        print(f"    vips {', '.join(instance['vips'])}")
    return 0
