"""Resync throughput between two real daemons over CurveZMQ TCP, and the receiver's VRRP timer lateness meanwhile.

    .venv/bin/python tools/bench_resync.py [--records 1000000] [--interval 10ms] [--idle 20] [--realtime N]
        [--rpc-nice N] [--loopback] [--dir DIR]

Node b's event directory gets a stream ``bulk`` of `--records` small records (a Heartbeat, ~100 bytes stored),
written off-line by `EventWriter` before b starts. Then, in two lab namespaces on one bridge:

1. a starts (`ffo run`: a VRRP instance at `--interval`, priority 200, so its Adver_Timer fires every
   interval; RPC listening on its lab address with b as its peer);
2. b starts (priority 100: a backup) while TCP is dropped on its bridge port (a classic-BPF tc filter, as
   `ffo.lab.faults` uses for loss), so both daemons run, VRRP flows and RPC cannot connect yet;
3. after `--idle` seconds of that, the filter goes: the link comes up and a pulls everything b offers (its
   ``bulk`` stream and its few own records) in the RPC actor's batches;
4. the resync is timed from a's ``rpc.peer_up`` record for b to its ``rpc.resync_caught_up`` record, whose
   `records` and `took_ns` are the figures (the two agree with the records' own stamps).

a's timer lateness is compared between the resync and the window of the same length just before the filter
went (the same processes doing the same VRRP work, without the resync), from two sources:

- the wire: every advertisement a sends is captured on its bridge port with the kernel's receive timestamp
  (``SO_TIMESTAMPNS``); since the machine re-arms the Adver_Timer at fire time + interval (RFC 9568 §6.4.3),
  each gap minus the interval is that firing's lateness plus the send path's jitter: p50/p99/max per window;
- a's own measurement: with ``run_flush_interval = "1s"`` each ``vrrp.run`` record covers about a second of
  Adver_Timer firings and holds their worst lateness, so each window's max and timer count come from the log.
  `ffo status --json`'s p50/p99 cover the last 4096 timers (41 s at 10 ms), more than one window, so they are
  printed once, at the end, with its max since start.

Also printed: the CPU seconds a's and b's RPC actors used during the resync (/proc/<pid>/stat), which says which
side bounds the rate, and whether b's VRRP instance left BACKUP meanwhile (a stall of a's timers past b's
Master_Down_Interval is a spurious takeover). `--realtime N` runs both nodes with ``realtime_priority = N``
(SCHED_FIFO for the timing-critical actors); `--rpc-nice N` renices both RPC actors (every thread) to N before
the link opens, to see what a lower CPU priority for the resync would buy without SCHED_FIFO. Correctness is
checked: a's replica of ``bulk`` holds exactly b's frames, byte for byte.

`--loopback`: both daemons on 127.0.0.1 in the host namespace (nothing else of the host is touched), without
VRRP (an instance needs an interface of its own): throughput only, a second row without veths and bridge.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import attrs

from ffo.actors.control import ask
from ffo.bus import Heartbeat
from ffo.clock import SystemClock
from ffo.eventlog.frame import MAGIC
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.reader import Corruption, list_segments, read_stream
from ffo.eventlog.record import Record
from ffo.eventlog.writer import EventWriter
from ffo.lab import Lab, NodeSpec, inside, stop_process
from ffo.lab.faults import clear_loss

REPO = Path(__file__).resolve().parents[1]
STREAM = "bulk"
RPC_PORT = 7400
TIMEOUT_S = 600.0
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value; Python does not export it
_ETH_P_ALL, _ETH_P_IP, _IPPROTO_VRRP = 0x0003, 0x0800, 112


def write_bulk(events_dir: Path, node: str, count: int) -> tuple[float, int]:
    """b's ``bulk`` stream, as its own writer would have left it: (seconds to write, frame bytes)."""
    clock = SystemClock()
    start = time.perf_counter()
    with EventWriter.open(
        events_dir / STREAM, node=node, stream=STREAM, clock=clock, policy=LogPolicy(retain_bytes=1 << 40)
    ) as writer:
        mono, wall = clock.monotonic_ns(), clock.wall_ns()
        for n in range(count):
            writer.append(
                Heartbeat(actor="bulk", pid=4242, seq=n, loop_lag_ns=n % 5000), mono_ns=mono + n, ts_ns=wall + n
            )
            if n % 10_000 == 9_999:
                writer.sync()
    return time.perf_counter() - start, frame_bytes(events_dir / STREAM)[0]


