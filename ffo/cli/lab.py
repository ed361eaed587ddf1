"""`ffo lab up [--nodes N] | down | demo`: real ffo daemons in network namespaces on one machine.

`up` builds the lab (namespaces ``ffo-lab-*``, files under /run/ffo-lab), starts `ffo run` in every node,
waits for the election and leaves it running for you to explore; `down` stops those daemons (by the PIDs `up`
recorded) and deletes everything; `demo` is up, a link cut with a client pinging the VIP, the explained
timeline, and down — which also runs when the demo is interrupted (Ctrl-C, SIGTERM, SIGHUP) or fails.

Exit codes (CLI.md): 0 done; 1 a problem (a lab is already up, no master was elected, the failover did not
complete); 2 bad usage; 3 could not run (not root, no network namespaces, interrupted). Where namespaces cannot
be made, `demo` runs the simulated demo (`ffo sim --demo`) instead and says so in its first line, so that
`make demo` shows something true everywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from ffo.config import parse_duration
from ffo.lab import layout
from ffo.lab.cluster import LabCluster, existing_lab, tear_down
from ffo.lab.namespaces import LabError, netns_unavailable
from ffo.vrrp import timers

DEFAULT_INTERVAL = "100ms"
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lab",
        help="real ffo daemons in network namespaces: up, down, demo",
        description="A bridge, N nodes running `ffo run` and a client, each in its own network namespace "
        "(ffo-lab-*), with documentation addresses only. Needs root.",
    )
    actions = parser.add_subparsers(dest="lab_command", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="build the lab, start the daemons, wait for a master, leave it running")
    _add_shape_arguments(up, nodes=3)
    up.set_defaults(run=run_up)
    down = actions.add_parser("down", help="stop the lab's daemons and delete its namespaces and files")
    down.set_defaults(run=run_down)
    demo = actions.add_parser(
        "demo", help="up, cut the master's link while a client pings the VIP, explain the failover, down"
    )
    _add_shape_arguments(demo, nodes=3)
    demo.add_argument("--keep-logs", type=Path, metavar="DIR", help="copy each node's event log to DIR/<node>/")
    demo.set_defaults(run=run_demo)


def _add_shape_arguments(parser: argparse.ArgumentParser, nodes: int) -> None:
    parser.add_argument(
        "--nodes", type=int, default=nodes, metavar="N", help=f"ffo nodes besides the client (default {nodes})"
    )
    parser.add_argument(
        "--advert-interval",
        default=DEFAULT_INTERVAL,
        metavar="T",
        help=f"e.g. 1s, 100ms, 20ms (default {DEFAULT_INTERVAL})",
    )


def interval_cs(text: str) -> int:
    """The advertisement interval in centiseconds, as the wire carries it (RFC 9568 §5.2.7: 10 ms..40.95 s)."""
    ns = parse_duration(text)
    if ns % timers.NS_PER_CS or not 1 <= ns // timers.NS_PER_CS <= 4095:
        raise ValueError(f"--advert-interval: {text} is not a multiple of 10ms in 10ms..40.95s")
    return ns // timers.NS_PER_CS


def _usage(command: str, args: argparse.Namespace, minimum_nodes: int) -> int | None:
    """Exit code 2 after saying what is wrong with the arguments, or None when they are fine."""
    try:
        interval_cs(args.advert_interval)
        if not minimum_nodes <= args.nodes <= layout.MAX_NODES:
            raise ValueError(f"--nodes: {args.nodes} is not in {minimum_nodes}..{layout.MAX_NODES}")
    except ValueError as error:
        print(f"ffo lab {command}: {error}", file=sys.stderr)
        return 2
    return None


def _cannot_run(command: str) -> int | None:
    """Exit code 3 when namespaces cannot be made here (with the reason), else None."""
    reason = netns_unavailable()
    if reason is None:
        return None
    print(f"ffo lab {command}: {reason}", file=sys.stderr)
    return 3


def _refuse_second_lab(command: str) -> int | None:
    existing = existing_lab()
    if existing is None:
        return None
    print(f"ffo lab {command}: a lab is already up ({existing}); `ffo lab down` removes it", file=sys.stderr)
    return 1


# -- signals -------------------------------------------------------------------------------------------------------


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    """The first SIGINT/SIGTERM/SIGHUP interrupts (as Ctrl-C does); later ones are ignored, so the teardown
    that the interruption starts cannot itself be interrupted half-way."""
    for sig in _SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    previous = {sig: signal.signal(sig, _interrupt) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _shielded() -> Iterator[None]:
    """Ignore the signals while tearing down: a second Ctrl-C must not leave half a lab behind."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- up ------------------------------------------------------------------------------------------------------------


def describe_lab(cluster: LabCluster) -> list[str]:
    """The lab's shape: namespaces, nodes with address and priority, the client, the instance."""
    lab = cluster.lab
    names = ", ".join(lab.namespace(node) for node in lab.nodes)
    interval = cluster.advert_interval
    lines = [f"lab: {lab.switch} (bridge), {names}; files under {cluster.root}"]
    for node in cluster.plan:
        lines.append(f"  {node.name:7} {node.address:13} priority {node.priority}")
    lines.append(f"  {cluster.client:7} {cluster.state.client_address:13} pings the VIP")
    lines.append(
        f"  instance {layout.INSTANCE}, VRID {layout.VRID}, VIP {layout.VIP}, advertisement interval {interval}"
    )
    return lines


