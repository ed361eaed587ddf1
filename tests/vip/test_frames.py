"""Announcement frames, byte for byte and as an independent decoder (scapy) reads them."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from ffo.vip.frames import (
    announcement_frames,
    gratuitous_arp,
    icmpv6_checksum,
    mac_bytes,
    mac_text,
    unsolicited_na,
)
from tests.vip.decode import decode_garp, decode_na

MAC = mac_bytes("00:00:5e:00:01:07")
VIP4 = ipaddress.IPv4Address("192.0.2.100")
VIP6 = ipaddress.IPv6Address("2001:db8::100")
LL = ipaddress.IPv6Address("fe80::1")


def test_mac_text_round_trip() -> None:
    assert mac_text(MAC) == "00:00:5e:00:01:07"
    assert mac_bytes("00-00-5E-00-02-FF") == bytes.fromhex("00005e0002ff")
    with pytest.raises(ValueError, match="6-byte"):
        mac_bytes("00:11")


def test_gratuitous_arp_bytes() -> None:
    frame = gratuitous_arp(mac=MAC, vip=VIP4)
    expected = bytes.fromhex(
        "ffffffffffff"
        "00005e000107"
        "0806"  # Ethernet: broadcast, from the vmac, ARP
        "0001"
        "0800"
        "06"
        "04"
        "0001"  # Ethernet/IPv4, request
        "00005e000107"
        "c0000264"  # sender: the MAC, the VIP
        "ffffffffffff"
        "c0000264"  # target: broadcast (keepalived's layout), the VIP
    )
    assert frame == expected.ljust(60, b"\x00")


def test_gratuitous_arp_as_scapy_reads_it() -> None:
    garp = decode_garp(gratuitous_arp(mac=MAC, vip=VIP4))
    assert (garp.eth_dst, garp.eth_src) == ("ff:ff:ff:ff:ff:ff", "00:00:5e:00:01:07")
    assert garp.op == 1
    assert (garp.hwsrc, garp.psrc, garp.pdst) == ("00:00:5e:00:01:07", "192.0.2.100", "192.0.2.100")


def test_unsolicited_na_fields() -> None:
    na = decode_na(unsolicited_na(mac=MAC, source=LL, vip=VIP6))
    assert (na.eth_dst, na.eth_src) == ("33:33:00:00:00:01", "00:00:5e:00:01:07")
    assert (na.src, na.dst, na.hop_limit) == ("fe80::1", "ff02::1", 255)
    assert na.target == "2001:db8::100"
    assert (na.router, na.solicited, na.override) == (True, False, True)
    assert na.tlla == "00:00:5e:00:01:07"
    assert na.checksum_ok


def test_unsolicited_na_without_router_flag() -> None:
    assert not decode_na(unsolicited_na(mac=MAC, source=LL, vip=VIP6, router=False)).router


def test_icmpv6_checksum_verifies_to_zero() -> None:
    """RFC 1071: summing a message that carries its checksum gives 0xffff (the checksum of it is 0)."""
    frame = unsolicited_na(mac=MAC, source=LL, vip=VIP6)
    message = frame[14 + 40 :]
    assert icmpv6_checksum(LL, ipaddress.IPv6Address("ff02::1"), message) == 0
    (length,) = struct.unpack("!H", frame[18:20])
    assert length == len(message) == 32


def test_announcement_frames_one_per_vip_and_need_a_source_for_ipv6() -> None:
    frames = announcement_frames([VIP4, VIP6], mac=MAC, source=LL)
    assert [len(frame) for frame in frames] == [60, 86]
    with pytest.raises(ValueError, match="link-local source"):
        announcement_frames([VIP6], mac=MAC)
