"""Shared by the daemon scenario tests: a lab per test, `ffo run` nodes, a VRRP capture, the closing checks.

A node is the interop tests' `FfoDaemon` (a config file, ``ffo run -c FILE`` in its own session so that its PID
is its process group, observed only through the CLI) with the one more knob the scenarios need, `preempt`.

Every scenario ends with `finish`, the invariants that must hold whatever happened on the way:

- the VIP is configured on exactly one node, the one master (VRRP's promise once the network is whole);
- every ``vrrp.transition`` record carries its cause, as the sentence and as structured data (CLI.md);
- every node's event log replays through the machine with 0 divergences (the golden-log check).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from ffo.lab import Lab, inside, netns_unavailable
from ffo.lab.namespaces import namespace_pids
from tests.interop.support import (
    REPO,
    TIMEOUT_S,
    VIP4,
    VIP6,
    FfoDaemon,
    assert_replays,
    ffo_cli,
    holders,
    wait_for,
)
from tests.lab.support import PREFIX

__all__ = [
    "REPO",
    "TIMEOUT_S",
    "VIP4",
    "VIP6",
    "Captured",
    "Node",
    "VrrpCapture",
    "assert_explained",
    "finish",
    "holders",
    "lab",
    "lab6",
    "make_lab",
    "root",
    "to_role",
    "wait_for",
]


@contextlib.contextmanager
def make_lab(nodes: int = 2, *, ipv6: bool = False) -> Iterator[Lab]:
    """A fresh lab of `nodes` nodes (skipping, with the reason, where namespaces cannot be made)."""
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with Lab(PREFIX, nodes=nodes, ipv6=ipv6) as built:
        if ipv6:
            built.wait_ipv6_ready()
        yield built


@pytest.fixture
def lab() -> Iterator[Lab]:
    """n1 and n2 (192.0.2.11 and .12) on one bridge; a new one per test, so nothing leaks between scenarios."""
    with make_lab(2) as built:
        yield built


@pytest.fixture
def lab6() -> Iterator[Lab]:
    """n1 and n2 with IPv6 (2001:db8::11 and ::12) as well, link-local addresses ready."""
    with make_lab(2, ipv6=True) as built:
        yield built


@pytest.fixture
def root() -> Iterator[Path]:
    """A scratch directory with a short path: ffo's ipc:// socket paths must fit in ~107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ffo-d-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Node(FfoDaemon):
    """One `ffo run` in a lab node: an `FfoDaemon` whose config also sets ``preempt`` (RFC 9568 §6.4.2)."""

    def __init__(
        self,
        lab: Lab,
        node: str,
        root: Path,
        *,
        priority: int,
        interval: str = "100ms",
        vips: Sequence[str] = (VIP4,),
        unicast_peers: Sequence[str] = (),
        preempt: bool = True,
    ) -> None:
        self.preempt = preempt
        super().__init__(lab, node, root, priority=priority, interval=interval, vips=vips, unicast_peers=unicast_peers)

    def configure(self, **settings: Any) -> None:
        """`FfoDaemon.configure`, plus this node's ``preempt``."""
        super().configure(**settings)
        # The [[instance]] table is the file's last: a key appended at the end belongs to it.
        self.config.write_text(self.config.read_text() + f"preempt = {'true' if self.preempt else 'false'}\n")

    def start(self) -> Node:
        super().start()
        return self

    @property
    def pid(self) -> int:
        """The kernel's PID (``ip netns exec`` execs it), which is also its process group's ID."""
        assert self.process is not None, f"ffo in {self.node} was never started"
        return self.process.pid

    def status(self) -> dict[str, Any] | None:
        """The whole ``ffo status --json`` report, or None while the daemon does not answer."""
        done = ffo_cli("status", "-c", str(self.config), "--json")
        report: dict[str, Any] | None = json.loads(done.stdout) if done.returncode == 0 else None
        return report

    def actor_pid(self, actor: str) -> int | None:
        """The PID of one of the daemon's actors while it is ready (None before, or while it restarts)."""
        report = self.status()
        if report is None:
            return None
        found = [entry["pid"] for entry in report["actors"] if entry["name"] == actor and entry["state"] == "ready"]
        return int(found[0]) if found else None

    def kill_kernel(self) -> None:
        """SIGKILL only the kernel: its actors, children with PR_SET_PDEATHSIG, get SIGTERM and stop on their own."""
        os.kill(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(TIMEOUT_S)

    def processes(self) -> list[int]:
        """Every process still running in the node's namespace (the daemon's, once the test runs none there)."""
        return namespace_pids(self.lab.namespace(self.node))

    def transition_lines(self) -> str:
        """``ffo events --type transition`` as text (``ROLE -> ROLE`` and the cause, as an operator reads it)."""
        return ffo_cli("events", "--dir", str(self.state_dir), "--type", "transition", check=True).stdout

    def takeovers(self) -> list[dict[str, Any]]:
        """The transitions into Master, oldest first."""
        return [t for t in self.transitions() if to_role(t) == "MASTER"]


def to_role(transition: dict[str, Any]) -> str:
    """The role a ``vrrp.transition`` record moved to."""
    return str(transition["step"]["effects"][0]["to_role"])


def assert_explained(node: Node) -> None:
    """Every transition in the node's log has its cause: the sentence and the structured data with its kind."""
    recorded = node.transitions()
    assert recorded, f"{node.node} recorded no transition"
    for transition in recorded:
        data = transition["cause_data"]
        assert transition["cause"] and isinstance(data, dict) and data.get("kind"), transition


def finish(lab: Lab, nodes: Sequence[Node], *, master: Node, vip: str = VIP4) -> None:
    """The invariants every scenario ends with (module docstring), then a clean stop of whatever still runs.

    The VIP check polls until the VIP is on `master` alone, because the last step of a takeover, the old
    master's release, may come a few ms after the state the test waited for; it fails if that never happens.
    """
    wait_for(lambda: holders(lab, vip) == [master.node], lambda: f"{vip} on {master.node} alone: {holders(lab, vip)}")
    running = [node for node in nodes if node.running()]
    states = {node.node: node.state() for node in running}
    assert [name for name, state in states.items() if state == "MASTER"] == [master.node], states
    for node in running:
        assert node.stop() == 0, node.output()
    for node in nodes:
        assert_explained(node)
        assert_replays(node)


@attrs.frozen(kw_only=True)
class Captured:
    """One IPv4 VRRP packet as it entered the bridge from a node's port."""

    port: str
    src: ipaddress.IPv4Address
    dst: ipaddress.IPv4Address
    vrid: int
    priority: int


_ETH_P_ALL = 0x0003  # a bridge port's frames reach only "all protocols" taps: the bridge consumes them first
_ETH_P_IP = 0x0800
_ETHERNET_HEADER = 14
_IPPROTO_VRRP = 112


class VrrpCapture:
    """A packet socket in the lab's switch namespace: every IPv4 VRRP packet any node sends, once each.

    Frames are kept as they enter the bridge from a node's port (``v-<node>``, not outgoing), so a packet is
    counted once however the bridge forwards it, and a node whose cable is cut still shows what it tried to
    send. Reading is non-blocking: a test calls `drain` while it polls for its conditions.
    """

    def __init__(self, lab: Lab) -> None:
        with inside(lab.switch):
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._sock.setblocking(False)
        self.packets: list[Captured] = []

    def __enter__(self) -> VrrpCapture:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._sock.close()

    def drain(self) -> list[Captured]:
        """Read what has arrived since the last call; return every packet captured so far."""
        while True:
            try:
                frame, (port, _protocol, kind, *_rest) = self._sock.recvfrom(65535)
            except BlockingIOError:
                return self.packets
            if not port.startswith("v-") or kind == socket.PACKET_OUTGOING:
                continue
            ip = frame[_ETHERNET_HEADER:]
            if (
                int.from_bytes(frame[12:14], "big") != _ETH_P_IP
                or len(ip) < 20
                or ip[0] >> 4 != 4
                or ip[9] != _IPPROTO_VRRP
            ):
                continue
            vrrp = ip[(ip[0] & 0x0F) * 4 :]
            if len(vrrp) < 3:
                continue
            self.packets.append(
                Captured(
                    port=port,
                    src=ipaddress.IPv4Address(ip[12:16]),
                    dst=ipaddress.IPv4Address(ip[16:20]),
                    vrid=vrrp[1],
                    priority=vrrp[2],
                )
            )
