"""The cost of many virtual routers on one interface: ffo against keepalived, same topology, same run.

    .venv/bin/python tools/bench_scale.py [--count 10,50,200] [--interval 100ms,10ms] [--window 10s]
        [--impls ffo,keepalived] [--repeats 1] [--settle 2s] [--json FILE] [--keep]

Runs as root. For each (count K, interval) and implementation it builds a two-node lab (`ffo.lab.Lab`: a
bridge in a switch namespace, nodes n1 and n2, documentation addresses only) and runs K virtual routers on
n1's and n2's ``eth0``: VRIDs 1..K, one VIP each (198.51.100.i/32, then 203.0.113.x/32 past 200), n1 at
priority 200 (the master) and n2 at 100 (the backup) — two `ffo run` daemons or two keepalived (VRRP only).
n1 starts first and n2 once n1 is master of all K (so that n2 does not start as master of everything and
spend its first seconds handing it back); once n2 is BACKUP for all K and has sent nothing for a second,
and `--settle` more, it measures a `--window`:

- CPU: per cent of one core, for each node: utime + stime (plus the children it reaped) of every process of
  the daemon's tree, from ``/proc/<pid>/stat`` at both ends of the window — for ffo the kernel and all its
  actor processes, for keepalived its parent and its VRRP child;
- packets/s: what n1 and n2 sent, from the counters of their bridge ports in the switch namespace (a frame a
  node sends is a frame its port receives), so nothing is added to the nodes being measured;
- µs/packet: the master's CPU time over the packets it sent, the backup's over the packets it received;
- spurious transitions: state changes inside the window (everything is already elected when it opens): ffo's
  transition records (``ffo events``), keepalived's notify-script history. The backup's own packets are a
  second witness: a backup that stays Backup sends nothing.

Reference figures for keepalived are in BENCHMARKS.md ("keepalived CPU cost of many virtual routers"); the
machine is shared, so both implementations are measured in the same run, and `--repeats` reruns each row.
Namespaces and every process are removed at the end, also on Ctrl-C or SIGTERM (`--keep` keeps the scratch
directory with the configs, logs and event logs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import attrs
from benchlib import lab_preflight

from ffo.config import parse_duration
from ffo.lab import Lab, LabError, stop_process
from ffo.lab.keepalived import Keepalived, KeepalivedInstance, keepalived_version
from ffo.lab.nsenter import inside
from ffo.vrrp.timers import NS_PER_CS

REPO = Path(__file__).resolve().parents[1]
PRIORITY = {"n1": 200, "n2": 100}
NODES = ("n1", "n2")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
IMPLS = ("ffo", "keepalived")


def vip(vrid: int) -> str:
    """VRID i's VIP: 198.51.100.i for 1..200, 203.0.113.(i - 200) above (RFC 5737 documentation ranges)."""
    if 1 <= vrid <= 200:
        return f"198.51.100.{vrid}/32"
    if vrid <= 254:
        return f"203.0.113.{vrid - 200}/32"
    raise ValueError(f"VRID {vrid}: at most 254 routers")


def instance_name(vrid: int) -> str:
    return f"vr{vrid}"


# ------------------------------------------------------------------------------------------ processes, CPU


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from field 3 (state) on: the command name may hold spaces and parentheses."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants, from the parent PIDs in ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def cpu_ticks(pids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Per process: (user, system) clock ticks, its reaped children's included (utime + cutime, stime +
    cstime: fields 14-17); gone processes left out."""
    ticks = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None and fields[0] != "Z":
            utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
            ticks[pid] = (utime + cutime, stime + cstime)
    return ticks


def cpu_seconds_by_pid(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]
) -> dict[int, tuple[float, float]]:
    """(user, system) CPU seconds each process used between two `cpu_ticks` samples: processes that started in
    between count in full; one that ended and was reaped is in its parent's cutime/cstime."""
    used = {}
    for pid, (user, system) in after.items():
        user_before, system_before = before.get(pid, (0, 0))
        used[pid] = ((user - user_before) / CLOCK_TICKS, (system - system_before) / CLOCK_TICKS)
    return used


