"""The namespace lab: N nodes on one Ethernet segment, built from network namespaces with plain `ip` and `tc`.

Topology (DESIGN.md §5, layer 4): a *switch* namespace holds a Linux bridge ``br0``; each node (and the
optional client) is its own namespace with one interface, ``eth0``, a veth whose peer ``v-<node>`` is a port
of the bridge. The bridge lives in its own namespace so the lab never creates anything in the host namespace:
the host's interfaces, addresses and routes are untouched, and deleting the namespaces deletes everything.

Addresses come only from the documentation ranges (RFC 5737 192.0.2.0/24, RFC 3849 2001:db8::/32); node *i*
(from 1) is 192.0.2.(10+i)/24 and 2001:db8::(10+i)/64, the client 192.0.2.250 and 2001:db8::250.

Why plain `ip` rather than pyroute2: every step is one readable command that an operator can replay by hand
when a test fails (`Lab.commands` keeps them), the lab is built once per test module so the ~3 ms a command
costs does not matter, and iproute2 is what keepalived's and the kernel's own netns tests use.

Choices that make tests fast and deterministic:

- The bridge does no multicast snooping and no STP: it floods 224.0.0.18 and ff02::12 like a dumb switch from
  the first packet, with no IGMP/MLD state to wait for (FRR issue #13363 shows what snooping does to VRRP).
- Duplicate address detection is off in the node namespaces (every address is unique by construction), so
  link-local addresses are usable at once instead of after ~1-2 s; `wait_ipv6_ready` still polls until no
  address is tentative, so a test that turns DAD on (``dad=True``) waits correctly.
- The switch namespace has IPv6 disabled, so it sends nothing (no router solicitations, no MLD reports).

Faults: `cut`/`restore` set a cable's end down/up (the node loses carrier); `loss` drops packets at random on
the node's bridge port (carrier stays up; 100 % is a silent partition); `netem` where the kernel has it. See
`ffo.lab.faults` for why loss does not use netem on the project's machines.

Names: every namespace is ``<prefix>-<suffix>-<role>``; the default suffix is ``<pid>-<6 hex>``, so that
`cleanup_stale` can tell a crashed run's namespaces (dead owner) from those of a concurrent run (live owner).
`ffo lab up` passes ``suffix=""`` for the short names a person types (``ffo-lab-n1``).
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import json
import os
import re
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Literal

import attrs

from ffo.lab import faults
from ffo.lab.namespaces import (
    COMMAND_TIMEOUT,
    PREFIX_PATTERN,
    LabError,
    kill_namespace_processes,
    list_namespaces,
    run_command,
    stop_process,
)
from ffo.lab.nsenter import inside
from ffo.lab.ping import ping

__all__ = [
    "Lab",
    "LabError",
    "NodeSpec",
    "client_node",
    "default_nodes",
]

INTERFACE = "eth0"
BRIDGE = "br0"
_NODE_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")  # "v-" + name must fit IFNAMSIZ - 1 = 15 characters
_V4_NETS = tuple(ipaddress.ip_network(net) for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
_V6_NET = ipaddress.ip_network("2001:db8::/32")


@attrs.frozen(kw_only=True)
class NodeSpec:
    """One namespace on the segment: its short name and the addresses of its ``eth0``."""

    name: str = attrs.field()
    ipv4: str
    """An interface address with its prefix length, e.g. ``192.0.2.11/24`` (RFC 5737 ranges only)."""
    ipv6: str | None = None
    """E.g. ``2001:db8::11/64`` (RFC 3849), added with ``nodad``; None for an IPv4-only node."""

    @name.validator
    def _check_name(self, _attribute: object, value: str) -> None:
        if not _NODE_NAME.match(value) or value == "sw":
            raise ValueError(f"node name {value!r}: 1-12 lowercase letters and digits, not 'sw'")

    def __attrs_post_init__(self) -> None:
        v4 = ipaddress.ip_interface(self.ipv4)
        if not _documentation(v4.ip, _V4_NETS):
            raise ValueError(f"{self.ipv4}: the lab uses documentation addresses only (RFC 5737)")
        if self.ipv6 is not None:
            v6 = ipaddress.ip_interface(self.ipv6)
            if not _documentation(v6.ip, (_V6_NET,)):
                raise ValueError(f"{self.ipv6}: the lab uses documentation addresses only (2001:db8::/32)")


def _documentation(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def default_nodes(count: int, *, ipv6: bool = False) -> tuple[NodeSpec, ...]:
    """Nodes ``n1``..``nN`` at 192.0.2.(10+i)/24 (and 2001:db8::(10+i)/64 with `ipv6`)."""
    if not 1 <= count <= 200:
        raise ValueError(f"{count} nodes: the lab builds 1..200")
    return tuple(
        NodeSpec(name=f"n{i}", ipv4=f"192.0.2.{10 + i}/24", ipv6=f"2001:db8::{10 + i}/64" if ipv6 else None)
        for i in range(1, count + 1)
    )


def client_node(*, ipv6: bool = False) -> NodeSpec:
    """The client namespace of the demo and the failover benchmark (it pings the VIP)."""
    return NodeSpec(name="client", ipv4="192.0.2.250/24", ipv6="2001:db8::250/64" if ipv6 else None)


_live: dict[int, Lab] = {}
_live_lock = threading.Lock()


@atexit.register
def _down_all() -> None:
    """Safety net: an interpreter that exits with a lab still up (a test bug, Ctrl-C) still tears it down."""
    with _live_lock:
        labs = list(_live.values())
    for lab in labs:
        with contextlib.suppress(Exception):
            lab.down()


class Lab:
    """A switch namespace with a bridge, and one namespace per node plugged into it. A context manager.

    `up` builds it (and tears down what it had built if a step fails); `down` deletes every namespace it
    created, stopping first the processes it started and then any process still inside them — idempotent and
    tolerant of a half-built lab. Leaving the ``with`` block calls `down`, whether or not it raised.
    """

    def __init__(
        self,
        prefix: str = "ffo-t",
        nodes: int | Sequence[NodeSpec] = 2,
        *,
        ipv6: bool = False,
        with_client: bool = False,
        suffix: str | None = None,
        dad: bool = False,
    ) -> None:
        if not PREFIX_PATTERN.match(prefix):
            raise ValueError(f"prefix {prefix!r} must start with 'ffo-' (lowercase letters, digits, dashes)")
        specs = default_nodes(nodes, ipv6=ipv6) if isinstance(nodes, int) else tuple(nodes)
        if with_client:
            specs += (client_node(ipv6=ipv6),)
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names) or not specs:
            raise ValueError(f"node names must be unique and at least one: {names}")
        self.prefix = prefix
        self.suffix = f"{os.getpid()}-{secrets.token_hex(3)}" if suffix is None else suffix
        self.base = f"{prefix}-{self.suffix}" if self.suffix else prefix
        self.specs: dict[str, NodeSpec] = {spec.name: spec for spec in specs}
        self.dad = dad
        self.commands: list[str] = []
        """Every command run so far, for a failing test to print."""
        self._created: list[str] = []
        self._processes: list[subprocess.Popen[Any]] = []

    # -- names -------------------------------------------------------------------------------------------------

    @property
    def switch(self) -> str:
        """The switch namespace (holds ``br0`` and the ``v-<node>`` ports)."""
        return f"{self.base}-sw"

    @property
    def nodes(self) -> tuple[str, ...]:
        """The node names, client last when there is one."""
        return tuple(self.specs)

    def namespace(self, node: str) -> str:
        self._spec(node)
        return f"{self.base}-{node}"

    def interface(self, node: str) -> str:
        """The node's interface inside its namespace: always ``eth0``."""
        self._spec(node)
        return INTERFACE

    def port(self, node: str) -> str:
        """The bridge port (in the switch namespace) that the node's ``eth0`` is cabled to."""
        self._spec(node)
        return f"v-{node}"

    def ipv4(self, node: str) -> ipaddress.IPv4Address:
        address = ipaddress.ip_interface(self._spec(node).ipv4).ip
        assert isinstance(address, ipaddress.IPv4Address)
        return address

    def ipv6(self, node: str) -> ipaddress.IPv6Address | None:
        spec = self._spec(node)
        if spec.ipv6 is None:
            return None
        address = ipaddress.ip_interface(spec.ipv6).ip
        assert isinstance(address, ipaddress.IPv6Address)
        return address

    def _spec(self, node: str) -> NodeSpec:
        try:
            return self.specs[node]
        except KeyError:
            raise LabError(f"no node {node!r} in this lab (nodes: {', '.join(self.specs)})") from None

    # -- build and tear down -----------------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        self.up()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()

    def up(self) -> Lab:
        """Build the lab; on any failure, delete what was built and raise `LabError`."""
        if self._created:
            raise LabError(f"lab {self.base} is already up")
        with _live_lock:
            _live[id(self)] = self
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        return self

    def _build(self) -> None:
        sw = self.switch
        self._add_namespace(sw)
        self._sysctl(sw, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        self._ip("-n", sw, "link", "add", BRIDGE, "type", "bridge", "mcast_snooping", "0", "stp_state", "0")
        self._ip("-n", sw, "link", "set", BRIDGE, "up")
        for spec in self.specs.values():
            ns = self.namespace(spec.name)
            self._add_namespace(ns)
            if not self.dad:
                self._sysctl(ns, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
            port = self.port(spec.name)
            self._ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", INTERFACE, "netns", ns)
            self._ip("-n", sw, "link", "set", port, "master", BRIDGE, "up")
            self._ip("-n", ns, "link", "set", "lo", "up")
            self._ip("-n", ns, "addr", "add", spec.ipv4, "dev", INTERFACE)
            if spec.ipv6 is not None:
                self._ip("-n", ns, "addr", "add", spec.ipv6, "dev", INTERFACE, "nodad")
            self._ip("-n", ns, "link", "set", INTERFACE, "up")

    def release(self) -> None:
        """Leave the lab up when this process exits (``ffo lab up``); `cleanup_stale(prefix)` removes it later.

        Without this, the atexit safety net tears down every lab still up when the interpreter exits.
        """
        with _live_lock:
            _live.pop(id(self), None)

    def _add_namespace(self, name: str) -> None:
        self._ip("netns", "add", name)
        self._created.append(name)

    def down(self) -> None:
        """Stop our processes, then anything left in our namespaces, then delete the namespaces. Idempotent."""
        for process in self._processes:
            stop_process(process)
        self._processes.clear()
        problems: list[str] = []
        for name in reversed(self._created):
            kill_namespace_processes(name)
            result = run_command(["ip", "netns", "del", name])
            if result.returncode != 0 and name in list_namespaces():
                problems.append(f"ip netns del {name}: {result.stderr.strip()}")
        self._created.clear()
        with _live_lock:
            _live.pop(id(self), None)
        if problems:
            raise LabError("; ".join(problems))

    # -- running things inside ---------------------------------------------------------------------------------

    def exec(self, node: str, argv: Sequence[str], **popen_kw: Any) -> subprocess.Popen[Any]:
        """Start `argv` in the node's namespace (``ip netns exec``, which execs it: the PID is the command's).

        The lab remembers the process and stops it in `down`; stop it earlier with `stop_process`.
        """
        command = ["ip", "netns", "exec", self.namespace(node), *argv]
        self.commands.append(" ".join(command))
        process: subprocess.Popen[Any] = subprocess.Popen(command, **popen_kw)
        self._processes.append(process)
        return process

    def run(
        self, node: str, argv: Sequence[str], *, check: bool = True, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` to completion in the node's namespace; output captured as text."""
        command = ["ip", "netns", "exec", self.namespace(node), *argv]
        self.commands.append(" ".join(command))
        result = run_command(command, timeout=timeout)
        if check and result.returncode != 0:
            raise LabError(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()}")
        return result

    @contextlib.contextmanager
    def inside(self, node: str) -> Iterator[None]:
        """Run a block of Python with this thread in the node's namespace (see `ffo.lab.nsenter`)."""
        with inside(self.namespace(node)):
            yield

    def ping(
        self, node: str, address: str | ipaddress.IPv4Address | ipaddress.IPv6Address, timeout: float = 3.0
    ) -> bool:
        """Whether `address` answers an ICMP echo sent from `node` within `timeout` seconds."""
        target = ipaddress.ip_address(address)
        with self.inside(node):
            scope = socket.if_nametoindex(INTERFACE) if target.is_link_local else 0
            return ping(target, timeout=timeout, ifindex=scope) is not None

    # -- faults ------------------------------------------------------------------------------------------------

    def cut(self, node: str, *, where: Literal["switch", "node"] = "switch") -> None:
        """Pull the node's cable: set its bridge port (or its own ``eth0``) down; both ends lose carrier."""
        self._set_link(node, where, "down")

    def restore(self, node: str, *, where: Literal["switch", "node"] = "switch") -> None:
        """Plug the cable back in (undoes `cut` with the same `where`)."""
        self._set_link(node, where, "up")

    def _set_link(self, node: str, where: Literal["switch", "node"], state: str) -> None:
        if where == "switch":
            self._ip("-n", self.switch, "link", "set", self.port(node), state)
        else:
            self._ip("-n", self.namespace(node), "link", "set", INTERFACE, state)

    def loss(self, node: str, percent: float, direction: faults.Direction = "both") -> None:
        """Drop `percent` % of the node's packets at random on its bridge port (see `ffo.lab.faults`).

        The node's carrier stays up, so 100 % both ways is a partition that the node cannot see, unlike `cut`.
        """
        faults.set_loss(self.switch, self.port(node), percent, direction)

    def clear_loss(self, node: str) -> None:
        faults.clear_loss(self.switch, self.port(node))

    def netem(self, node: str, spec: str | Sequence[str]) -> None:
        """``tc netem`` (e.g. ``"delay 5ms 1ms"``) on what the node sends; `LabError` if the kernel lacks netem."""
        faults.apply_netem(self.namespace(node), INTERFACE, spec)

    def clear_netem(self, node: str) -> None:
        """Remove the node's netem qdisc (a no-op when there is none)."""
        faults.clear_netem(self.namespace(node), INTERFACE)

    def netem_available(self) -> bool:
        """Whether this kernel has the netem qdisc (tried on the first node's interface)."""
        return faults.netem_available(self.namespace(self.nodes[0]), INTERFACE)

    def qdisc(self, node: str, *, port: bool = False) -> str:
        """``tc qdisc show`` for the node's ``eth0``, or with `port` for its bridge port in the switch."""
        if port:
            return self._command(["tc", "-n", self.switch, "qdisc", "show", "dev", self.port(node)])
        return self._command(["tc", "-n", self.namespace(node), "qdisc", "show", "dev", INTERFACE])

    def filters(self, node: str, hook: str = "ingress") -> str:
        """``tc filter show`` on the node's bridge port (`hook`: ``ingress`` = from the node)."""
        return self._command(["tc", "-n", self.switch, "filter", "show", "dev", self.port(node), hook])

    # -- observing ---------------------------------------------------------------------------------------------

    def addresses(self, node: str) -> list[dict[str, Any]]:
        """``ip -j addr show dev eth0``'s ``addr_info`` list for the node."""
        out = self._command(["ip", "-j", "-n", self.namespace(node), "addr", "show", "dev", INTERFACE])
        info: list[dict[str, Any]] = json.loads(out)[0].get("addr_info", [])
        return info

    def link_local(self, node: str) -> ipaddress.IPv6Address | None:
        """The node's non-tentative IPv6 link-local address on ``eth0``, if it has one yet."""
        for entry in self.addresses(node):
            if entry.get("family") == "inet6" and entry.get("scope") == "link" and not entry.get("tentative"):
                address = ipaddress.ip_address(entry["local"])
                assert isinstance(address, ipaddress.IPv6Address)
                return address
        return None

    def wait_ipv6_ready(self, nodes: Sequence[str] | None = None, timeout: float = 10.0) -> None:
        """Poll until every given node has a link-local address and no tentative one (DAD finished)."""
        deadline = time.monotonic() + timeout
        for node in nodes if nodes is not None else self.nodes:
            while True:
                info = self.addresses(node)
                v6 = [entry for entry in info if entry.get("family") == "inet6"]
                ready = any(e.get("scope") == "link" for e in v6) and not any(e.get("tentative") for e in v6)
                if ready:
                    break
                if time.monotonic() > deadline:
                    raise LabError(f"{node}: IPv6 addresses still tentative after {timeout} s: {v6}")
                time.sleep(0.02)

    # -- plumbing ----------------------------------------------------------------------------------------------

    def _ip(self, *args: str) -> str:
        return self._command(["ip", *args])

    def _sysctl(self, namespace: str, *settings: str) -> None:
        self._command(["ip", "netns", "exec", namespace, "sysctl", "-q", "-w", *settings])

    def _command(self, command: list[str]) -> str:
        self.commands.append(" ".join(command))
        result = run_command(command)
        if result.returncode != 0:
            raise LabError(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()}")
        return result.stdout