def _log_tails(cluster: LabCluster, lines: int = 5) -> None:
    """The end of each daemon's log, on stderr: the files go with the lab, and this says why it failed."""
    for node in cluster.nodes:
        path = layout.log_path(node, cluster.root)
        with contextlib.suppress(OSError):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            for line in tail:
                print(f"  {node}: {line}", file=sys.stderr)


def run_up(args: argparse.Namespace) -> int:
    refused = _usage("up", args, 1)
    if refused is None:
        refused = _cannot_run("up")
    if refused is None:
        refused = _refuse_second_lab("up")
    if refused is not None:
        return refused
    cluster = LabCluster(args.nodes, args.advert_interval)
    down_s = timers.master_down_interval_ns(100, interval_cs(args.advert_interval), 3) / 1e9
    with _interruptible():
        try:
            cluster.up()
            master = cluster.wait_for_election(timeout=30 + 10 * down_s)
        except KeyboardInterrupt as interrupt:
            with _shielded():
                cluster.down()
            print(f"ffo lab up: interrupted ({interrupt or 'SIGINT'}); the lab was removed", file=sys.stderr)
            return 3
        except LabError as error:
            print(f"ffo lab up: {error}", file=sys.stderr)
            _log_tails(cluster)
            with _shielded():
                cluster.down()
            return 1
    cluster.release()
    for line in describe_lab(cluster):
        print(line)
    example = cluster.nodes[-1]
    print(f"master: {master} ({cluster.node(master).address}); the others are BACKUP")
    print("try:")
    print(f"  ffo status -c {cluster.config(master)}")
    print(f"  ffo events --dir {cluster.state_dir(example)} --follow")
    print(f"  ip -n {cluster.lab.switch} link set {cluster.lab.port(master)} down    # pull {master}'s cable")
    print(f"  ffo why --dir {cluster.state_dir(example)} --last")
    print(f"  ip netns exec {cluster.lab.namespace(cluster.client)} bash    # a shell on the client")
    print("  ffo lab down")
    return 0


# -- down ----------------------------------------------------------------------------------------------------------


def run_down(args: argparse.Namespace) -> int:
    unavailable = _cannot_run("down")
    if unavailable is not None:
        return unavailable
    if existing_lab() is None:
        print("no lab is up")
        return 0
    with _shielded():
        done = tear_down()
    for line in done:
        print(line)
    left = existing_lab()
    if left is not None:
        print(f"ffo lab down: could not remove {left}", file=sys.stderr)
        return 1
    print("lab down")
    return 0


# -- demo ----------------------------------------------------------------------------------------------------------


def _simulated(args: argparse.Namespace, reason: str) -> int:
    from ffo.sim import demo as simulated

    print(
        f"ffo lab demo: network namespaces are unavailable here ({reason}); "
        "showing the SIMULATED demo (`ffo sim --demo`) instead",
        flush=True,
    )
    return simulated.run_demo(interval_cs(args.advert_interval), print)


def _emit(line: str) -> None:
    print(line, flush=True)


def run_demo(args: argparse.Namespace) -> int:
    from ffo.lab import demo, report  # the demo's modules import the CLI renderers; only the demo needs them

    usage = _usage("demo", args, 2)
    if usage is not None:
        return usage
    reason = netns_unavailable()
    if reason is not None:
        return _simulated(args, reason)
    refused = _refuse_second_lab("demo")
    if refused is not None:
        return refused
    _emit(
        f"ffo lab demo: {args.nodes} real ffo daemons in network namespaces; the master's cable is pulled while "
        "a client pings the VIP"
    )
    cluster = LabCluster(args.nodes, args.advert_interval)
    for line in describe_lab(cluster):
        _emit(line)
    code = 3
    with _interruptible():
        try:
            run = demo.run_demo(cluster, interval_cs(args.advert_interval), _emit)
            report.render(run, cluster, _emit)
            if args.keep_logs is not None:
                _keep_logs(cluster, args.keep_logs)
            for problem in run.problems:
                _emit(f"problem: {problem}")
            code = 1 if run.problems else 0
        except KeyboardInterrupt as interrupt:
            _emit(f"interrupted ({interrupt or 'SIGINT'}): tearing the lab down")
        except LabError as error:
            _emit(f"ffo lab demo: {error}")
            _log_tails(cluster)
            code = 1
        finally:
            with _shielded():
                done = cluster.down()
            _emit("")
            _emit(f"teardown: {'; '.join(done) or 'nothing left'}")
            if args.keep_logs is None and code != 3:
                _emit("(the event logs went with the lab; `--keep-logs DIR` keeps them for ffo events/why/replay)")
    return code


def _keep_logs(cluster: LabCluster, target: Path) -> None:
    for node in cluster.nodes:
        shutil.copytree(cluster.state_dir(node), target / node, dirs_exist_ok=True)
    _emit("")
    _emit(f"the event logs are kept under {target}/<node>/: ffo events --dir {target / cluster.nodes[-1]}")
