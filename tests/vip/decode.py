"""Independent decoding of announcement frames with scapy (tests only), to check ffo's struct-built bytes."""

from __future__ import annotations

from typing import Any

import attrs
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6, in6_chksum
from scapy.layers.l2 import ARP, Ether


@attrs.frozen
class Garp:
    eth_dst: str
    eth_src: str
    op: int
    hwsrc: str
    psrc: str
    hwdst: str
    pdst: str


@attrs.frozen
class Na:
    eth_dst: str
    eth_src: str
    src: str
    dst: str
    hop_limit: int
    target: str
    router: bool
    solicited: bool
    override: bool
    tlla: str | None
    checksum_ok: bool


def decode_garp(frame: bytes) -> Garp:
    packet: Any = Ether(frame)
    arp = packet[ARP]
    return Garp(
        eth_dst=packet.dst,
        eth_src=packet.src,
        op=arp.op,
        hwsrc=arp.hwsrc,
        psrc=arp.psrc,
        hwdst=arp.hwdst,
        pdst=arp.pdst,
    )


def decode_na(frame: bytes) -> Na:
    packet: Any = Ether(frame)
    ip = packet[IPv6]
    na = packet[ICMPv6ND_NA]
    option = packet[ICMPv6NDOptDstLLAddr] if packet.haslayer(ICMPv6NDOptDstLLAddr) else None
    message = bytes(ip.payload)
    checksum_ok = in6_chksum(58, ip, message[:2] + b"\x00\x00" + message[4:]) == na.cksum  # type: ignore[no-untyped-call]
    return Na(
        eth_dst=packet.dst,
        eth_src=packet.src,
        src=ip.src,
        dst=ip.dst,
        hop_limit=ip.hlim,
        target=na.tgt,
        router=bool(na.R),
        solicited=bool(na.S),
        override=bool(na.O),
        tlla=None if option is None else option.lladdr,
        checksum_ok=checksum_ok,
    )
