"""The IPv4 / IPv6 header in front of a VRRP message: just enough to hand `packet.decode` what it needs.

Pure: bytes in, an `IpDatagram` out. Used where whole datagrams arrive (captures, IPv4 raw sockets); an IPv6
raw socket strips the header itself and reports the hop limit as ancillary data.

- The payload is cut to the IPv4 total length / IPv6 payload length, so link-layer padding (a 60-byte minimum
  Ethernet frame) and trailers (an FCS) are dropped.
- IPv6 extension headers — hop-by-hop options, routing, destination options and fragment — are skipped, and
  `protocol` is the next header after them (AH and ESP are not looked into: VRRP never uses them in RFC 9568).
- The IPv4 header checksum is not verified: the kernel has done it for received packets, and captures taken on
  the sending host often hold a not-yet-computed one (checksum offload).
- Fragments are rejected (``fragmented``), not reassembled: VRRP messages are never fragmented (at most 4,088
  bytes), and a raw socket receives reassembled datagrams. An IPv6 atomic fragment (offset 0, no more
  fragments) is a whole datagram and is accepted.
- Rejections are `IpRejected` (a `PacketRejected`); when the fixed header could be read, `partial` carries it,
  so that a capture reader can still report a truncated or fragmented VRRP packet.
"""

from __future__ import annotations

import ipaddress

import attrs

from ffo.vrrp.packet import Family, IPAddress, PacketRejected, RejectReason

__all__ = ["IpDatagram", "IpRejected", "parse_ip"]

_HOP_BY_HOP, _ROUTING, _FRAGMENT, _DEST_OPTS = 0, 43, 44, 60
_EXTENSIONS = frozenset({_HOP_BY_HOP, _ROUTING, _FRAGMENT, _DEST_OPTS})


@attrs.frozen(kw_only=True)
class IpDatagram:
    """One IP datagram, header fields decoded, payload trimmed to the length its header gives."""

    family: Family
    src: IPAddress
    dst: IPAddress
    ttl: int
    """The IPv4 TTL or the IPv6 hop limit."""
    protocol: int
    """IPv4 protocol, or the IPv6 next header after any extension headers (112 for VRRP)."""
    payload: bytes


class IpRejected(PacketRejected):
    """`PacketRejected` for an IP header; `partial` has what a readable header said (None when it was not).

    For a truncated datagram `partial.payload` is whatever bytes were there (a capture's snap length, for
    example); for a fragment it is the fragment's piece.
    """

    def __init__(self, reason: RejectReason, detail: str, partial: IpDatagram | None = None) -> None:
        super().__init__(reason, detail)
        self.partial = partial


def parse_ip(datagram: bytes) -> IpDatagram:
    """Parse an IPv4 or IPv6 datagram; raise `IpRejected` (a `PacketRejected`) if it is not a sound one."""
    if not datagram:
        raise IpRejected(RejectReason.TRUNCATED, "empty datagram")
    version = datagram[0] >> 4
    if version == 4:
        return _parse_ipv4(datagram)
    if version == 6:
        return _parse_ipv6(datagram)
    raise IpRejected(RejectReason.BAD_IP_HEADER, f"IP version {version}")


def _parse_ipv4(data: bytes) -> IpDatagram:
    size = len(data)
    if size < 20:
        raise IpRejected(RejectReason.TRUNCATED, f"{size} bytes, shorter than an IPv4 header")
    header_size = (data[0] & 0x0F) * 4
    total = int.from_bytes(data[2:4], "big")
    if header_size < 20:
        raise IpRejected(RejectReason.BAD_IP_HEADER, f"IPv4 header length {header_size} < 20")
    if total < header_size:
        raise IpRejected(RejectReason.BAD_IP_HEADER, f"IPv4 total length {total} < header length")
    datagram = IpDatagram(
        family=Family.IPV4,
        src=ipaddress.IPv4Address(data[12:16]),
        dst=ipaddress.IPv4Address(data[16:20]),
        ttl=data[8],
        protocol=data[9],
        payload=data[header_size:total],
    )
    if size < total:
        raise IpRejected(RejectReason.TRUNCATED, f"{size} of {total} bytes", datagram)
    if int.from_bytes(data[6:8], "big") & 0x3FFF:  # the more-fragments flag or an offset
        raise IpRejected(RejectReason.FRAGMENTED, "an IPv4 fragment", datagram)
    return datagram


def _parse_ipv6(data: bytes) -> IpDatagram:
    size = len(data)
    if size < 40:
        raise IpRejected(RejectReason.TRUNCATED, f"{size} bytes, shorter than an IPv6 header")
    end = 40 + int.from_bytes(data[4:6], "big")
    protocol, offset, fragment = data[6], 40, False
    while protocol in _EXTENSIONS and not fragment:
        if offset + 8 > min(end, size):
            break  # reported below as truncated or malformed
        next_header = data[offset]
        if protocol == _FRAGMENT:
            fragment = int.from_bytes(data[offset + 2 : offset + 4], "big") & 0xFFF9 != 0  # offset or M flag
            offset += 8
        else:
            offset += (data[offset + 1] + 1) * 8
        protocol = next_header
    datagram = IpDatagram(
        family=Family.IPV6,
        src=ipaddress.IPv6Address(data[8:24]),
        dst=ipaddress.IPv6Address(data[24:40]),
        ttl=data[7],
        protocol=protocol,
        payload=data[offset:end],
    )
    if size < end:
        raise IpRejected(RejectReason.TRUNCATED, f"{size} of {end} bytes", datagram)
    if offset > end or (protocol in _EXTENSIONS and not fragment):
        raise IpRejected(RejectReason.BAD_IP_HEADER, "IPv6 extension headers run past the payload length")
    if fragment:
        raise IpRejected(RejectReason.FRAGMENTED, "an IPv6 fragment", datagram)
    return datagram