def process_label(pid: int, root: int) -> str:
    """What a process of a daemon's tree is: an ffo actor's ``--name``, ffo's kernel, keepalived's parent or
    VRRP child."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = cmdline.read().decode(errors="replace").split("\0")
    except OSError:
        return f"pid {pid}"
    for arg in argv:
        if arg.startswith("--name="):
            return arg.removeprefix("--name=")
    program = Path(argv[0]).name
    if program == "keepalived":
        return "keepalived" if pid == root else "keepalived-vrrp"
    return "kernel" if pid == root else program


def port_packets(lab: Lab) -> tuple[int, dict[str, int]]:
    """(CLOCK_MONOTONIC ns, frames each node has sent): what its bridge port received, read from the switch
    namespace's ``/proc/thread-self/net/dev`` (per namespace, and quick: the time is taken right after)."""
    with inside(lab.switch):
        with open("/proc/thread-self/net/dev", encoding="ascii") as dev:
            lines = dev.read().splitlines()
        at_ns = time.monotonic_ns()
    received: dict[str, int] = {}
    for line in lines[2:]:
        name, _, counters = line.partition(":")
        received[name.strip()] = int(counters.split()[1])  # receive: bytes, packets, ...
    return at_ns, {node: received[lab.port(node)] for node in NODES}


# ---------------------------------------------------------------------------------------------- the daemons


class Daemon(Protocol):
    """One VRRP daemon with K routers on a lab node, as the benchmark drives it."""

    node: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def root_pid(self) -> int: ...
    def roles(self) -> dict[str, str]: ...
    def transitions(self, start_mono_ns: int, end_mono_ns: int) -> int: ...


class FfoDaemon:
    """`ffo run -c FILE` with K ``[[instance]]``s."""

    def __init__(self, lab: Lab, node: str, directory: Path, count: int, interval: str) -> None:
        self.lab, self.node = lab, node
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "ffo.toml"
        self.state_dir = directory / "state"
        self.log = directory / "ffo.log"
        blocks = [
            f'[[instance]]\nname = "{instance_name(vrid)}"\ninterface = "eth0"\nvrid = {vrid}\n'
            f'priority = {PRIORITY[node]}\nadvert_interval = "{interval}"\nvips = ["{vip(vrid)}"]\n'
            for vrid in range(1, count + 1)
        ]
        head = f'[node]\nname = "{node}"\nrun_dir = "{directory}/run"\nstate_dir = "{self.state_dir}"\n\n'
        self.config.write_text(head + "\n".join(blocks))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            argv = [sys.executable, "-m", "ffo.cli.main", "run", "-c", str(self.config)]
            self.process = self.lab.exec(
                self.node, argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 30)

    def root_pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "ffo.cli.main", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)

    def roles(self) -> dict[str, str]:
        done = self._cli("status", "-c", str(self.config), "--json")
        if done.returncode != 0:
            return {}
        return {str(i["name"]): str(i["state"]) for i in json.loads(done.stdout)["instances"]}

    def transitions(self, start_mono_ns: int, end_mono_ns: int) -> int:
        done = self._cli("events", "--dir", str(self.state_dir), "--type", "transition", "--json")
        times = [int(json.loads(line)["mono_ns"]) for line in done.stdout.splitlines() if line.strip()]
        return sum(start_mono_ns <= t <= end_mono_ns for t in times)


class KeepalivedDaemon:
    """keepalived (VRRP only, foreground) with K ``vrrp_instance``s, through `ffo.lab.keepalived`."""

    def __init__(self, lab: Lab, node: str, directory: Path, count: int, interval_cs: int) -> None:
        self.node = node
        instances = [
            KeepalivedInstance(
                vrid=vrid,
                priority=PRIORITY[node],
                vips=(vip(vrid),),
                name=instance_name(vrid),
                advert_interval_cs=interval_cs,
            )
            for vrid in range(1, count + 1)
        ]
        self.daemon = Keepalived(lab, node, directory, instances)

    def start(self) -> None:
        self.daemon.run()

    def stop(self) -> None:
        self.daemon.stop(30)

    def root_pid(self) -> int:
        assert self.daemon.pid is not None
        return self.daemon.pid

    def roles(self) -> dict[str, str]:
        # keepalived runs the notify scripts concurrently, so their lines may land out of order: sort by time.
        latest: dict[str, str] = {}
        for change in sorted(self.daemon.history(), key=lambda change: change.time):
            latest[change.instance] = change.state
        return latest

    def transitions(self, start_mono_ns: int, end_mono_ns: int) -> int:
        # The notify script stamps wall-clock time; map the window onto it.
        offset = time.time_ns() - time.monotonic_ns()
        start, end = (start_mono_ns + offset) / 1e9, (end_mono_ns + offset) / 1e9
        return sum(start <= change.time <= end for change in self.daemon.history())