def frame_bytes(stream: Path) -> tuple[int, str]:
    """The frames of a stream's segments (their headers left out): total size and SHA-256."""
    digest, size = hashlib.sha256(), 0
    for _, path in list_segments(stream):
        data = path.read_bytes()[len(MAGIC) :]
        digest.update(data)
        size += len(data)
    return size, digest.hexdigest()


@attrs.define
class Daemon:
    """One node of the benchmark: its config (VRRP optional) and what the benchmark reads of it while it runs."""

    name: str
    root: Path
    endpoint: str
    """Where its RPC actor listens."""
    priority: int | None
    """None: no VRRP instance."""
    interval: str
    realtime: int = 0
    """`[node] realtime_priority`."""

    @property
    def directory(self) -> Path:
        return self.root / self.name

    @property
    def state_dir(self) -> Path:
        return self.directory / "state"

    @property
    def config(self) -> Path:
        return self.directory / "ffo.toml"

    def write_config(self, peer: Daemon) -> None:
        keys = self.root / "keys"
        lines = [
            "[node]",
            f'name = "{self.name}"',
            f'run_dir = "{self.directory}/run"',
            f'state_dir = "{self.state_dir}"',
            f"realtime_priority = {self.realtime}",
            "",
            "[events]",
            'run_flush_interval = "1s"',
            "",
            "[rpc]",
            f'listen = "{self.endpoint}"',
            f'secret_key_file = "{keys / (self.name + ".key_secret")}"',
            "",
            "[[rpc.peers]]",
            f'name = "{peer.name}"',
            f'endpoint = "{peer.endpoint}"',
            f'public_key_file = "{keys / (peer.name + ".key")}"',
        ]
        if self.priority is not None:
            lines += [
                "",
                "[[instance]]",
                'name = "web"',
                'interface = "eth0"',
                "vrid = 51",
                f"priority = {self.priority}",
                f'advert_interval = "{self.interval}"',
                'vips = ["192.0.2.100/24"]',
            ]
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config.write_text("\n".join(lines) + "\n")

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "ffo.cli.main", "run", "-c", str(self.config)]

    def status(self) -> dict[str, Any] | None:
        with contextlib.suppress(ConnectionError, OSError):
            reply = ask(self.directory / "run" / "control.sock", "status")
            if reply.get("ok"):
                found: dict[str, Any] = reply["status"]
                return found
        return None

    def state(self) -> str | None:
        """The VRRP instance's state, once the VRRP actor has reported it."""
        report = self.status()
        return str(report["instances"][0]["state"]) if report and report["instances"] else None

    def ready(self) -> bool:
        """Every actor of the daemon has made its ready handshake."""
        report = self.status()
        return report is not None and all(entry["state"] == "ready" for entry in report["actors"])

    def takeovers(self) -> list[Record]:
        """The node's VRRP transitions into Master."""
        found = []
        for item in read_stream(self.state_dir / "events" / "vrrp"):
            if isinstance(item, Record) and item.type == "vrrp.transition":
                step = item.fields["step"]
                assert isinstance(step, dict)
                if step["effects"][0]["to_role"] == "MASTER":
                    found.append(item)
        return found

    def actor_pid(self, actor: str) -> int | None:
        report = self.status()
        for entry in report["actors"] if report else ():
            if entry["name"] == actor and entry["state"] == "ready":
                return int(entry["pid"])
        return None

    def rpc_record(self, event_type: str, peer: str) -> Record | None:
        """The first record of `event_type` about `peer` in the node's ``rpc`` stream, if there is one yet."""
        for item in read_stream(self.state_dir / "events" / "rpc"):
            if isinstance(item, Record) and item.type == event_type and item.fields.get("peer") == peer:
                return item
        return None


def free_port(address: str) -> int:
    """A TCP port nothing listens on now (for the loopback run, where the host's ports are shared)."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT_S) -> Any:
    """Poll `condition` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return value


