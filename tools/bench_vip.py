"""What taking over a VIP costs: netlink add/remove, vmac create/delete, and announcement sends.

    .venv/bin/python tools/bench_vip.py [--rounds 200] [--sends 20000] [--scapy-sends 20] [--json]

Runs as root in a network namespace it creates (`ffo-v-<6 hex>`, a veth pair `v0`/`v1`, documentation
addresses only) and deletes on exit, also on Ctrl-C. Rows:

- netlink, through `VipNetlink`, on both address paths (struct-built requests, the default, and pyroute2
  `AsyncIPRoute`): acquire and release of one VIP (p50/p99 of `netlink_ns` over `--rounds`), IPv4 and
  IPv6; acquire of 8 VIPs (per VIP);
- the same request with pyroute2 directly: awaited one by one, and 8 at once with `asyncio.gather`
  (does pipelining help?), and with the synchronous `IPRoute` (which runs its own loop in the call);
- the floor: the same `RTM_NEWADDR`/`RTM_DELADDR` built with struct on a plain netlink socket;
- vmac: `ensure_vmac` and `remove_vmac` (create, alias + no link-local, up; down, delete);
- announcements: building a gratuitous ARP and an unsolicited NA with struct, and with scapy; sending one
  frame on the long-lived AF_PACKET socket (`Announcer.send`), and with scapy's `sendp` (a socket per call).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ipaddress
import json
import os
import platform
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from ffo.clock import SystemClock
from ffo.net.announce import Announcer
from ffo.vip import VmacSpec, parse_vip
from ffo.vip.frames import gratuitous_arp, unsolicited_na
from ffo.vip.model import FFO_ADDR_PROTO, IFA_F_NODAD
from ffo.vip.netlink import VipNetlink
from ffo.vrrp.packet import Family

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
LL = ipaddress.IPv6Address("fe80::1")


class Namespace:
    """One `ffo-v-<hex>` namespace with a veth pair v0/v1 up and 192.0.2.1/24 on v0; deleted by `delete`."""

    def __init__(self) -> None:
        self.name = f"ffo-v-{secrets.token_hex(3)}"
        self.owner = os.getpid()
        self._run("ip", "netns", "add", self.name)
        try:
            for command in (
                "link set lo up",
                "link add v0 type veth peer name v1",
                "link set v0 up",
                "link set v1 up",
                "address add 192.0.2.1/24 dev v0",
            ):
                self._run("ip", "-n", self.name, *command.split())
            self._run("ip", "netns", "exec", self.name, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0")
        except BaseException:
            self.delete()
            raise

    @staticmethod
    def _run(*argv: str) -> None:
        subprocess.run(argv, check=True, capture_output=True, timeout=10)

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """This thread inside the namespace for the body (sockets opened there stay there)."""
        with open("/proc/thread-self/ns/net", "rb") as home, open(f"/run/netns/{self.name}", "rb") as target:
            if _libc.setns(target.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            try:
                yield
            finally:
                _libc.setns(home.fileno(), CLONE_NEWNET)

    def delete(self) -> None:
        if os.getpid() == self.owner:  # never from a fork (pyroute2 forks to open sockets in a namespace)
            subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True, timeout=10)


def summary(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    return {
        "n": len(ordered),
        "p50_us": ordered[len(ordered) // 2] / 1000,
        "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000,
        "max_us": ordered[-1] / 1000,
    }


async def timed(action: Callable[[], Awaitable[object]]) -> int:
    start = time.monotonic_ns()
    await action()
    return time.monotonic_ns() - start


# -- netlink --------------------------------------------------------------------------------------------------


async def bench_vipnetlink(ns: Namespace, rounds: int, *, fast: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    path = "fast" if fast else "pyroute2"
    async with await VipNetlink.open(clock=SystemClock(), netns=ns.name, fast=fast) as kernel:
        for label, text in (("ipv4", "192.0.2.100/32"), ("ipv6", "2001:db8::100/128")):
            vip = parse_vip("v0", text)
            adds: list[int] = []
            removes: list[int] = []
            for _ in range(rounds):
                added = await kernel.acquire([vip])
                removed = await kernel.release([vip])
                assert added.ok and removed.ok and added.added and removed.removed
                adds.append(added.netlink_ns)
                removes.append(removed.netlink_ns)
            results[f"VipNetlink ({path}) acquire 1 {label}"] = summary(adds)
            results[f"VipNetlink ({path}) release 1 {label}"] = summary(removes)
        many = [parse_vip("v0", f"192.0.2.{100 + n}/32") for n in range(8)]
        per_vip: list[int] = []
        for _ in range(max(rounds // 8, 5)):
            added = await kernel.acquire(many)
            await kernel.release(many)
            per_vip.append(added.netlink_ns // len(many))
        results[f"VipNetlink ({path}) acquire 8 ipv4, per VIP"] = summary(per_vip)
        if not fast:
            return results
        spec = VmacSpec(name="vrrp.7", parent="v0", vrid=7, family=Family.IPV4)
        creates: list[int] = []
        deletes: list[int] = []
        for _ in range(max(rounds // 10, 5)):
            created = await kernel.ensure_vmac(spec)
            removed_link = await kernel.remove_vmac(spec.name)
            assert created.created and removed_link.removed
            creates.append(created.netlink_ns)
            deletes.append(removed_link.netlink_ns)
        results["vmac ensure (create, alias, up)"] = summary(creates)
        results["vmac remove (down, delete)"] = summary(deletes)
    return results


async def bench_pyroute2_async(ns: Namespace, rounds: int) -> dict[str, Any]:
    from pyroute2 import AsyncIPRoute

    results: dict[str, Any] = {}
    async with AsyncIPRoute(netns=ns.name) as ipr:
        index = (await ipr.link("get", ifname="v0"))[0]["index"]
        one: list[int] = []
        for _ in range(rounds):
            one.append(
                await timed(
                    lambda: ipr.addr("add", index=index, address="192.0.2.100", prefixlen=32, proto=FFO_ADDR_PROTO)
                )
            )
            await ipr.addr("del", index=index, address="192.0.2.100", prefixlen=32)
        results["pyroute2 async add, one by one"] = summary(one)
        gathered: list[int] = []
        for _ in range(max(rounds // 8, 5)):
            addresses = [f"192.0.2.{100 + n}" for n in range(8)]
            elapsed = await timed(
                lambda addresses=addresses: asyncio.gather(
                    *(ipr.addr("add", index=index, address=a, prefixlen=32) for a in addresses)
                )
            )
            gathered.append(elapsed // 8)
            for address in addresses:
                await ipr.addr("del", index=index, address=address, prefixlen=32)
        results["pyroute2 async add x8 gathered, per VIP"] = summary(gathered)
    return results


def bench_pyroute2_sync(ns: Namespace, rounds: int) -> dict[str, Any]:
    from pyroute2 import IPRoute

    with ns.entered():
        ipr = IPRoute()
    try:
        index = ipr.link_lookup(ifname="v0")[0]
        samples: list[int] = []
        for _ in range(rounds):
            start = time.monotonic_ns()
            ipr.addr("add", index=index, address="192.0.2.100", prefixlen=32)
            samples.append(time.monotonic_ns() - start)
            ipr.addr("del", index=index, address="192.0.2.100", prefixlen=32)
        return {"pyroute2 sync IPRoute add": summary(samples)}
    finally:
        ipr.close()


def _addr_request(
    kind: int, flags: int, sequence: int, index: int, address: ipaddress.IPv6Address | ipaddress.IPv4Address
) -> bytes:
    """RTM_NEWADDR/RTM_DELADDR for `address` (host prefix) with IFA_LOCAL/IFA_ADDRESS, IFA_FLAGS, IFA_PROTO."""
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    attrs = b""
    for attr_type, payload in (
        (2, address.packed),
        (1, address.packed),
        (8, struct.pack("=I", IFA_F_NODAD)),
        (11, bytes([FFO_ADDR_PROTO])),
    ):
        length = 4 + len(payload)
        attrs += struct.pack("=HH", length, attr_type) + payload + b"\x00" * (-length % 4)
    body = struct.pack("=BBBBI", family, address.max_prefixlen, 0, 0, index) + attrs
    return struct.pack("=IHHII", 16 + len(body), kind, flags, sequence, 0) + body


def bench_raw_netlink(ns: Namespace, rounds: int) -> dict[str, Any]:
    """The floor: one struct-built request and its ack on a plain NETLINK_ROUTE socket."""
    with ns.entered():
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        index = socket.if_nametoindex("v0")
    sock.bind((0, 0))
    address = ipaddress.IPv4Address("192.0.2.100")
    request, ack, create, excl = 0x1, 0x4, 0x400, 0x200
    adds: list[int] = []
    dels: list[int] = []
    try:
        for sequence in range(1, rounds + 1):
            start = time.monotonic_ns()
            sock.send(_addr_request(20, request | ack | create | excl, sequence * 2, index, address))
            reply = sock.recv(4096)
            adds.append(time.monotonic_ns() - start)
            assert struct.unpack_from("=i", reply, 16)[0] == 0, reply
            start = time.monotonic_ns()
            sock.send(_addr_request(21, request | ack, sequence * 2 + 1, index, address))
            reply = sock.recv(4096)
            dels.append(time.monotonic_ns() - start)
    finally:
        sock.close()
    return {"raw netlink (struct) add": summary(adds), "raw netlink (struct) delete": summary(dels)}


# -- announcements --------------------------------------------------------------------------------------------


def per_call_us(action: Callable[[], object], count: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(count):
        action()
    return (time.perf_counter_ns() - start) / count / 1000


def bench_announce(ns: Namespace, sends: int, scapy_sends: int) -> dict[str, Any]:
    with ns.entered():
        announcer = Announcer.open("v0", clock=SystemClock())
    results: dict[str, Any] = {}
    try:
        vip4, vip6 = ipaddress.IPv4Address("192.0.2.100"), ipaddress.IPv6Address("2001:db8::100")
        garp = gratuitous_arp(mac=announcer.mac, vip=vip4)
        results["build GARP (struct), us"] = per_call_us(lambda: gratuitous_arp(mac=announcer.mac, vip=vip4), 20000)
        results["build NA (struct), us"] = per_call_us(
            lambda: unsolicited_na(mac=announcer.mac, source=LL, vip=vip6), 20000
        )
        samples = [announcer.send([garp]).elapsed_ns for _ in range(sends)]
        results["Announcer.send 1 frame"] = summary(samples)
        burst = [garp] * 5
        results["Announcer.send 5 frames, per frame"] = summary(
            [announcer.send(burst).elapsed_ns // 5 for _ in range(sends // 5)]
        )
        with ns.entered():  # scapy reads the interface list when it is imported: import it inside
            from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
            from scapy.layers.l2 import ARP, Ether
            from scapy.sendrecv import sendp

            mac = announcer.mac_text
            results["build GARP (scapy), us"] = per_call_us(
                lambda: bytes(
                    Ether(dst="ff:ff:ff:ff:ff:ff", src=mac) / ARP(op=1, hwsrc=mac, psrc=str(vip4), pdst=str(vip4))
                ),
                200,
            )
            results["build NA (scapy), us"] = per_call_us(
                lambda: bytes(
                    Ether(dst="33:33:00:00:00:01", src=mac)
                    / IPv6(src=str(LL), dst="ff02::1", hlim=255)
                    / ICMPv6ND_NA(tgt=str(vip6), R=1, S=0, O=1)
                    / ICMPv6NDOptDstLLAddr(lladdr=mac)
                ),
                200,
            )
            sendp(garp, iface="v0", verbose=False)  # first call pays scapy's lazy set-up
            scapy: list[int] = []
            for _ in range(scapy_sends):
                start = time.monotonic_ns()
                sendp(garp, iface="v0", verbose=False)
                scapy.append(time.monotonic_ns() - start)
            results["scapy sendp 1 frame"] = summary(scapy)
    finally:
        announcer.close()
    return results


# -- main -----------------------------------------------------------------------------------------------------


def print_table(results: dict[str, Any]) -> None:
    print(f"{'what':<48} {'p50':>10} {'p99':>10} {'max':>10}   n")
    for name, value in results.items():
        if isinstance(value, dict):
            p50, p99, top = value["p50_us"], value["p99_us"], value["max_us"]
            print(f"{name:<48} {p50:>8.1f}us {p99:>8.1f}us {top:>8.1f}us   {value['n']}")
        else:
            print(f"{name:<48} {value:>8.2f}us")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--sends", type=int, default=20000)
    parser.add_argument("--scapy-sends", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_vip: needs root (network namespaces, netlink writes, raw sockets)", file=sys.stderr)
        return 3
    owner = os.getpid()

    def on_sigterm(_signum: int, _frame: object) -> None:
        # pyroute2 opens a socket in a namespace from a fork of this process and SIGTERMs it when done: the
        # fork must die quietly, never unwind into `finally` below (it would delete the namespace).
        if os.getpid() != owner:
            os._exit(0)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    ns = Namespace()
    try:
        results: dict[str, Any] = {}
        results |= asyncio.run(bench_vipnetlink(ns, args.rounds, fast=True))
        results |= asyncio.run(bench_vipnetlink(ns, args.rounds, fast=False))
        results |= asyncio.run(bench_pyroute2_async(ns, args.rounds))
        results |= bench_pyroute2_sync(ns, args.rounds)
        results |= bench_raw_netlink(ns, args.rounds)
        results |= bench_announce(ns, args.sends, args.scapy_sends)
    finally:
        ns.delete()
    import pyroute2

    header = {"python": platform.python_version(), "kernel": platform.release(), "pyroute2": pyroute2.__version__}
    if args.json:
        print(json.dumps({"environment": header, "results": results}))
    else:
        print(f"# {header}")
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
