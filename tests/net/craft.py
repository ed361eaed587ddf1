"""Hand-made packets for the tests: what ffo's socket refuses to send (bad TTL, bad checksum, garbage).

Built with struct and sent with plain raw sockets rather than scapy, because these run in a lab node's
namespace entered by `setns`, and scapy reads its routes from the host's /proc at import time.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from ffo.vrrp.packet import Advertisement, ChecksumForm, Family, IPAddress, encode

GROUP4 = ipaddress.IPv4Address("224.0.0.18")
GROUP6 = ipaddress.IPv6Address("ff02::12")


def advertisement(vrid: int = 51, priority: int = 100, *addresses: str) -> Advertisement:
    """A VRRPv3 advertisement at 1 s, for `addresses` (default 192.0.2.100)."""
    parsed = tuple(ipaddress.ip_address(a) for a in addresses or ("192.0.2.100",))
    return Advertisement(version=3, vrid=vrid, priority=priority, interval_cs=100, addresses=parsed)


def ipv4_datagram(src: IPAddress, dst: IPAddress, payload: bytes, *, ttl: int = 255, protocol: int = 112) -> bytes:
    """An IPv4 header (the kernel fills the checksum and ID when sending with IP_HDRINCL) and `payload`."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 0, 0, ttl, protocol, 0, src.packed, dst.packed)
    return header + payload


def vrrp4(
    adv: Advertisement, src: IPAddress, dst: IPAddress = GROUP4, form: ChecksumForm = ChecksumForm.PSEUDO_HEADER
) -> bytes:
    return encode(adv, family=Family.IPV4, src=src, dst=dst, checksum_form=form)


def with_checksum(payload: bytes, src: IPAddress, dst: IPAddress) -> bytes:
    """`payload` with its checksum recomputed in the pseudo-header form (to build valid-looking damage).

    A payload shorter than the 8-byte header has no checksum field and is returned as it is.
    """
    if len(payload) < 8:
        return payload
    message = payload[:6] + b"\x00\x00" + payload[8:]
    padded = message + b"\x00" * (len(message) & 1)
    total = (int.from_bytes(padded, "big") + int(src) + int(dst) + len(message) + 112) % 0xFFFF
    return message[:6] + (0xFFFF - total if total else 0).to_bytes(2, "big") + message[8:]


def send_ipv4(datagram: bytes, dst: IPAddress, ifname: str = "eth0") -> None:
    """Send a complete IPv4 datagram (IP_HDRINCL) out of `ifname`, in the calling thread's namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        sock.sendto(datagram, (str(dst), 0))


def send_ipv6(payload: bytes, *, hop_limit: int, ifname: str = "eth0", dst: IPAddress = GROUP6) -> None:
    """Send a VRRP message over IPv6 exactly as given (no IPV6_CHECKSUM: a wrong checksum stays wrong)."""
    ifindex = socket.if_nametoindex(ifname)
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hop_limit)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, hop_limit)
        sock.sendto(payload, (str(dst), 0, 0, ifindex))
