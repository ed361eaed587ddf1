"""The IP header parser in front of the codec."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ffo.vrrp.ipheader import IpRejected, parse_ip
from ffo.vrrp.packet import Family, RejectReason
from tests.support.pcap import ethernet, ipv4, ipv6

PAYLOAD = bytes(range(12))


def test_ipv4() -> None:
    ip = parse_ip(ipv4("192.0.2.11", "224.0.0.18", PAYLOAD, ttl=254))
    assert ip.family is Family.IPV4
    assert (ip.src, ip.dst) == (IPv4Address("192.0.2.11"), IPv4Address("224.0.0.18"))
    assert (ip.ttl, ip.protocol, ip.payload) == (254, 112, PAYLOAD)


def test_ipv4_padding_is_trimmed_and_options_skipped() -> None:
    datagram = ipv4("192.0.2.11", "224.0.0.18", PAYLOAD)
    # IHL 6: one 4-byte option word (three NOPs and an end-of-options) before the payload.
    with_options = bytes([0x46, 0xC0]) + struct.pack("!H", 24 + len(PAYLOAD)) + datagram[4:20]
    with_options += b"\x01\x01\x01\x00" + PAYLOAD
    assert parse_ip(ethernet(datagram)[14:]).payload == PAYLOAD  # Ethernet padding after the datagram
    assert parse_ip(with_options).payload == PAYLOAD


def test_ipv6_with_extension_headers() -> None:
    # hop-by-hop (8 bytes) -> destination options (16 bytes) -> atomic fragment -> VRRP
    hop_by_hop = bytes([60, 0]) + bytes(6)
    dest_opts = bytes([44, 1]) + bytes(14)
    atomic_fragment = bytes([112, 0, 0, 0]) + b"\x00\x00\x00\x01"
    datagram = ipv6("fe80::11", "ff02::12", PAYLOAD, next_header=0, extensions=hop_by_hop + dest_opts + atomic_fragment)
    ip = parse_ip(datagram + bytes(6))
    assert ip.family is Family.IPV6
    assert (ip.src, ip.dst) == (IPv6Address("fe80::11"), IPv6Address("ff02::12"))
    assert (ip.ttl, ip.protocol, ip.payload) == (255, 112, PAYLOAD)


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"", RejectReason.TRUNCATED),
        (bytes([0x45]) + bytes(10), RejectReason.TRUNCATED),
        (bytes([0x60]) + bytes(30), RejectReason.TRUNCATED),
        (bytes([0x50]) + bytes(40), RejectReason.BAD_IP_HEADER),
        (bytes([0x44]) + bytes(19), RejectReason.BAD_IP_HEADER),  # header length 16
        (ipv4("192.0.2.11", "224.0.0.18", PAYLOAD)[:-1], RejectReason.TRUNCATED),
        (ipv4("192.0.2.11", "224.0.0.18", PAYLOAD, fragment=0x2000), RejectReason.FRAGMENTED),
        (ipv4("192.0.2.11", "224.0.0.18", PAYLOAD, fragment=0x0010), RejectReason.FRAGMENTED),
        (ipv6("fe80::1", "ff02::12", PAYLOAD, next_header=44, extensions=bytes([112, 0, 0, 1]) + bytes(4)),
         RejectReason.FRAGMENTED),
        (ipv6("fe80::1", "ff02::12", b"", next_header=0, extensions=bytes([112, 4]) + bytes(6)),
         RejectReason.BAD_IP_HEADER),  # the hop-by-hop header claims 40 bytes
        (ipv6("fe80::1", "ff02::12", PAYLOAD)[:-1], RejectReason.TRUNCATED),
    ],
)  # fmt: skip
def test_rejections(datagram: bytes, reason: RejectReason) -> None:
    with pytest.raises(IpRejected) as caught:
        parse_ip(datagram)
    assert caught.value.reason is reason


def test_truncated_and_fragmented_keep_the_header() -> None:
    with pytest.raises(IpRejected) as caught:
        parse_ip(ipv4("192.0.2.11", "224.0.0.18", PAYLOAD, ttl=7)[:-2])
    partial = caught.value.partial
    assert partial is not None
    assert (partial.protocol, partial.ttl, partial.payload) == (112, 7, PAYLOAD[:-2])


@given(prefix=st.sampled_from([b"", b"\x45", b"\x46", b"\x4f", b"\x60"]), rest=st.binary(max_size=96))
def test_random_bytes_only_raise_ip_rejected(prefix: bytes, rest: bytes) -> None:
    datagram = prefix + rest
    try:
        ip = parse_ip(datagram)
    except IpRejected as exc:
        assert isinstance(exc.reason, RejectReason)
    else:
        assert len(ip.payload) <= len(datagram)
