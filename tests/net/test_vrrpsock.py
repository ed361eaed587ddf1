"""ffo's raw VRRP sockets between real namespaces: what arrives, from where, with which TTL, and what is refused."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import pytest

from ffo.clock import FakeClock
from ffo.lab import Lab
from ffo.net import NetReason, Received, Rejected, VrrpSocket
from ffo.vrrp.packet import ChecksumForm, Family, IPAddress, RejectReason, encode
from tests.lab.support import quiet, receive, wait_until
from tests.net import craft
from tests.net.conftest import OpenSocket

pytestmark = pytest.mark.netns

FAMILIES = [Family.IPV4, Family.IPV6]


def vip(family: Family) -> str:
    return "192.0.2.100" if family is Family.IPV4 else "fe80::100"


def source_of(lab: Lab, node: str, family: Family) -> IPAddress:
    address = lab.ipv4(node) if family is Family.IPV4 else lab.link_local(node)
    assert address is not None
    return address


def valid(got: list[Received | Rejected]) -> list[Received]:
    return [d for d in got if isinstance(d, Received)]


@pytest.mark.parametrize("family", FAMILIES, ids=["ipv4", "ipv6"])
def test_advertisement_arrives_with_ttl_255_from_the_primary_address(
    lab: Lab, open_socket: OpenSocket, family: Family
) -> None:
    a, b = open_socket("n1", family), open_socket("n2", family)
    assert a.source == source_of(lab, "n1", family)
    adv = craft.advertisement(51, 200, vip(family))
    assert a.send(adv) == 1
    (got,) = receive(b, lambda got: len(got) >= 1)
    assert isinstance(got, Received), got
    assert got.advertisement == adv
    assert got.src == source_of(lab, "n1", family)
    assert got.dst == ipaddress.ip_address("224.0.0.18" if family is Family.IPV4 else "ff02::12")
    assert got.ttl == 255
    assert got.checksum_form is ChecksumForm.PSEUDO_HEADER
    assert b.statistics().received == 1 and a.statistics().sent == 1


@pytest.mark.parametrize("family", FAMILIES, ids=["ipv4", "ipv6"])
def test_repeated_advertisements_take_the_fast_path(open_socket: OpenSocket, family: Family) -> None:
    a, b = open_socket("n1", family), open_socket("n2", family)
    adv = craft.advertisement(54, 120, vip(family))
    for _ in range(5):
        a.send(adv)
    got = receive(b, lambda got: len(got) >= 5)
    assert all(isinstance(d, Received) and d.advertisement == adv for d in got)
    assert (b.statistics().received, b.statistics().repeats) == (5, 4)
    b.set_peers(54, [a.source] if a.source else [])  # a peer change forgets what was judged before
    a.send(adv)
    receive(b, lambda got: len(got) >= 1)
    assert b.statistics().repeats == 4


@pytest.mark.parametrize("family", FAMILIES, ids=["ipv4", "ipv6"])
def test_the_sender_does_not_hear_itself(lab: Lab, open_socket: OpenSocket, family: Family) -> None:
    a, b = open_socket("n1", family), open_socket("n2", family)
    a.send(craft.advertisement(52, 100, vip(family)))
    receive(b, lambda got: len(got) >= 1)  # on the wire, so a loopback copy would have been queued by now
    assert quiet(a, seconds=0.1) == []


@pytest.mark.parametrize("family", FAMILIES, ids=["ipv4", "ipv6"])
def test_a_send_only_socket_sends_and_hears_nothing_of_the_group(open_socket: OpenSocket, family: Family) -> None:
    """``listen=False`` (the VIP actor's goodbyes): the group's advertisements are not copied into it."""
    a, b = open_socket("n1", family), open_socket("n2", family)
    mute = open_socket("n3", family, listen=False)
    assert mute.send(craft.advertisement(56, 0, vip(family))) == 1
    (goodbye,) = receive(b, lambda got: len(got) >= 1)
    assert isinstance(goodbye, Received) and goodbye.advertisement.priority == 0
    a.send(craft.advertisement(56, 100, vip(family)))
    receive(b, lambda got: len(got) >= 1)  # on the wire, so n3's copy would have been queued by now
    assert quiet(mute, seconds=0.1) == []


def test_only_the_vrrp_group_is_heard_not_groups_other_sockets_joined(lab: Lab, open_socket: OpenSocket) -> None:
    """IP_MULTICAST_ALL = 0: another socket's group membership on the node does not leak into ours."""
    import socket
    import struct

    b = open_socket("n2", Family.IPV4)
    other_group = ipaddress.IPv4Address("224.0.0.99")
    with lab.inside("n2"):
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        mreqn = struct.pack("=4s4si", other_group.packed, bytes(4), socket.if_nametoindex("eth0"))
        other.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    with other:
        src = lab.ipv4("n1")
        with lab.inside("n1"):
            for group in (other_group, craft.GROUP4):
                payload = craft.vrrp4(craft.advertisement(55), src, group)
                craft.send_ipv4(craft.ipv4_datagram(src, group, payload), group)
        got = receive(b, lambda got: len(got) >= 1)
        got += quiet(b, seconds=0.1)
    assert [d.dst for d in valid(got)] == [craft.GROUP4] and len(got) == 1


def test_both_ipv4_checksum_forms_are_sent_and_accepted(open_socket: OpenSocket) -> None:
    a, b = open_socket("n1", Family.IPV4), open_socket("n2", Family.IPV4)
    for form in (ChecksumForm.PSEUDO_HEADER, ChecksumForm.PLAIN):
        a.send(craft.advertisement(53), checksum_form=form)
    got = receive(b, lambda got: len(got) >= 2)
    assert [(type(d), getattr(d, "checksum_form", None)) for d in got] == [
        (Received, ChecksumForm.PSEUDO_HEADER),
        (Received, ChecksumForm.PLAIN),
    ]


@pytest.mark.parametrize("family", FAMILIES, ids=["ipv4", "ipv6"])
def test_unicast_goes_to_the_peer_and_other_sources_are_refused(
    lab: Lab, open_socket: OpenSocket, family: Family
) -> None:
    a, b, c = open_socket("n1", family), open_socket("n2", family), open_socket("n3", family)
    a.set_peers(61, [source_of(lab, "n2", family)])
    b.set_peers(61, [source_of(lab, "n1", family)])
    c.set_peers(61, [source_of(lab, "n2", family)])
    assert a.send(craft.advertisement(61, 150, vip(family))) == 1
    assert c.send(craft.advertisement(61, 250, vip(family))) == 1  # same VRID, not one of b's peers
    c.send(craft.advertisement(62, 100, vip(family)))  # multicast, for a VRID without peers: any source goes
    got = receive(b, lambda got: len(got) >= 3)
    by_vrid = {(d.advertisement.vrid if isinstance(d, Received) else d.vrid, type(d)): d for d in got}
    unicast = by_vrid[61, Received]
    assert isinstance(unicast, Received)
    assert unicast.src == source_of(lab, "n1", family) and unicast.dst == source_of(lab, "n2", family)
    assert unicast.ttl == 255 and unicast.advertisement.priority == 150
    refused = by_vrid[61, Rejected]
    assert isinstance(refused, Rejected)
    assert refused.reason is NetReason.WRONG_SOURCE and refused.src == source_of(lab, "n3", family)
    assert isinstance(by_vrid[62, Received], Received)
    assert b.statistics().rejected == {"wrong_source": 1}
    assert quiet(c, seconds=0.05) == []  # n3 is not a's peer: a's unicast never reached it


def test_malformed_ipv4_packets_are_counted_and_receiving_goes_on(lab: Lab, open_socket: OpenSocket) -> None:
    b = open_socket("n2", Family.IPV4)
    src, group = lab.ipv4("n1"), craft.GROUP4
    good = craft.vrrp4(craft.advertisement(71), src)
    bad_checksum = bytearray(good)
    bad_checksum[6] ^= 0x55
    damaged = {
        "truncated": good[:6],
        "address_count_mismatch": good[:3] + b"\x02" + good[4:],  # announces 2 addresses, carries 1
        "bad_type": b"\x32" + good[1:],
        "bad_version": b"\x41" + good[1:],
        "bad_vrid": good[:1] + b"\x00" + good[2:],
        "zero_interval": good[:4] + b"\x00\x00" + good[6:],
    }
    datagrams = [
        craft.ipv4_datagram(src, group, good, ttl=64),
        craft.ipv4_datagram(src, group, bytes(bad_checksum)),
        *(craft.ipv4_datagram(src, group, craft.with_checksum(p, src, group)) for p in damaged.values()),
        craft.ipv4_datagram(src, group, good),
    ]
    with lab.inside("n1"):
        for datagram in datagrams:
            craft.send_ipv4(datagram, group)
    got = receive(b, lambda got: len(got) >= len(datagrams))
    reasons = [d.reason.value if isinstance(d, Rejected) else "ok" for d in got]
    assert reasons == ["bad_ttl", "bad_checksum", *damaged, "ok"]
    first = got[0]
    assert isinstance(first, Rejected) and first.ttl == 64 and first.vrid == 71 and first.src == src
    stats = b.statistics()
    assert stats.rejected == dict.fromkeys(["bad_ttl", "bad_checksum", *damaged], 1)
    assert stats.received == 1


def test_invalid_packets_are_logged_once_per_reason_per_10_s(
    lab: Lab, open_socket: OpenSocket, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    b = open_socket("n2", Family.IPV4, clock=clock)
    src = lab.ipv4("n1")
    low_ttl = craft.ipv4_datagram(src, craft.GROUP4, craft.vrrp4(craft.advertisement(73), src), ttl=1)

    def burst(count: int) -> None:
        with lab.inside("n1"):
            for _ in range(count):
                craft.send_ipv4(low_ttl, craft.GROUP4)
        receive(b, lambda got: len(got) >= count)

    with caplog.at_level(logging.INFO, logger="ffo.vrrp.packet"):
        burst(3)
        clock.advance(10_000_000_000)
        burst(1)
    lines = [r.getMessage() for r in caplog.records if r.name == "ffo.vrrp.packet"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("n2 eth0 IPv4 vrid 73: discarded a packet from 192.0.2.11") and "bad_ttl" in lines[0]
    assert "(2 more since the last report)" in lines[1]
    assert b.statistics().rejected == {"bad_ttl": 4}


def test_ipv6_bad_hop_limit_is_counted_and_bad_checksum_dropped_by_the_kernel(
    lab: Lab, open_socket: OpenSocket
) -> None:
    b = open_socket("n2", Family.IPV6)
    src = source_of(lab, "n1", Family.IPV6)
    good = encode(craft.advertisement(72, 100, "fe80::100"), family=Family.IPV6, src=src, dst=craft.GROUP6)
    bad_checksum = bytearray(good)
    bad_checksum[6] ^= 0x55
    with lab.inside("n1"):
        craft.send_ipv6(good, hop_limit=64)
        craft.send_ipv6(bytes(bad_checksum), hop_limit=255)
        craft.send_ipv6(good, hop_limit=255)
    got = receive(b, lambda got: len(got) >= 2)
    assert [d.reason if isinstance(d, Rejected) else "ok" for d in got] == [RejectReason.BAD_TTL, "ok"]
    assert wait_until(lambda: b.statistics().kernel_drops == 1, what="the kernel's IPV6_CHECKSUM drop")


def test_a_burst_is_drained_in_batches_completely(lab: Lab, open_socket: OpenSocket) -> None:
    a, b = open_socket("n1", Family.IPV4), open_socket("n2", Family.IPV4, max_batch=64)
    count = 300
    for i in range(count):
        a.send(craft.advertisement(1 + i % 255, 1 + i % 254))
    assert a.statistics().sent == count
    got = receive(b, lambda got: len(got) >= count)
    assert len(valid(got)) == count
    stats = b.statistics()
    assert stats.largest_batch == 64  # the limit holds, and a queued burst fills a batch
    assert stats.batches < count / 2
    assert stats.kernel_drops == 0


@pytest.mark.asyncio
async def test_attach_delivers_batches_from_the_event_loop(open_socket: OpenSocket) -> None:
    a, b = open_socket("n1", Family.IPV4), open_socket("n2", Family.IPV4)
    batches: list[list[Received | Rejected]] = []
    b.attach(asyncio.get_running_loop(), lambda batch: batches.append(list(batch)))
    try:
        for i in range(20):
            a.send(craft.advertisement(80, 100 + i))
        async with asyncio.timeout(10):
            while sum(map(len, batches)) < 20:
                await asyncio.sleep(0.01)
        priorities = [d.advertisement.priority for batch in batches for d in valid(batch)]
        assert priorities == list(range(100, 120))
    finally:
        b.detach()
    b.detach()  # idempotent


def test_send_failures_are_counted_never_raised(lab: Lab, open_socket: OpenSocket) -> None:
    a = open_socket("n1", Family.IPV4)
    source = a.source
    a.set_source(None)
    assert a.send(craft.advertisement(90)) == 0
    assert a.statistics().send_failed == {"no_source": 1}
    a.set_source(source)
    lab.cut("n1", where="node")
    try:
        assert a.send(craft.advertisement(90)) == 0
        failed = a.statistics().send_failed
        assert sum(failed.values()) == 2 and set(failed) - {"no_source"}, failed
    finally:
        lab.restore("n1", where="node")
    wait_until(lambda: a.send(craft.advertisement(90)) == 1, what="sending after the link came back")


def test_primary_address_ignores_secondaries_and_excluded_vips(lab: Lab, open_socket: OpenSocket) -> None:
    from ffo.net import primary_addresses

    added = ["192.0.2.111/24", "198.51.100.7/32"]
    for address in added:
        lab.run("n1", ["ip", "addr", "add", address, "dev", "eth0"])
    try:
        with lab.inside("n1"):
            assert primary_addresses("eth0") == (lab.ipv4("n1"), lab.link_local("n1"))
            ipv4, _ = primary_addresses("eth0", exclude={lab.ipv4("n1")})
            assert ipv4 == ipaddress.IPv4Address("198.51.100.7")  # .111 is a secondary of .11's prefix
        a = open_socket("n1", Family.IPV4)
        with lab.inside("n1"):
            assert a.refresh_source(exclude={lab.ipv4("n1")}) == ipaddress.IPv4Address("198.51.100.7")
    finally:
        for address in added:
            lab.run("n1", ["ip", "addr", "del", address, "dev", "eth0"], check=False)


@pytest.mark.parametrize("family", FAMILIES, ids=["ipv4", "ipv6"])
def test_packets_leave_from_the_source_whether_by_the_bound_sender_or_with_pktinfo(
    lab: Lab, open_socket: OpenSocket, family: Family
) -> None:
    """Advertisements go by a socket bound to the source; after `set_source` to another address, by the main
    socket with IP(V6)_PKTINFO until `refresh_source` binds a sender to the new primary address."""
    other = "192.0.2.111/24" if family is Family.IPV4 else "fe80::111/64"
    lab.run("n1", ["ip", "addr", "add", other, "dev", "eth0", *([] if family is Family.IPV4 else ["nodad"])])
    try:
        a, b = open_socket("n1", family), open_socket("n2", family)
        primary = source_of(lab, "n1", family)
        secondary = ipaddress.ip_interface(other).ip
        for source in (primary, secondary, primary):
            if source == primary:
                with lab.inside("n1"):
                    assert a.refresh_source() == primary
            else:
                a.set_source(secondary)
            a.send(craft.advertisement(57, 100, vip(family)))
            (got,) = receive(b, lambda got: len(got) >= 1)
            assert isinstance(got, Received) and (got.src, got.ttl) == (source, 255)
        assert a.statistics().sent == 3 and not a.statistics().send_failed
    finally:
        lab.run("n1", ["ip", "addr", "del", other, "dev", "eth0"], check=False)


def test_open_fails_loudly_for_a_missing_interface(lab: Lab) -> None:
    with lab.inside("n1"), pytest.raises(OSError):
        VrrpSocket.open("nosuch0", Family.IPV4)


def test_scapy_agrees_with_what_ffo_puts_on_the_wire(lab: Lab, open_socket: OpenSocket) -> None:
    """A capture of ffo's packet decodes in scapy with the checksum scapy itself computes (pseudo-header form)."""
    import socket
    import struct

    from scapy.layers.inet import IP
    from scapy.layers.vrrp import VRRPv3

    with lab.inside("n2"):
        sniffer = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
        group = struct.pack("=4s4si", craft.GROUP4.packed, bytes(4), socket.if_nametoindex("eth0"))
        sniffer.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group)
    with sniffer:
        sniffer.settimeout(5)
        a = open_socket("n1", Family.IPV4)
        adv = craft.advertisement(51, 200, "192.0.2.100", "192.0.2.101")
        a.send(adv)
        packet = IP(sniffer.recv(65535))
    vrrp = packet[VRRPv3]
    assert (packet.ttl, packet.dst, vrrp.vrid, vrrp.priority, vrrp.ipcount) == (255, "224.0.0.18", 51, 200, 2)
    assert vrrp.addrlist == ["192.0.2.100", "192.0.2.101"]
    rebuilt = IP(bytes(packet))
    del rebuilt[VRRPv3].chksum
    assert IP(bytes(rebuilt))[VRRPv3].chksum == vrrp.chksum
