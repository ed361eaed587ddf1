"""Gratuitous ARP and unsolicited neighbour advertisement frames, built with struct (pure).

RFC 9568 §6.4.1 / §6.4.2: a new master "broadcast[s] a gratuitous ARP request containing the virtual router
MAC address for each IP address associated with the virtual router" and, for IPv6, sends "an unsolicited ND
Neighbor Advertisement with the Router Flag (R) set, the Solicited Flag (S) unset, the Override flag (O)
set, the target address set to the IPv6 address of the virtual router, and the target link-layer address set
to the virtual router MAC address" (RFC 4861 §7.2.6: to the all-nodes group ff02::1, hop limit 255).

Frames are whole Ethernet frames for an AF_PACKET socket, built once per takeover and sent as bytes: a
raw send costs ~10 µs here where scapy's `sendp` costs 24 ms. The gratuitous ARP has keepalived's layout
(an ARP *request*, sender and target IP both the VIP, target hardware address ff:ff:ff:ff:ff:ff; RFC 5227's
announcement would zero it, and receivers ignore it either way), padded to Ethernet's 60-byte minimum
(a NIC pads short frames, a veth does not, and some switches count runts).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from typing import Final

__all__ = [
    "ALL_NODES",
    "ETH_P_ARP",
    "ETH_P_IPV6",
    "announcement_frames",
    "gratuitous_arp",
    "icmpv6_checksum",
    "mac_bytes",
    "mac_text",
    "unsolicited_na",
]

ETH_P_ARP: Final = 0x0806
ETH_P_IPV6: Final = 0x86DD
ALL_NODES: Final = ipaddress.IPv6Address("ff02::1")
_BROADCAST: Final = b"\xff" * 6
_ALL_NODES_MAC: Final = bytes.fromhex("333300000001")  # RFC 2464 §7: 33:33 + the low 32 bits of ff02::1
_ETH_MIN: Final = 60
_ARP_REQUEST: Final = 1
_ICMPV6: Final = 58
_NEIGHBOR_ADVERTISEMENT: Final = 136
_TARGET_LINK_LAYER_ADDRESS: Final = 2  # RFC 4861 §4.6.1 option type
_FLAG_ROUTER: Final = 0x80000000
_FLAG_OVERRIDE: Final = 0x20000000
_ETHERNET: Final = struct.Struct("!6s6sH")
_ARP: Final = struct.Struct("!HHBBH6s4s6s4s")
_IPV6: Final = struct.Struct("!IHBB16s16s")
_NA: Final = struct.Struct("!BBHI16sBB6s")


def mac_bytes(text: str) -> bytes:
    """`"00:00:5e:00:01:05"` as its 6 bytes."""
    raw = bytes.fromhex(text.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"{text!r} is not a 6-byte MAC address")
    return raw


def mac_text(raw: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in raw)


def gratuitous_arp(*, mac: bytes, vip: ipaddress.IPv4Address) -> bytes:
    """An ARP request from `mac` for `vip` about `vip`: every host on the link that has `vip` in its cache
    moves it to `mac` (Linux updates an existing entry; `arp_accept` decides whether it creates one)."""
    ethernet = _ETHERNET.pack(_BROADCAST, mac, ETH_P_ARP)
    arp = _ARP.pack(1, 0x0800, 6, 4, _ARP_REQUEST, mac, vip.packed, _BROADCAST, vip.packed)
    return (ethernet + arp).ljust(_ETH_MIN, b"\x00")


def icmpv6_checksum(source: ipaddress.IPv6Address, destination: ipaddress.IPv6Address, message: bytes) -> int:
    """RFC 4443 §2.3: the one's complement sum over the RFC 8200 §8.1 pseudo-header and the message."""
    pseudo = source.packed + destination.packed + struct.pack("!I3xB", len(message), _ICMPV6)
    data = pseudo + message
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def unsolicited_na(
    *, mac: bytes, source: ipaddress.IPv6Address, vip: ipaddress.IPv6Address, router: bool = True
) -> bytes:
    """An unsolicited neighbour advertisement for `vip` at `mac`, from `source` (a link-local) to ff02::1.

    Flags: Override set (RFC 4861 §7.2.6: so that caches replace the old MAC), Solicited clear (nobody
    asked), Router set by default (RFC 9568 §6.4.2: the virtual router is a router).
    """
    flags = _FLAG_OVERRIDE | (_FLAG_ROUTER if router else 0)
    unchecked = _NA.pack(_NEIGHBOR_ADVERTISEMENT, 0, 0, flags, vip.packed, _TARGET_LINK_LAYER_ADDRESS, 1, mac)
    checksum = icmpv6_checksum(source, ALL_NODES, unchecked)
    message = unchecked[:2] + struct.pack("!H", checksum) + unchecked[4:]
    ipv6 = _IPV6.pack(6 << 28, len(message), _ICMPV6, 255, source.packed, ALL_NODES.packed)
    return _ETHERNET.pack(_ALL_NODES_MAC, mac, ETH_P_IPV6) + ipv6 + message


def announcement_frames(
    vips: Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address],
    *,
    mac: bytes,
    source: ipaddress.IPv6Address | None = None,
) -> tuple[bytes, ...]:
    """One frame per VIP: a gratuitous ARP for each IPv4 VIP, an unsolicited NA for each IPv6 VIP.

    `source` is the link-local address the NAs come from (RFC 4861 §4.4 wants a link-local); it is
    required as soon as one VIP is IPv6.
    """
    frames: list[bytes] = []
    for vip in vips:
        if isinstance(vip, ipaddress.IPv4Address):
            frames.append(gratuitous_arp(mac=mac, vip=vip))
        elif source is None:
            raise ValueError(f"an unsolicited NA for {vip} needs a link-local source address")
        else:
            frames.append(unsolicited_na(mac=mac, source=source, vip=vip))
    return tuple(frames)
