"""The failover gap on the wire: ffo against keepalived, same topology, same run (DESIGN.md §5, BENCHMARKS.md).

    .venv/bin/python tools/bench_failover.py [--intervals 1s,100ms,10ms] [--scenarios cut,graceful]
        [--impls ffo,keepalived] [--repeats 5] [--ping MS] [--seed 1] [--json FILE] [--keep]

Runs as root. For each interval and implementation it builds a lab (`ffo.lab.Lab`: a bridge in a switch
namespace, nodes n1 and n2 and a client, documentation addresses only), starts the master n1 (priority 200)
and the backup n2 (priority 100) — two `ffo run` daemons or two keepalived — and repeats each scenario:

- ``cut``: n1's cable is pulled (`Lab.cut`: its bridge port goes down). RFC bound: the backup's
  Master_Down_Interval, 3 x interval + Skew_Time(100);
- ``graceful``: n1's daemon gets SIGTERM and sends priority 0. RFC bound: Skew_Time(100);
- ``kill``: n1's whole daemon is SIGKILLed (ffo: its process group; keepalived: parent and VRRP child), so
  nothing is sent. RFC bound: as for a cut (not in the default set: the gap matches ``cut``). Neither daemon
  can remove its VIP when killed, so n1's kernel keeps answering the client's pings: the client "outage" of
  this row is near zero while the VIP is, for a while, on both nodes.

The sniffer is a packet socket in the switch namespace that keeps each frame once, as it enters the bridge
from a node's port, with the kernel's receive timestamp (SO_TIMESTAMPNS), so neither this script's scheduling
nor the daemons' logging is in the figures. Per trial:

- gap = the new master's first advertisement - the old master's last advertisement before it (for a graceful
  stop that last one is the priority-0 advertisement, which starts the backup's Skew_Time);
- excess = gap - RFC bound: what the implementation adds (timer wake-up, the path to the wire);
- advert-to-GARP = the new master's first gratuitous ARP for the VIP - its first advertisement;
- client outage = the longest silence of a client namespace pinging the VIP every ``--ping`` ms around the
  fault (`ffo.lab.probe`, `ffo.lab.outage`): shorter than the gap for a cut, which falls somewhere in the
  advertisement cycle, and longer by the time the client needs to learn the VIP's new MAC address;
- ffo only, the excess taken apart with the new master's own record of its takeover (its transition in
  `ffo events --json`; monotonic times mapped onto the sniffer's clock): rx = the old master's last
  advertisement on the wire -> the backup arming its timer on it; timer = the timer's lateness (cause_data
  fired_ns - deadline_ns); tx = the timer firing -> the first advertisement on the wire.

Between trials the old master comes back (cable restored, daemon restarted) and the script waits until it is
master again and the backup silent. The fault is injected at a random phase of the advertisement cycle
(`--seed`). Namespaces and every process are removed at the end, also on Ctrl-C or SIGTERM (`--keep` keeps
the scratch directory with the daemons' logs and event logs).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import json
import math
import os
import platform
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs
from benchlib import lab_preflight

from ffo.config import parse_duration
from ffo.lab import Lab, LabError, NodeSpec, stop_process
from ffo.lab.keepalived import Keepalived, KeepalivedInstance, keepalived_version
from ffo.lab.nsenter import inside
from ffo.lab.outage import measure_outage
from ffo.lab.probe import Prober
from ffo.vrrp.timers import NS_PER_CS, master_down_interval_ns, skew_time_ns

REPO = Path(__file__).resolve().parents[1]
NODES = (NodeSpec(name="n1", ipv4="192.0.2.11/24"), NodeSpec(name="n2", ipv4="192.0.2.12/24"))
VIP = "192.0.2.100"
VRID = 51
PRIORITY = {"n1": 200, "n2": 100}
SCENARIOS = ("cut", "graceful", "kill")

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35  # <asm-generic/socket.h>; Python 3.11 does not export it
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
# Classic BPF (<linux/filter.h>): keep VRRP over IPv4 and ARP, not as sent out of a port. Without it the
# client's pings (1,000 frames/s and their copies) would wake the sniffer's thread, whose CPU the daemons
# being measured share. (code, jt, jf, k); jumps count instructions after the next one.
SNIFFER_FILTER = (
    (0x20, 0, 0, 0xFFFFF004),  # ld pkttype (SKF_AD_OFF + SKF_AD_PKTTYPE)
    (0x15, 6, 0, PACKET_OUTGOING),  # jeq OUTGOING -> drop
    (0x28, 0, 0, 12),  # ldh [12]: the ethertype
    (0x15, 3, 0, 0x0806),  # jeq ARP -> keep
    (0x15, 0, 3, 0x0800),  # jne IPv4 -> drop
    (0x30, 0, 0, 23),  # ldb [23]: the IPv4 protocol
    (0x15, 0, 1, 112),  # jne VRRP -> drop
    (0x06, 0, 0, 0xFFFF),  # keep: ret 65535
    (0x06, 0, 0, 0),  # drop: ret 0
)


# --------------------------------------------------------------------------------------------- the sniffer


@attrs.frozen
class Frame:
    """One frame as it entered the bridge: from which node, when (CLOCK_REALTIME ns), what it was."""

    ts_ns: int
    node: str
    kind: str  # "advert" or "garp"
    priority: int | None = None


def parse_frame(node: str, ts_ns: int, data: bytes) -> Frame | None:
    """A VRRP advertisement (IPv4, protocol 112) or a gratuitous ARP for the VIP; None for anything else."""
    if len(data) < 42:
        return None
    ethertype = struct.unpack_from("!H", data, 12)[0]
    if ethertype == 0x0800 and data[23] == 112:
        payload = 14 + (data[14] & 0x0F) * 4
        if len(data) >= payload + 8:
            return Frame(ts_ns=ts_ns, node=node, kind="advert", priority=data[payload + 2])
    elif ethertype == 0x0806:
        sender, target = socket.inet_ntoa(data[28:32]), socket.inet_ntoa(data[38:42])
        if sender == target == VIP:
            return Frame(ts_ns=ts_ns, node=node, kind="garp")
    return None


class Sniffer:
    """A packet socket in the switch namespace, read by a thread: each node's frames as they enter the bridge.

    The socket sees a frame several times (entering from the node's port, delivered to ``br0``, leaving by
    the other ports); only the entry is kept: a ``v-<node>`` port and not PACKET_OUTGOING.
    """

    def __init__(self, namespace: str) -> None:
        with inside(namespace):
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        program = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *insn) for insn in SNIFFER_FILTER))
        fprog = struct.pack("HL", len(SNIFFER_FILTER), ctypes.addressof(program))  # struct sock_fprog
        self._sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._frames: list[Frame] = []
        self._arrived = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sniffer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not select.select([self._sock], [], [], 0.1)[0]:
                continue
            data, ancillary, _flags, address = self._sock.recvmsg(2048, socket.CMSG_SPACE(16))
            port, pkttype = address[0], address[2]
            if not port.startswith("v-") or pkttype == PACKET_OUTGOING:
                continue
            ts_ns = time.time_ns()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    ts_ns = seconds * 1_000_000_000 + nanoseconds
            frame = parse_frame(port[2:], ts_ns, data)
            if frame is not None:
                with self._arrived:
                    self._frames.append(frame)
                    self._arrived.notify_all()

    def mark(self) -> int:
        """A position in the capture: `frames(mark)` and `wait_for(..., mark)` look only at what came after."""
        with self._arrived:
            return len(self._frames)

    def frames(self, start: int = 0) -> list[Frame]:
        with self._arrived:
            return self._frames[start:]

    def wait_for(self, match: Callable[[Frame], bool], start: int, timeout: float) -> Frame | None:
        """The first frame at or after position `start` that `match`es, waiting up to `timeout` seconds for it.

        Sleeps on a condition variable between frames rather than polling, so that the benchmark itself does
        not compete for the CPU with the daemons it measures while a takeover is under way.
        """
        deadline = time.monotonic() + timeout
        index = start
        with self._arrived:
            while True:
                for frame in self._frames[index:]:
                    if match(frame):
                        return frame
                index = len(self._frames)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._arrived.wait(left)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


# ---------------------------------------------------------------------------------------------- the routers


@attrs.frozen
class Takeover:
    """The new master's takeover timer as it logged it (CLOCK_MONOTONIC ns): armed, due, and when it ran."""

    armed_ns: int
    deadline_ns: int
    fired_ns: int


