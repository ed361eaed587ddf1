"""Announcements on a real link: a veth between two namespaces, a sender in one, a capture in the other."""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable, Iterator

import pytest

from ffo.clock import SystemClock
from ffo.net.announce import Announcer, AnnouncerUnavailable, SendResult, run_schedule
from ffo.vip import VmacSpec, parse_vip
from ffo.vip.frames import ETH_P_ARP, ETH_P_IPV6, announcement_frames, gratuitous_arp, unsolicited_na
from ffo.vip.netlink import VipNetlink
from ffo.vip.schedule import Announcement, AnnounceSettings, Phase, announcements
from ffo.vrrp.packet import Family
from tests.vip.conftest import Link
from tests.vip.decode import decode_garp, decode_na
from tests.vip.netns import Netns, wait_until

pytestmark = pytest.mark.netns

ETH_P_ALL = 0x0003
VIP4 = ipaddress.IPv4Address("192.0.2.100")
VIP6 = ipaddress.IPv6Address("2001:db8::100")
STALE_MAC = "02:00:00:00:00:99"


class Capture:
    """An AF_PACKET socket on one interface of a namespace: every frame it hears, filtered on read."""

    def __init__(self, ns: Netns, interface: str) -> None:
        with ns.entered():
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((interface, 0))
        self.sock.settimeout(0.2)

    def frames(self, wanted: Callable[[bytes], bool], count: int, *, timeout: float = 10.0) -> list[bytes]:
        found: list[bytes] = []

        def more() -> bool:
            try:
                frame = self.sock.recv(2048)
            except TimeoutError:
                return False
            if wanted(frame):
                found.append(frame)
            return len(found) >= count

        wait_until(more, timeout=timeout, what=f"{count} frames")
        return found

    def close(self) -> None:
        self.sock.close()


def is_garp(frame: bytes) -> bool:
    return int.from_bytes(frame[12:14], "big") == ETH_P_ARP


def is_na(frame: bytes) -> bool:
    return int.from_bytes(frame[12:14], "big") == ETH_P_IPV6 and frame[20] == 58 and frame[54] == 136


@pytest.fixture
def capture(link: Link) -> Iterator[Capture]:
    listener = Capture(link.b, "b0")
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture
def announcer(link: Link) -> Iterator[Announcer]:
    with link.a.entered():
        sender = Announcer.open("a0", clock=SystemClock())
    try:
        yield sender
    finally:
        sender.close()


def link_local(ns: Netns, interface: str) -> ipaddress.IPv6Address:
    """The interface's IPv6 link-local (it appears once the link has carrier: wait for it)."""
    found: list[ipaddress.IPv6Address] = []

    def appeared() -> bool:
        rows = ns.ip_json("-6", "address", "show", "dev", interface, "scope", "link")[0].get("addr_info", [])
        found.extend(ipaddress.IPv6Address(row["local"]) for row in rows if "local" in row)
        return bool(found)

    wait_until(appeared, what=f"a link-local address on {interface}")
    return found[0]


def neighbour_mac(ns: Netns, address: str) -> str | None:
    rows = ns.ip_json("neigh", "show", address, "dev", "b0")
    return rows[0].get("lladdr") if rows else None


def test_announcer_uses_the_interface_mac(link: Link, announcer: Announcer) -> None:
    assert announcer.mac_text == link.a.mac("a0")


def test_gratuitous_arp_arrives_intact_and_moves_the_peer_cache(
    link: Link, capture: Capture, announcer: Announcer
) -> None:
    link.b.ip("neigh", "replace", str(VIP4), "lladdr", STALE_MAC, "dev", "b0", "nud", "stale")
    result = announcer.send([gratuitous_arp(mac=announcer.mac, vip=VIP4)])
    assert result.ok and result.sent == 1 and result.elapsed_ns > 0
    (frame,) = capture.frames(is_garp, 1)
    garp = decode_garp(frame)
    mac = link.a.mac("a0")
    assert (garp.eth_dst, garp.eth_src) == ("ff:ff:ff:ff:ff:ff", mac)
    assert garp.op == 1
    assert (garp.hwsrc, garp.psrc, garp.pdst) == (mac, str(VIP4), str(VIP4))
    wait_until(lambda: neighbour_mac(link.b, str(VIP4)) == mac, what="the peer's ARP entry to move")


