"""`ffo status [-c FILE] [--json] [--cluster]`: ask the running daemon, through its control socket, how it is
(and, with `--cluster`, how its peers are, as its RPC actor last heard from them)."""

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
    parser.add_argument(
        "--cluster", action="store_true", help="every node's instances, from the peers over RPC; exit 1 on split brain"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load(args.config)
    if isinstance(config, int):
        return config
    try:
        reply = ask(config.run_dir / "control.sock", "cluster" if args.cluster else "status")
    except ConnectionError as error:
        print(f"ffo status: {error}", file=sys.stderr)
        return 3
    if not reply.get("ok"):
        print(f"ffo status: {reply.get('error')}", file=sys.stderr)
        return 3
    status: dict[str, Any] = reply["status"]
    if args.cluster:
        return show_cluster(status, as_json=args.json, has_rpc=config.rpc is not None)
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


def show_cluster(view: dict[str, Any], *, as_json: bool, has_rpc: bool) -> int:
    """Every node's instances side by side; a split brain is printed first and makes the exit code 1."""
    split = view["split_brain"]
    if as_json:
        print(json.dumps(view))
        return 1 if split else 0
    for entry in split:
        print(
            f"SPLIT BRAIN: VRID {entry['vrid']} ({entry['family']}) has {len(entry['masters'])} masters: "
            f"{', '.join(entry['masters'])}"
        )
    if not has_rpc:
        print("(no [rpc] in the config: this node has no peer links, only its own instances are shown)")
    for index, node in enumerate(view["nodes"]):
        if index == 0:
            link = "this node"
        elif node["reachable"]:
            link = f"rtt {node['rtt_ms']:.3f} ms, clock offset {node['clock_offset_ms']:+.3f} ms"
        else:
            heard = node.get("last_heard_ms")
            link = "UNREACHABLE" + ("" if heard is None else f" (last heard {heard / 1000:.1f} s ago; stale below)")
        print(f"node {node['name']}: {link}")
        for instance in node["instances"]:
            print(
                f"  {instance['name']:12} vrid {instance['vrid']:>3} {instance['family']:6} {instance['state']:10} "
                f"prio {instance['priority']:>3}/{instance['effective_priority']:<3} master {instance['master'] or '-'}"
            )
        if not node["instances"]:
            print("  no VRRP instance reported")
    return 1 if split else 0