def renice(pid: int, nice: int) -> None:
    """Set every thread of the process to `nice` (Linux: setpriority acts on one thread; later threads
    inherit their creator's value)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.setpriority(os.PRIO_PROCESS, int(tid), nice)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class AdvertCapture:
    """Kernel receive timestamps (CLOCK_REALTIME ns) of the IPv4 VRRP packets a node sends into its bridge port."""

    def __init__(self, lab: Lab, node: str) -> None:
        with inside(lab.switch):
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
            self._sock.bind((lab.port(node), 0))
        self._sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self._sock.settimeout(0.2)
        self.stamps: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        space = socket.CMSG_SPACE(16)
        while not self._stop.is_set():
            try:
                frame, ancillary, _flags, (_port, _proto, kind, *_rest) = self._sock.recvmsg(128, space)
            except TimeoutError:
                continue
            if kind == socket.PACKET_OUTGOING or len(frame) < 34:
                continue
            if int.from_bytes(frame[12:14], "big") != _ETH_P_IP or frame[23] != _IPPROTO_VRRP:
                continue
            for level, message_type, data in ancillary:
                if level == socket.SOL_SOCKET and message_type == _SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", data[:16])
                    self.stamps.append(seconds * 1_000_000_000 + nanoseconds)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@attrs.frozen
class Window:
    """[start_ns, end_ns) on CLOCK_MONOTONIC."""

    name: str
    start_ns: int
    end_ns: int

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


def wire_lateness(stamps: list[int], window: Window, interval_ns: int, wall_minus_mono: int) -> tuple[float, ...]:
    """p50, p99, max (ms) of advertisement gap minus interval within `window`, and the number of gaps."""
    start, end = window.start_ns + wall_minus_mono, window.end_ns + wall_minus_mono
    inside_window = [stamp for stamp in stamps if start <= stamp < end]
    late = sorted(later - earlier - interval_ns for earlier, later in itertools.pairwise(inside_window))
    if not late:
        return (float("nan"),) * 3 + (0.0,)

    def rank(percent: int) -> float:
        return late[max(-(-percent * len(late) // 100), 1) - 1] / 1e6

    return rank(50), rank(99), late[-1] / 1e6, float(len(late))


def logged_lateness(daemon: Daemon, window: Window) -> tuple[float, int]:
    """The worst Adver_Timer lateness (ms) and the timer count of the ``vrrp.run`` records ending in `window`."""
    worst, timers = 0, 0
    for item in read_stream(daemon.state_dir / "events" / "vrrp"):
        if isinstance(item, Corruption) or item.type != "vrrp.run":
            continue
        last = item.fields["last"]
        assert isinstance(last, dict)
        if window.start_ns <= int(last["now_ns"]) < window.end_ns:
            worst = max(worst, int(str(item.fields["max_lateness_ns"])))
            timers += int(str(item.fields["count"]))
    return worst / 1e6, timers


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every daemon started outside a lab, stopped by its PID whatever happens."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            stop_process(process, 30)


@attrs.frozen(kw_only=True)
class Resync:
    """What one run measured."""

    records: int
    """As a's ``rpc.resync_caught_up`` says: every record fetched from b since the link came up."""
    took_s: float
    """That record's `took_ns`: from the pong that brought the link up to the last batch stored."""
    stamped_s: float
    """The same span from the records' own stamps (``rpc.peer_up`` to ``rpc.resync_caught_up``)."""
    bulk_bytes: int
    cpu_a_s: float
    """a's RPC actor, from b's start (lab) or the link's (loopback) to the catch-up."""
    cpu_b_s: float
    """b's RPC actor, from its ready handshake to the catch-up."""
    window: Window


def keygen(root: Path, names: tuple[str, ...]) -> None:
    for name in names:
        subprocess.run(
            [sys.executable, "-m", "ffo.cli.main", "keygen", "--out", str(root / "keys"), "--name", name],
            cwd=REPO,
            check=True,
            capture_output=True,
        )


def prepare(root: Path, a: Daemon, b: Daemon, count: int) -> int:
    """Keys, configs and b's bulk stream; the bulk stream's frame bytes."""
    keygen(root, (a.name, b.name))
    a.write_config(b)
    b.write_config(a)
    seconds, size = write_bulk(b.state_dir / "events", b.name, count)
    print(f"b's {STREAM} stream: {count:,} records, {size / 1e6:.1f} MB of frames, written in {seconds:.1f} s")
    return size


def catch_up(a: Daemon, b: Daemon, cpu: dict[int, float], started: subprocess.Popen[bytes]) -> tuple[Record, Record]:
    """Wait for a to catch up with b: a's peer_up and caught_up records; `cpu` (pid → CPU seconds at the
    start) becomes the CPU seconds each RPC actor used since."""
    done = wait_for(lambda: started.poll() is None and a.rpc_record("rpc.resync_caught_up", b.name), "the catch-up")
    for pid, before in cpu.items():
        cpu[pid] = cpu_seconds(pid) - before
    up = a.rpc_record("rpc.peer_up", b.name)
    assert up is not None
    return up, done