# ------------------------------------------------------------------------------------------- measurement


@attrs.frozen(kw_only=True)
class Row:
    """One window of one implementation at K routers and one interval."""

    impl: str
    count: int
    interval_ns: int
    window_s: float
    cpu_percent: dict[str, float]
    """Per node: CPU seconds over the window, in per cent of one core."""
    cpu_by_process: dict[str, dict[str, float]]
    """Per node, per process (`process_label`): the same, process by process."""
    system_percent: dict[str, float]
    """Per node: the part of `cpu_percent` spent in the kernel (system calls, and the softirqs that forward and
    deliver what the node sends)."""
    packets_per_s: dict[str, float]
    """Per node: frames sent per second."""
    spurious: int
    """State changes inside the window, both nodes."""
    elected_s: float
    """From the lab's start to every router elected and the backup quiet."""
    repeat: int
    """Which of `--repeats` windows this is (ffo's row is compared with keepalived's of the same repeat)."""

    @property
    def master_us_per_packet(self) -> float | None:
        sent = self.packets_per_s["n1"]
        return None if not sent else self.cpu_percent["n1"] / 100 / sent * 1e6

    @property
    def backup_us_per_packet(self) -> float | None:
        heard = self.packets_per_s["n1"]
        return None if not heard else self.cpu_percent["n2"] / 100 / heard * 1e6


ROLE = {"n1": "MASTER", "n2": "BACKUP"}


def wait_role(daemon: Daemon, count: int, timeout: float) -> None:
    """Poll until all `count` routers of `daemon` are in its node's role (`ROLE`)."""
    deadline = time.monotonic() + timeout
    while True:
        done = sum(state == ROLE[daemon.node] for state in daemon.roles().values())
        if done == count:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{daemon.node}: {done} of {count} routers {ROLE[daemon.node]} after {timeout:.0f} s")
        time.sleep(0.5)


def wait_quiet(lab: Lab, node: str, quiet_s: float, timeout: float) -> None:
    """Poll until `node` has sent nothing for `quiet_s` (a backup that is settled, VIP clean-up included)."""
    deadline = time.monotonic() + timeout
    _, last = port_packets(lab)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet_s:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{node} still sending after {timeout:.0f} s")
        time.sleep(0.2)
        _, now = port_packets(lab)
        if now[node] != last[node]:
            last, quiet_since = now, time.monotonic()