class Router(Protocol):
    """One VRRP daemon on a lab node, as the benchmark drives it."""

    node: str

    def start(self) -> None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def reap(self) -> None: ...
    def role(self) -> str | None: ...
    def takeover(self, since_ns: int) -> Takeover | None: ...


class FfoRouter:
    """`ffo run -c FILE` in its own session (so that `kill` reaches every actor through the process group)."""

    def __init__(self, lab: Lab, node: str, directory: Path, interval: str) -> None:
        self.lab, self.node = lab, node
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "ffo.toml"
        self.state_dir = directory / "state"
        self.log = directory / "ffo.log"
        self.config.write_text(
            f'[node]\nname = "{node}"\nrun_dir = "{directory}/run"\nstate_dir = "{self.state_dir}"\n\n'
            f'[[instance]]\nname = "bench"\ninterface = "eth0"\nvrid = {VRID}\npriority = {PRIORITY[node]}\n'
            f'advert_interval = "{interval}"\nvips = ["{VIP}/24"]\n'
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            argv = [sys.executable, "-m", "ffo.cli.main", "run", "-c", str(self.config)]
            self.process = self.lab.exec(
                self.node, argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def reap(self) -> None:
        if self.process is not None:
            stop_process(self.process, 30)

    def _cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "ffo.cli.main", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)

    def role(self) -> str | None:
        done = self._cli("status", "-c", str(self.config), "--json")
        if done.returncode != 0:
            return None
        instances = json.loads(done.stdout)["instances"]
        return str(instances[0]["state"]) if instances else None

    def takeover(self, since_ns: int) -> Takeover | None:
        """The timer of ffo's first takeover logged at or after `since_ns` (wall clock), from its event log."""
        done = self._cli("events", "--dir", str(self.state_dir), "--type", "transition", "--json")
        for line in done.stdout.splitlines():
            event = json.loads(line)
            effects = event.get("step", {}).get("effects", [])
            to_master = any(e.get("_type") == "vrrp.transitioned" and e.get("to_role") == "MASTER" for e in effects)
            cause = event.get("cause_data") or {}
            if to_master and cause.get("fired_ns") is not None and _wall_ns(event["time"]) >= since_ns:
                return Takeover(
                    armed_ns=int(cause["deadline_ns"]) - int(cause["down_interval_ns"]),
                    deadline_ns=int(cause["deadline_ns"]),
                    fired_ns=int(cause["fired_ns"]),
                )
        return None


def _wall_ns(iso: str) -> int:
    """``ffo events``' ISO 8601 UTC time (microseconds) as wall-clock ns."""
    moment = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return round(moment.timestamp() * 1_000_000) * 1000


class KeepalivedRouter:
    """keepalived (VRRP only, foreground) through `ffo.lab.keepalived`."""

    def __init__(self, lab: Lab, node: str, directory: Path, interval_cs: int) -> None:
        self.node = node
        instance = KeepalivedInstance(
            vrid=VRID, priority=PRIORITY[node], vips=(f"{VIP}/24",), advert_interval_cs=interval_cs
        )
        self.daemon = Keepalived(lab, node, directory, [instance])

    def start(self) -> None:
        self.daemon.run()

    def terminate(self) -> None:
        assert self.daemon.process is not None
        self.daemon.process.terminate()

    def kill(self) -> None:
        self.daemon.kill()

    def reap(self) -> None:
        self.daemon.stop(30)

    def role(self) -> str | None:
        return self.daemon.state()

    def takeover(self, since_ns: int) -> Takeover | None:
        return None  # keepalived does not record its timers


# ------------------------------------------------------------------------------------------------ the trials


@attrs.frozen
class Trial:
    """One failover, as the sniffer (and, for ffo, the new master's event log) saw it."""

    impl: str
    interval_ns: int
    scenario: str
    bound_ns: int
    gap_ns: int
    garp_ns: int | None
    outage_ns: int | None = None
    """The client's longest silence around the fault (pinging the VIP every ``--ping`` ms)."""
    rx_ns: int | None = None
    """ffo: from the old master's last advertisement on the wire to the backup arming its timer on it."""
    timer_ns: int | None = None
    """ffo: the takeover timer's lateness (fired - deadline), as the new master logged it."""
    tx_ns: int | None = None
    """ffo: from the timer firing to the new master's first advertisement on the wire."""

    @property
    def excess_ns(self) -> int:
        return self.gap_ns - self.bound_ns


def _realtime_offset_ns() -> int:
    """CLOCK_REALTIME - CLOCK_MONOTONIC now (both clocks are shared by every namespace of the machine), from the
    tightest of a few bracketed readings: it maps the daemons' monotonic times onto the sniffer's timestamps."""
    best: tuple[int, int] | None = None
    for _ in range(5):
        before = time.monotonic_ns()
        real = time.time_ns()
        after = time.monotonic_ns()
        if best is None or after - before < best[0]:
            best = (after - before, real - (before + after) // 2)
    assert best is not None
    return best[1]


def rfc_bound_ns(scenario: str, interval_cs: int) -> int:
    """Skew_Time(100) after a priority-0 advertisement; otherwise Master_Down_Interval(100) (RFC 9568 §6.1)."""
    if scenario == "graceful":
        return skew_time_ns(PRIORITY["n2"], interval_cs, 3)
    return master_down_interval_ns(PRIORITY["n2"], interval_cs, 3)


class Bench:
    """The master n1, the backup n2, the sniffer: faults, recoveries and measurements for one lab."""

    def __init__(
        self,
        impl: str,
        lab: Lab,
        sniffer: Sniffer,
        routers: dict[str, Router],
        *,
        interval_ns: int,
        rng: random.Random,
        prober: Prober,
    ) -> None:
        self.impl, self.lab, self.sniffer, self.routers = impl, lab, sniffer, routers
        self.prober = prober
        self.interval_ns = interval_ns
        self.rng = rng
        self._steady_from = 0

    @property
    def interval_s(self) -> float:
        return self.interval_ns / 1e9

    def wait_steady(self, start: int, timeout: float) -> None:
        """Until n1 is MASTER and n2 BACKUP: n1 advertising at 200 for a while with n2 silent since (frames after
        capture position `start`), and both daemons saying so (n2 has really heard n1 before the next fault)."""
        self._steady_from = start  # n1's advertisements since here include the last before the next fault
        need = max(2, math.ceil(0.2 / self.interval_s))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            adverts = [f for f in self.sniffer.frames(start) if f.kind == "advert"]
            backup_last = max((i for i, f in enumerate(adverts) if f.node == "n2"), default=-1)
            master = [f for f in adverts[backup_last + 1 :] if f.node == "n1" and f.priority == PRIORITY["n1"]]
            if len(master) >= need and self.routers["n1"].role() == "MASTER" and self.routers["n2"].role() == "BACKUP":
                return
            time.sleep(min(self.interval_s, 0.1))
        raise TimeoutError(f"{self.impl}: n1 did not become a steady master within {timeout:.0f} s")

    def trial(self, scenario: str) -> Trial:
        bound = rfc_bound_ns(scenario, self.interval_ns // NS_PER_CS)
        time.sleep(self.rng.uniform(0, self.interval_s))  # a random phase of the advertisement cycle
        at_fault = self.sniffer.mark()
        fault_ns, fault_mono_ns = time.time_ns(), time.monotonic_ns()
        self._fault(scenario)
        timeout = bound / 1e9 + 5 * self.interval_s + 10
        first = self.sniffer.wait_for(lambda f: f.node == "n2" and f.kind == "advert", at_fault, timeout)
        if first is None:
            raise TimeoutError(f"{self.impl}: n2 did not take over within {timeout:.1f} s")
        old = [f.ts_ns for f in self.sniffer.frames(self._steady_from) if f.node == "n1" and f.kind == "advert"]
        last_old = max(ts for ts in old if ts < first.ts_ns)
        time.sleep(0.05 + 2 * self.interval_s)  # let the first GARPs and the event log catch up
        garps = [f.ts_ns for f in self.sniffer.frames(at_fault) if f.node == "n2" and f.kind == "garp"]
        takeover = self.routers["n2"].takeover(fault_ns)
        offset = _realtime_offset_ns()
        outage = self._outage_ns(fault_mono_ns)
        result = Trial(
            impl=self.impl,
            interval_ns=self.interval_ns,
            scenario=scenario,
            bound_ns=bound,
            gap_ns=first.ts_ns - last_old,
            garp_ns=min(garps) - first.ts_ns if garps else None,
            outage_ns=outage,
            rx_ns=None if takeover is None else takeover.armed_ns + offset - last_old,
            timer_ns=None if takeover is None else takeover.fired_ns - takeover.deadline_ns,
            tx_ns=None if takeover is None else first.ts_ns - (takeover.fired_ns + offset),
        )
        self._recover(scenario)
        return result

    def _outage_ns(self, fault_mono_ns: int) -> int | None:
        """The client's outage around the fault, once the VIP answers again (None if it does not within 5 s)."""
        deadline = time.monotonic() + 5
        while (self.prober.last_reply_ns() or 0) <= fault_mono_ns and time.monotonic() < deadline:
            time.sleep(0.01)
        outage = measure_outage(self.prober.echoes(), fault_mono_ns, until_ns=time.monotonic_ns())
        return None if outage is None else outage.duration_ns

    def _fault(self, scenario: str) -> None:
        if scenario == "cut":
            self.lab.cut("n1")
        elif scenario == "graceful":
            self.routers["n1"].terminate()
        else:
            self.routers["n1"].kill()

    def _recover(self, scenario: str) -> None:
        start = self.sniffer.mark()
        if scenario == "cut":
            self.lab.restore("n1")
        else:
            self.routers["n1"].reap()
            self.routers["n1"].start()
        self.wait_steady(start, timeout=30 + 10 * self.interval_s)


@contextlib.contextmanager
def bench_lab(impl: str, interval: str, scratch: Path, rng: random.Random, ping_ns: int) -> Iterator[Bench]:
    """A lab with n1 and n2 running `impl` at `interval`, the sniffer on the bridge and the client pinging the
    VIP; everything removed on exit."""
    interval_ns = parse_duration(interval)
    directory = scratch / f"{impl}-{interval}"
    with Lab("ffo-bf", nodes=NODES, with_client=True) as lab:
        sniffer = Sniffer(lab.switch)
        prober = Prober(lab.namespace("client"), VIP, period_ns=ping_ns)
        routers: dict[str, Router] = {}
        try:
            prober.start()
            for node in ("n1", "n2"):
                if impl == "ffo":
                    routers[node] = FfoRouter(lab, node, directory / node, interval)
                else:
                    routers[node] = KeepalivedRouter(lab, node, directory / node, interval_ns // NS_PER_CS)
                routers[node].start()
            bench = Bench(impl, lab, sniffer, routers, interval_ns=interval_ns, rng=rng, prober=prober)
            bench.wait_steady(0, timeout=30 + 10 * interval_ns / 1e9)
            yield bench
        finally:
            for router in routers.values():
                with contextlib.suppress(Exception):
                    router.reap()
            prober.stop()
            sniffer.close()


# ----------------------------------------------------------------------------------------------- reporting


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _ms(ns: float | None, digits: int = 2) -> str:
    return "-" if ns is None else f"{ns / 1e6:.{digits}f}"


def _interval_name(ns: int) -> str:
    return f"{ns // 1_000_000_000} s" if ns % 1_000_000_000 == 0 else f"{ns // 1_000_000} ms"


def summarize(trials: Sequence[Trial]) -> list[dict[str, Any]]:
    """One row per (interval, scenario, implementation): the statistics the table prints."""
    rows: list[dict[str, Any]] = []
    keys = sorted(
        {(t.interval_ns, t.scenario, t.impl) for t in trials}, key=lambda k: (-k[0], SCENARIOS.index(k[1]), k[2])
    )
    for interval_ns, scenario, impl in keys:
        cell = [t for t in trials if (t.interval_ns, t.scenario, t.impl) == (interval_ns, scenario, impl)]
        gaps = [t.gap_ns for t in cell]
        excess = [t.excess_ns for t in cell]
        garps = [t.garp_ns for t in cell if t.garp_ns is not None]
        outages = [t.outage_ns for t in cell if t.outage_ns is not None]
        parts = {
            name: [getattr(t, name) for t in cell if getattr(t, name) is not None]
            for name in ("rx_ns", "timer_ns", "tx_ns")
        }
        rows.append(
            {
                "interval_ns": interval_ns,
                "scenario": scenario,
                "impl": impl,
                "n": len(cell),
                "bound_ns": cell[0].bound_ns,
                "gap_p50_ns": percentile(gaps, 0.5),
                "gap_p99_ns": percentile(gaps, 0.99),
                "gap_max_ns": max(gaps),
                "excess_p50_ns": percentile(excess, 0.5),
                "excess_max_ns": max(excess),
                "garp_p50_ns": percentile(garps, 0.5) if garps else None,
                "outage_p50_ns": percentile(outages, 0.5) if outages else None,
                **{f"{name[:-3]}_p50_ns": percentile(v, 0.5) if v else None for name, v in parts.items()},
                "timer_max_ns": max(parts["timer_ns"]) if parts["timer_ns"] else None,
            }
        )
    for row in rows:
        if row["impl"] == "ffo":
            other = next(
                (
                    r
                    for r in rows
                    if r["impl"] == "keepalived"
                    and r["interval_ns"] == row["interval_ns"]
                    and r["scenario"] == row["scenario"]
                ),
                None,
            )
            row["ratio_p50"] = None if other is None else row["gap_p50_ns"] / other["gap_p50_ns"]
    return rows


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    head = (
        f"{'interval':>8} {'scenario':8} {'impl':10} {'n':>3} {'RFC bound':>10} {'gap p50':>10} {'gap p99':>10} "
        f"{'gap max':>10} {'late p50':>9} {'late max':>9} {'rx p50':>7} {'timer p50/max':>13} {'tx p50':>7} "
        f"{'GARP p50':>9} {'outage p50':>10} {'ffo/ka':>7}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        timer = "-" if row["timer_p50_ns"] is None else f"{_ms(row['timer_p50_ns'])}/{_ms(row['timer_max_ns'])}"
        ratio = row.get("ratio_p50")
        print(
            f"{_interval_name(row['interval_ns']):>8} {row['scenario']:8} {row['impl']:10} {row['n']:>3} "
            f"{_ms(row['bound_ns']):>10} {_ms(row['gap_p50_ns']):>10} {_ms(row['gap_p99_ns']):>10} "
            f"{_ms(row['gap_max_ns']):>10} {_ms(row['excess_p50_ns']):>9} {_ms(row['excess_max_ns']):>9} "
            f"{_ms(row['rx_p50_ns']):>7} {timer:>13} {_ms(row['tx_p50_ns']):>7} "
            f"{_ms(row['garp_p50_ns']):>9} {_ms(row['outage_p50_ns'], 1):>10} "
            f"{'-' if ratio is None else f'{ratio:.4f}':>7}"
        )
    print(
        "\nAll in ms. gap = the new master's first advertisement - the old master's last, on the bridge. late = gap -"
        " RFC bound\n(cut, kill: 3 x interval + Skew_Time(100); graceful: Skew_Time(100)). ffo's late, split: rx ="
        " last old advertisement\non the wire -> the backup's timer armed; timer = the timer's lateness as ffo"
        " logged it; tx = timer fired ->\nfirst advertisement on the wire. GARP = first gratuitous ARP - first"
        " advertisement. outage = the client's longest\nsilence around the fault. ffo/ka = ratio of the gap p50s."
    )


# ------------------------------------------------------------------------------------------------------ main


def describe_run(args: argparse.Namespace) -> str:
    """The conditions of the figures: what ran, on what, how many trials."""
    version = keepalived_version() if "keepalived" in args.impls else None
    keepalived = "" if version is None else f", keepalived {'.'.join(map(str, version))}"
    return (
        f"# failover gap, VRRPv3 IPv4, priorities 200/100, {args.repeats} trials per row, seed {args.seed}; "
        f"Python {platform.python_version()}{keepalived}, Linux {platform.release()}, {os.cpu_count()} CPUs"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--intervals", default="1s,100ms,10ms", help="comma-separated (default: %(default)s)")
    parser.add_argument(
        "--scenarios", default="cut,graceful", help=f"from {','.join(SCENARIOS)} (default: %(default)s)"
    )
    parser.add_argument("--impls", default="ffo,keepalived", help="default: %(default)s")
    parser.add_argument("--repeats", type=int, default=5, help="trials per cell (default: %(default)s)")
    parser.add_argument("--ping", type=float, default=2.0, metavar="MS", help="client ping period (default: 2)")
    parser.add_argument("--seed", type=int, default=1, help="for the fault's phase in the cycle")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every trial and row as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, event logs)")
    args = parser.parse_args(argv)
    args.intervals = [part.strip() for part in args.intervals.split(",") if part.strip()]
    args.scenarios = [part.strip() for part in args.scenarios.split(",") if part.strip()]
    args.impls = [part.strip() for part in args.impls.split(",") if part.strip()]
    for scenario in args.scenarios:
        if scenario not in SCENARIOS:
            parser.error(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
    for impl in args.impls:
        if impl not in ("ffo", "keepalived"):
            parser.error(f"unknown implementation {impl!r}")
    return args


def run_cells(args: argparse.Namespace, scratch: Path, report: Callable[[Trial], None]) -> None:
    rng = random.Random(args.seed)
    for interval in args.intervals:
        for impl in args.impls:
            print(f"# {impl} at {interval}: starting", file=sys.stderr, flush=True)
            with bench_lab(impl, interval, scratch, rng, round(args.ping * 1e6)) as bench:
                for scenario in args.scenarios:
                    for _ in range(args.repeats):
                        report(bench.trial(scenario))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    refused = lab_preflight("bench_failover", with_keepalived="keepalived" in args.impls)
    if refused is not None:
        return refused
    scratch = Path(tempfile.mkdtemp(prefix="ffo-bf-"))
    trials: list[Trial] = []

    def report(trial: Trial) -> None:
        trials.append(trial)
        late = (
            ""
            if trial.timer_ns is None
            else (f"; rx {_ms(trial.rx_ns, 3)}, timer {_ms(trial.timer_ns, 3)}, tx {_ms(trial.tx_ns, 3)} ms")
        )
        print(
            f"  {trial.impl} {_interval_name(trial.interval_ns)} {trial.scenario}: gap {_ms(trial.gap_ns, 3)} ms "
            f"(bound {_ms(trial.bound_ns, 3)}, +{_ms(trial.excess_ns, 3)}){late}",
            file=sys.stderr,
            flush=True,
        )

    status = 0
    try:
        run_cells(args, scratch, report)
    except KeyboardInterrupt:
        print("bench_failover: interrupted; cleaning up", file=sys.stderr)
        status = 130
    except (TimeoutError, LabError) as error:
        print(f"bench_failover: {error} (logs in {scratch})", file=sys.stderr)
        args.keep, status = True, 1
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    if trials:
        rows = summarize(trials)
        print(describe_run(args))
        print_table(rows)
        if args.json is not None:
            payload = {"trials": [attrs.asdict(t) for t in trials], "rows": rows}
            args.json.write_text(json.dumps(payload, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
