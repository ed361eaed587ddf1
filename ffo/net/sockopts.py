"""Opening a raw VRRP socket on one interface: the socket options and why each one is there.

Each option below answers a behaviour measured on this project's machines (Linux 6.18, two lab namespaces:
a socket without the option, next to one with it); keepalived and FRR set the same ones. tests/net checks
what can be seen from outside (TTL 255, no loopback, the group only, kernel-verified IPv6 checksums):

- ``SO_BINDTODEVICE``: a raw socket otherwise receives protocol 112 from every interface of the namespace.
- ``IP_MULTICAST_ALL = 0`` (and ``IPV6_MULTICAST_ALL = 0``): by default a raw socket receives multicast for
  any group *any* socket of the host joined, on any interface; with 0 it gets only the groups it joined itself.
  Python 3.11 lacks both constants (Linux: 49 and 29).
- ``IP_MULTICAST_TTL`` / ``IPV6_MULTICAST_HOPS`` = 255: ``IP_TTL`` does not apply to multicast (the kernel sends
  TTL 1 by default), and RFC 9568 §5.1.1.3 / §5.1.2.3 want 255, which receivers check (§7.1).
  ``IP_TTL`` / ``IPV6_UNICAST_HOPS`` = 255 cover unicast peers.
- ``IP_MULTICAST_LOOP = 0`` / ``IPV6_MULTICAST_LOOP = 0``: a router must not hear its own advertisements.
- ``IP_ADD_MEMBERSHIP`` with an ``ip_mreqn`` naming the interface by index (not by address, which may not exist
  yet or may move) / ``IPV6_JOIN_GROUP`` with the index; ``IP_MULTICAST_IF`` / ``IPV6_MULTICAST_IF`` likewise.
- IPv4 has no ``IP_HDRINCL``: the kernel builds the IP header, and the raw socket *delivers* the header on
  receive, so the TTL and addresses are read from it. The kernel does not verify the VRRP checksum.
- ``IPV6_CHECKSUM = 6`` (the offset of the checksum in the VRRP header): the kernel computes the checksum with
  the real pseudo-header on send and verifies it on receive, silently dropping a bad one (it then shows up only
  in the socket's drop count, `kernel_drops`). ``IPV6_RECVHOPLIMIT`` and ``IPV6_RECVPKTINFO`` hand over the hop
  limit and the destination as ancillary data, because an IPv6 raw socket never delivers the IP header.
- The source address is set per packet with ``IP_PKTINFO`` / ``IPV6_PKTINFO`` ancillary data rather than by
  ``bind``: binding a raw socket to an address also filters what it receives to that destination, which would
  drop every multicast advertisement. ``IP_PKTINFO`` (8) is another constant missing in Python 3.11.
- A large receive buffer (``SO_RCVBUFFORCE``, root only, else ``SO_RCVBUF`` capped by ``rmem_max``): 200 virtual
  routers at 10 ms are 20,000 packets a second, and a burst must wait in the kernel, not be dropped, while the
  event loop is busy.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct

from ffo.vrrp.packet import Family, IPAddress

__all__ = [
    "GROUPS",
    "IPV6_CHECKSUM_OFFSET",
    "IPV6_MULTICAST_ALL",
    "IP_MULTICAST_ALL",
    "IP_PKTINFO",
    "kernel_drops",
    "open_raw",
    "pktinfo",
]

IPPROTO_VRRP = 112
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)
IPV6_MULTICAST_ALL = getattr(socket, "IPV6_MULTICAST_ALL", 29)
IPV6_CHECKSUM_OFFSET = 6
"""Where the checksum sits in the VRRP header (RFC 9568 §5.2.8), for IPV6_CHECKSUM."""
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)
_SK_MEMINFO_DROPS = 8  # index in the u32 array SO_MEMINFO returns (<linux/sock_diag.h>)
GROUPS: dict[Family, IPAddress] = {
    Family.IPV4: ipaddress.IPv4Address("224.0.0.18"),
    Family.IPV6: ipaddress.IPv6Address("ff02::12"),
}
"""RFC 9568 §5.1.1.2 / §5.1.2.2: the VRRP multicast groups."""
ANCILLARY_SIZE_V6 = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4)
"""Room for an in6_pktinfo and a hop limit."""


def open_raw(family: Family, ifname: str, ifindex: int, *, rcvbuf: int = 1 << 20) -> socket.socket:
    """A non-blocking raw protocol-112 socket on `ifname`, joined to the VRRP group, options set as above."""
    kind = socket.AF_INET if family is Family.IPV4 else socket.AF_INET6
    sock = socket.socket(kind, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, IPPROTO_VRRP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        _set_rcvbuf(sock, rcvbuf)
        if family is Family.IPV4:
            _configure_ipv4(sock, ifindex)
        else:
            _configure_ipv6(sock, ifindex)
    except BaseException:
        sock.close()
        raise
    return sock


def _configure_ipv4(sock: socket.socket, ifindex: int) -> None:
    mreqn = struct.pack("=4s4si", GROUPS[Family.IPV4].packed, bytes(4), ifindex)  # struct ip_mreqn
    sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)


def _configure_ipv6(sock: socket.socket, ifindex: int) -> None:
    mreq = struct.pack("=16sI", GROUPS[Family.IPV6].packed, ifindex)  # struct ipv6_mreq
    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, IPV6_CHECKSUM_OFFSET)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)


def _set_rcvbuf(sock: socket.socket, size: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except PermissionError:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def pktinfo(family: Family, source: IPAddress, ifindex: int) -> tuple[int, int, bytes]:
    """The ancillary item that makes `sendmsg` send from `source` out of `ifindex` (in_pktinfo/in6_pktinfo)."""
    if family is Family.IPV4:
        return socket.IPPROTO_IP, IP_PKTINFO, struct.pack("=i4s4s", ifindex, source.packed, bytes(4))
    return socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, struct.pack("=16sI", source.packed, ifindex)


def kernel_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped for this socket: a full receive buffer, or (IPv6) a bad checksum.

    From ``SO_MEMINFO``; None where the kernel does not offer it.
    """
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * (_SK_MEMINFO_DROPS + 1))
    except OSError:
        return None
    if len(raw) < 4 * (_SK_MEMINFO_DROPS + 1):
        return None
    return int(struct.unpack_from("=I", raw, 4 * _SK_MEMINFO_DROPS)[0])