@contextlib.contextmanager
def running(impl: str, lab: Lab, directory: Path, count: int, interval: str) -> Iterator[dict[str, Daemon]]:
    """The daemons of `impl` in `lab`, elected: the master first (so that the backup does not spend its first
    seconds as master of everything and then giving it all back), then the backup. Stopped on exit."""
    daemons: dict[str, Daemon] = {}
    for node in NODES:
        if impl == "ffo":
            daemons[node] = FfoDaemon(lab, node, directory / node, count, interval)
        else:
            daemons[node] = KeepalivedDaemon(lab, node, directory / node, count, parse_duration(interval) // NS_PER_CS)
    try:
        for daemon in daemons.values():
            daemon.start()
            wait_role(daemon, count, timeout=60 + count * 0.2)
        wait_quiet(lab, "n2", quiet_s=1.0, timeout=60)
        yield daemons
    finally:
        for daemon in daemons.values():
            with contextlib.suppress(Exception):
                daemon.stop()


def measure(
    impl: str, count: int, interval: str, *, window_s: float, settle_s: float, scratch: Path, repeat: int = 0
) -> Row:
    """Start `impl` on both nodes, wait until all `count` routers are elected and `settle_s` more, then
    measure one window of `window_s` seconds."""
    directory = scratch / f"{impl}-{count}-{interval}-{time.monotonic_ns()}"
    started = time.monotonic()
    with Lab("ffo-bs", nodes=2) as lab, running(impl, lab, directory, count, interval) as daemons:
        elected_s = time.monotonic() - started
        time.sleep(settle_s)
        trees = {node: process_tree(daemon.root_pid()) for node, daemon in daemons.items()}
        cpu_before = {node: cpu_ticks(trees[node]) for node in NODES}
        cpu_start_ns = time.monotonic_ns()
        start_ns, packets_before = port_packets(lab)
        time.sleep(window_s)
        end_ns, packets_after = port_packets(lab)
        trees = {node: process_tree(daemon.root_pid()) for node, daemon in daemons.items()}
        cpu_end_ns = time.monotonic_ns()
        cpu_after = {node: cpu_ticks(trees[node]) for node in NODES}
        labels = {node: {pid: process_label(pid, trees[node][0]) for pid in trees[node]} for node in NODES}
        spurious = sum(daemon.transitions(start_ns, end_ns) for daemon in daemons.values())
    elapsed, cpu_elapsed = (end_ns - start_ns) / 1e9, (cpu_end_ns - cpu_start_ns) / 1e9
    by_process: dict[str, dict[str, float]] = {}
    system: dict[str, float] = {}
    for node in NODES:
        by_process[node], system[node] = {}, 0.0
        for pid, (user_s, system_s) in cpu_seconds_by_pid(cpu_before[node], cpu_after[node]).items():
            label = labels[node].get(pid, f"pid {pid}")
            by_process[node][label] = by_process[node].get(label, 0.0) + 100 * (user_s + system_s) / cpu_elapsed
            system[node] += 100 * system_s / cpu_elapsed
    return Row(
        impl=impl,
        count=count,
        interval_ns=parse_duration(interval),
        window_s=elapsed,
        cpu_percent={node: sum(by_process[node].values()) for node in NODES},
        cpu_by_process=by_process,
        system_percent=system,
        packets_per_s={node: (packets_after[node] - packets_before[node]) / elapsed for node in NODES},
        spurious=spurious,
        elected_s=round(elected_s, 1),
        repeat=repeat,
    )


# ----------------------------------------------------------------------------------------------- reporting


def _interval_name(ns: int) -> str:
    return f"{ns // 1_000_000_000} s" if ns % 1_000_000_000 == 0 else f"{ns // 1_000_000} ms"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(rows: Sequence[Row]) -> None:
    head = (
        f"{'K':>4} {'interval':>8} {'impl':10} {'master pkt/s':>12} {'master CPU':>10} {'backup CPU':>10} "
        f"{'µs/pkt M':>8} {'µs/pkt B':>8} {'backup pkt/s':>12} {'spurious':>8} {'CPU ffo/ka M':>12} "
        f"{'CPU ffo/ka B':>12}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        ratios = ("", "")
        if row.impl == "ffo":
            reference = next(
                (
                    r
                    for r in rows
                    if r.impl == "keepalived"
                    and (r.count, r.interval_ns, r.repeat) == (row.count, row.interval_ns, row.repeat)
                ),
                None,
            )
            if reference is not None:
                master, backup = (
                    _num(row.cpu_percent[n] / reference.cpu_percent[n], 2) if reference.cpu_percent[n] else "-"
                    for n in NODES
                )
                ratios = (master, backup)
        print(
            f"{row.count:>4} {_interval_name(row.interval_ns):>8} {row.impl:10} {row.packets_per_s['n1']:>12,.0f} "
            f"{_num(row.cpu_percent['n1']) + ' %':>10} {_num(row.cpu_percent['n2']) + ' %':>10} "
            f"{_num(row.master_us_per_packet):>8} {_num(row.backup_us_per_packet):>8} "
            f"{row.packets_per_s['n2']:>12,.1f} {row.spurious:>8} {ratios[0]:>12} {ratios[1]:>12}",
            flush=True,
        )
    print(
        "\nCPU = per cent of one core over the window (utime + stime of the daemon's whole process tree). pkt/s ="
        " frames sent,\ncounted on the node's bridge port. µs/pkt = CPU time per advertisement sent (M, master) or"
        " heard (B, backup).\nspurious = state changes inside the window (both nodes); backup pkt/s should be 0."
        " ffo/ka = CPU ratio to keepalived's row\nof the same repeat."
    )


def _breakdown(row: Row) -> str:
    return "; ".join(
        f"{node} (system {row.system_percent[node]:.1f} %) "
        + ", ".join(f"{label} {percent:.1f} %" for label, percent in sorted(processes.items()))
        for node, processes in row.cpu_by_process.items()
    )


def describe_run(args: argparse.Namespace) -> str:
    version = keepalived_version() if "keepalived" in args.impls else None
    keepalived = "" if version is None else f", keepalived {'.'.join(map(str, version))}"
    return (
        f"# scale: K routers on one interface, VRRPv3 IPv4, priorities 200/100, {args.window:g} s windows, "
        f"{args.repeats} repeat(s); Python {platform.python_version()}{keepalived}, Linux {platform.release()}, "
        f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


# ------------------------------------------------------------------------------------------------------ main


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", default="10,50,200", help="routers per node, comma-separated (%(default)s)")
    parser.add_argument("--interval", default="100ms,10ms", help="comma-separated (default: %(default)s)")
    parser.add_argument("--window", default="10s", help="measurement window (default: %(default)s)")
    parser.add_argument("--settle", default="2s", help="wait after every router is elected (default: %(default)s)")
    parser.add_argument("--impls", default="ffo,keepalived", help="default: %(default)s")
    parser.add_argument("--repeats", type=int, default=1, help="windows per row (default: %(default)s)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every row as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (configs, logs)")
    args = parser.parse_args(argv)
    try:
        args.count = [int(part) for part in _split(args.count)]
        args.interval = _split(args.interval)
        for interval in args.interval:
            parse_duration(interval)
        args.window = parse_duration(args.window) / 1e9
        args.settle = parse_duration(args.settle) / 1e9
    except ValueError as error:
        parser.error(str(error))
    args.impls = _split(args.impls)
    for impl in args.impls:
        if impl not in IMPLS:
            parser.error(f"unknown implementation {impl!r} (known: {', '.join(IMPLS)})")
    for count in args.count:
        if not 1 <= count <= 254:
            parser.error(f"--count {count}: 1..254 routers")
    return args


def run_rows(args: argparse.Namespace, scratch: Path, report: Callable[[Row], None]) -> None:
    for count in args.count:
        for interval in args.interval:
            for repeat in range(args.repeats):
                for impl in args.impls:
                    print(f"# {impl}: {count} routers at {interval}", file=sys.stderr, flush=True)
                    row = measure(
                        impl,
                        count,
                        interval,
                        window_s=args.window,
                        settle_s=args.settle,
                        scratch=scratch,
                        repeat=repeat,
                    )
                    report(row)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    refused = lab_preflight("bench_scale", with_keepalived="keepalived" in args.impls)
    if refused is not None:
        return refused
    scratch = Path(tempfile.mkdtemp(prefix="ffo-bs-"))
    rows: list[Row] = []

    def report(row: Row) -> None:
        rows.append(row)
        print(
            f"  {row.impl} K={row.count} {_interval_name(row.interval_ns)}: master {row.cpu_percent['n1']:.1f} %, "
            f"backup {row.cpu_percent['n2']:.1f} %, {row.packets_per_s['n1']:,.0f} pkt/s, "
            f"spurious {row.spurious} (elected in {row.elected_s} s); by process: {_breakdown(row)}",
            file=sys.stderr,
            flush=True,
        )

    status = 0
    try:
        run_rows(args, scratch, report)
    except KeyboardInterrupt:
        print("bench_scale: interrupted; cleaning up", file=sys.stderr)
        status = 130
    except (TimeoutError, LabError, subprocess.CalledProcessError) as error:
        print(f"bench_scale: {error} (logs in {scratch})", file=sys.stderr)
        args.keep, status = True, 1
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    if rows:
        print(describe_run(args))
        print_table(rows)
        if args.json is not None:
            payload = [attrs.asdict(row) | {"master_us_per_packet": row.master_us_per_packet} for row in rows]
            args.json.write_text(json.dumps(payload, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