def test_unsolicited_na_arrives_intact_and_moves_the_peer_cache(
    link: Link, capture: Capture, announcer: Announcer
) -> None:
    link.b.ip("neigh", "replace", str(VIP6), "lladdr", STALE_MAC, "dev", "b0", "nud", "stale")
    source = link_local(link.a, "a0")
    result = announcer.send([unsolicited_na(mac=announcer.mac, source=source, vip=VIP6)])
    assert result.ok
    (frame,) = capture.frames(is_na, 1)
    na = decode_na(frame)
    mac = link.a.mac("a0")
    assert (na.eth_dst, na.eth_src) == ("33:33:00:00:00:01", mac)
    assert (na.src, na.dst, na.hop_limit) == (str(source), "ff02::1", 255)
    assert na.target == str(VIP6)
    assert (na.override, na.solicited, na.router) == (True, False, True)
    assert na.tlla == mac
    assert na.checksum_ok
    wait_until(lambda: neighbour_mac(link.b, str(VIP6)) == mac, what="the peer's neighbour entry to move")


@pytest.mark.asyncio
async def test_schedule_drives_the_sends(link: Link, capture: Capture, announcer: Announcer) -> None:
    clock = SystemClock()
    frames = announcement_frames([VIP4, VIP6], mac=announcer.mac, source=link_local(link.a, "a0"))
    settings = AnnounceSettings(repeat=3, interval_ns=20_000_000, delay_ns=100_000_000)
    sent: list[tuple[Announcement, SendResult, int]] = []
    start = clock.monotonic_ns()
    await run_schedule(
        announcer,
        frames,
        announcements(settings, start),
        clock=clock,
        report=lambda item, result: sent.append((item, result, clock.monotonic_ns())),
    )
    assert [(item.phase, item.copy) for item, _, _ in sent] == [
        (phase, copy) for phase in (Phase.TAKEOVER, Phase.DELAYED) for copy in (1, 2, 3)
    ]
    assert all(result.ok and result.sent == 2 and result.elapsed_ns > 0 for _, result, _ in sent)
    assert all(at >= item.at_ns for item, _, at in sent)  # never early
    assert len(capture.frames(lambda frame: is_garp(frame) or is_na(frame), 12)) == 12


def test_errors_are_results(link: Link, announcer: Announcer) -> None:
    with link.a.entered(), pytest.raises(AnnouncerUnavailable) as caught:
        Announcer.open("ghost0", clock=SystemClock())
    assert caught.value.errno == errno.ENODEV and "ghost0 does not exist" in caught.value.reason
    link.a.ip("link", "set", "a0", "down")
    result = announcer.send([gratuitous_arp(mac=announcer.mac, vip=VIP4)] * 2)
    assert not result.ok and result.sent == 0
    assert result.errno == errno.ENETDOWN and result.reason is not None and "a0 is down" in result.reason


@pytest.mark.asyncio
@pytest.mark.parametrize("family", [Family.IPV4, Family.IPV6])
async def test_the_peer_resolves_a_vip_on_a_vmac_to_the_virtual_mac(link: Link, family: Family) -> None:
    """RFC 9568 §8.1.2: ARP (or ND) for the VIP is answered with the virtual MAC, never the physical one,
    and stays so after the node has sent from the VIP (an ICMP error here)."""
    spec = VmacSpec(name=f"vrrp{'' if family == Family.IPV4 else '6'}.7", parent="a0", vrid=7, family=family)
    vip = VIP4 if family == Family.IPV4 else VIP6
    async with await VipNetlink.open(clock=SystemClock(), netns=link.a.name) as kernel:
        assert (await kernel.ensure_vmac(spec)).ok
        assert (await kernel.acquire([parse_vip(spec.name, str(vip))])).ok
    kind = socket.AF_INET if family == Family.IPV4 else socket.AF_INET6
    with link.b.entered(), socket.socket(kind, socket.SOCK_DGRAM) as probe:
        probe.sendto(b"?", (str(vip), 9))  # makes the peer resolve the VIP; the VIP answers port unreachable
    wait_until(lambda: neighbour_mac(link.b, str(vip)) == spec.mac, what="the VIP to resolve to the vmac")
    if family == Family.IPV4:  # the ICMP error goes out of the parent, which asks for the peer's MAC first:
        wait_until(lambda: neighbour_mac(link.b, "192.0.2.1") is not None, what="the parent's ARP request")
        assert neighbour_mac(link.b, str(vip)) == spec.mac  # it asked from its own address, not the VIP's