def measured(up: Record, done: Record, bulk: int, cpu: list[float], count: int) -> Resync:
    records, took = int(str(done.fields["records"])), int(str(done.fields["took_ns"]))
    assert records >= count, f"caught up after {records} records, fewer than the {count} of the bulk stream"
    return Resync(
        records=records,
        took_s=took / 1e9,
        stamped_s=(done.mono_ns - up.mono_ns) / 1e9,
        bulk_bytes=bulk,
        cpu_a_s=cpu[0],
        cpu_b_s=cpu[1],
        window=Window("resync", up.mono_ns, done.mono_ns),
    )


def check_replica(a: Daemon, b: Daemon) -> None:
    ours = frame_bytes(b.state_dir / "events" / STREAM)
    theirs = frame_bytes(a.state_dir / "replica" / b.name / STREAM)
    assert ours == theirs, f"a's replica of b/{STREAM} differs: {theirs} vs {ours}"


def start(lab: Lab | None, daemon: Daemon) -> subprocess.Popen[bytes]:
    """`ffo run` in the daemon's lab node (or, without a lab, in the host namespace), its output to a file."""
    with (daemon.directory / "daemon.log").open("ab") as log:
        options: dict[str, Any] = {"cwd": REPO, "stdout": log, "stderr": subprocess.STDOUT, "start_new_session": True}
        if lab is None:
            return subprocess.Popen(daemon.argv(), **options)
        return lab.exec(daemon.name, daemon.argv(), **options)


def run_lab(root: Path, args: argparse.Namespace) -> None:
    count, interval, idle_s, realtime, rpc_nice = args.records, args.interval, args.idle, args.realtime, args.rpc_nice
    a = Daemon(name="a", root=root, endpoint=f"tcp://192.0.2.11:{RPC_PORT}", priority=200, interval=interval)
    b = Daemon(name="b", root=root, endpoint=f"tcp://192.0.2.12:{RPC_PORT}", priority=100, interval=interval)
    a.realtime = b.realtime = realtime
    bulk = prepare(root, a, b, count)
    nodes = [NodeSpec(name="a", ipv4="192.0.2.11/24"), NodeSpec(name="b", ipv4="192.0.2.12/24")]
    with Lab("ffo-bench", nodes=nodes) as lab:
        capture = AdvertCapture(lab, "a")
        try:
            start(lab, a)
            wait_for(lambda: a.state() == "MASTER", "a to be master")
            drop_tcp(lab, "b")
            started = start(lab, b)
            wait_for(lambda: b.state() == "BACKUP" and b.ready(), "b to be up, as backup")
            pids = [wait_for(partial(daemon.actor_pid, "rpc"), f"{daemon.name}'s RPC actor") for daemon in (a, b)]
            for pid in pids if rpc_nice else ():
                renice(pid, rpc_nice)
            time.sleep(idle_s)
            cpu = {pid: cpu_seconds(pid) for pid in pids}
            opened_ns = time.monotonic_ns()
            clear_loss(lab.switch, lab.port("b"))
            up, done = catch_up(a, b, cpu, started)
            final = a.status()
            time.sleep(0.2)  # the last advertisements of the window reach the capture
        finally:
            capture.close()
        resync = measured(up, done, bulk, [cpu[pid] for pid in pids], count)
        check_replica(a, b)
        takeovers = len(b.takeovers())
    settings = (f", realtime_priority {realtime}" if realtime else "") + (
        f", RPC actors at nice {rpc_nice}" if rpc_nice else ""
    )
    report(resync, "lab namespaces, veth + bridge" + settings)
    before = min(int(idle_s * 1e9), done.mono_ns - up.mono_ns)
    idle = Window("before", opened_ns - before, opened_ns)
    lateness(a, capture.stamps, interval, (idle, resync.window), final)
    print(f"  b's takeovers (transitions to MASTER) while a was master: {takeovers}")


def run_loopback(root: Path, count: int) -> None:
    a = Daemon(name="a", root=root, endpoint=f"tcp://127.0.0.1:{free_port('127.0.0.1')}", priority=None, interval="")
    b = Daemon(name="b", root=root, endpoint=f"tcp://127.0.0.1:{free_port('127.0.0.1')}", priority=None, interval="")
    bulk = prepare(root, a, b, count)
    with processes() as started:
        started.append(start(None, a))
        a_rpc = wait_for(lambda: a.actor_pid("rpc"), "a's RPC actor")
        cpu_a = cpu_seconds(a_rpc)
        started.append(start(None, b))
        b_rpc = wait_for(lambda: b.actor_pid("rpc"), "b's RPC actor")
        cpu = {a_rpc: cpu_a, b_rpc: cpu_seconds(b_rpc)}
        up, done = catch_up(a, b, cpu, started[1])
    resync = measured(up, done, bulk, [cpu[a_rpc], cpu[b_rpc]], count)
    check_replica(a, b)
    report(resync, "host loopback, no VRRP")


def drop_tcp(lab: Lab, node: str) -> None:
    """Drop every TCP segment crossing the node's bridge port (both ways): its RPC links cannot connect.

    Classic BPF in a tc filter on the port, in the switch namespace (as `ffo.lab.faults` drops at random):
    ``if ethertype == IPv4 and ip.protocol == 6: SHOT else OK``; the program sees the Ethernet header at 0.
    """
    clear_loss(lab.switch, lab.port(node))
    program = "6,40 0 0 12,21 0 3 2048,48 0 0 23,21 0 1 6,6 0 0 2,6 0 0 0"
    tc(lab, "qdisc", "add", "dev", lab.port(node), "clsact")
    for hook in ("ingress", "egress"):
        tc(lab, "filter", "add", "dev", lab.port(node), hook, "pref", "1", "bpf", "da", "bytecode", program)


def tc(lab: Lab, *argv: str) -> None:
    done = subprocess.run(["tc", "-n", lab.switch, *argv], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"tc {' '.join(argv)}: {done.stderr.strip()}")


def report(resync: Resync, where: str) -> None:
    megabytes = resync.bulk_bytes / 1e6
    print(f"resync b -> a over CurveZMQ tcp ({where}): {resync.records:,} records, {megabytes:.1f} MB of frames")
    print(f"  {'events/s':>10} {'MB/s':>7} {'s (took_ns)':>12} {'s (stamps)':>11} {'cpu a rpc':>10} {'cpu b rpc':>10}")
    print(
        f"  {resync.records / resync.took_s:>10,.0f} {megabytes / resync.took_s:>7.1f} {resync.took_s:>12.2f} "
        f"{resync.stamped_s:>11.2f} {resync.cpu_a_s:>9.2f}s {resync.cpu_b_s:>9.2f}s"
    )
    print(f"  a's replica of b/{STREAM}: byte-identical frames")


def lateness(a: Daemon, stamps: list[int], interval: str, windows: tuple[Window, ...], final: Any) -> None:
    interval_ns = int(float(interval.removesuffix("ms")) * 1e6)
    wall_minus_mono = min((time.time_ns() - time.monotonic_ns() for _ in range(5)), key=abs)
    print(f"a's Adver_Timer lateness at {interval} (ms)")
    print(f"  {'window':28} {'wire p50':>9} {'p99':>7} {'max':>7} {'gaps':>6}   {'logged max':>10} {'timers':>6}")
    for window in windows:
        p50, p99, worst, gaps = wire_lateness(stamps, window, interval_ns, wall_minus_mono)
        logged, timers = logged_lateness(a, window)
        name = f"{window.name} ({window.seconds:.1f} s)"
        print(f"  {name:28} {p50:>9.3f} {p99:>7.3f} {worst:>7.3f} {gaps:>6.0f}   {logged:>10.3f} {timers:>6}")
    if final and final["instances"]:
        late = final["instances"][0]["timer_lateness_ms"]
        print(
            f"  ffo status at the catch-up: p50 {late['p50']:.3f}, p99 {late['p99']:.3f} (last 4096 timers), "
            f"max {late['max']:.3f} (since start)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records in b's bulk stream")
    parser.add_argument("--interval", default="10ms", help="a's advertisement interval (lab only)")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds both run before the link opens (lab only)")
    parser.add_argument("--realtime", type=int, default=0, help="[node] realtime_priority of both nodes (lab only)")
    parser.add_argument(
        "--rpc-nice", type=int, default=0, help="renice both RPC actors before the link opens (lab only)"
    )
    parser.add_argument("--loopback", action="store_true", help="host loopback, no namespaces and no VRRP")
    parser.add_argument("--dir", type=Path, default=None, help="where the nodes' files go (default: /tmp)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ffo-bres-", dir=args.dir))  # short: ipc:// paths are limited
    try:
        if args.loopback:
            run_loopback(root, args.records)
        else:
            run_lab(root, args)
    finally:
        if not os.environ.get("FFO_BENCH_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
