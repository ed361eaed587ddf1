"""An interface's addresses from the kernel, and the two a VRRP router sends from (RFC 9568 §5.1.1.1, §5.1.2.1).

IPv4 advertisements carry "the primary IPv4 address of the interface the packet is being sent from" as their
source, IPv6 ones "the IPv6 link-local address of the interface". `primary_addresses` finds both with one
netlink ``RTM_GETADDR`` dump over a plain ``AF_NETLINK`` socket: about a hundred lines of struct parsing, no
dependency, no event loop (pyroute2's synchronous API runs its own asyncio loop, which cannot run inside the
VRRP actor's), and — like every socket — it reads the network namespace of the calling thread, which is what
the lab's `inside` relies on.

"Primary" follows the kernel: the first IPv4 address of the interface that is not flagged secondary, in the
kernel's order (the dump lists an interface's primary addresses in the order they were added). A VIP added
later in another prefix, or as a /32, is primary too but comes later; the VRRP actor passes its VIPs as
`exclude` so that a node which holds a VIP never advertises from it. The IPv6 link-local address is one that
has finished duplicate address detection: a tentative address cannot be sent from.
"""

from __future__ import annotations

import errno
import ipaddress
import itertools
import socket
import struct
import sys
from collections.abc import Collection, Iterator

import attrs

from ffo.errors import FfoError
from ffo.vrrp.packet import IPAddress

__all__ = ["InterfaceAddress", "NetlinkError", "interface_addresses", "primary_addresses"]

_NETLINK_ROUTE = 0
_RTM_NEWADDR, _RTM_GETADDR = 20, 22
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_IFA_ADDRESS, _IFA_LOCAL, _IFA_FLAGS = 1, 2, 8
IFA_F_SECONDARY, IFA_F_DADFAILED, IFA_F_TENTATIVE = 0x01, 0x08, 0x40
_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, interface index
_RTATTR = struct.Struct("=HH")  # length, type
_sequence = itertools.count(1)


class NetlinkError(FfoError):
    """The kernel answered the address dump with an error."""


@attrs.frozen(kw_only=True)
class InterfaceAddress:
    """One address of one interface, as the kernel lists it."""

    ifindex: int
    address: IPAddress
    prefixlen: int
    scope: int
    """RT_SCOPE_*: 0 universe, 253 link, 254 host."""
    flags: int
    """IFA_F_* (the 32-bit IFA_FLAGS attribute when present)."""

    @property
    def secondary(self) -> bool:
        return bool(self.flags & IFA_F_SECONDARY)

    @property
    def usable(self) -> bool:
        """Whether packets can be sent from it: not tentative, DAD not failed."""
        return not self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)


def _align(length: int) -> int:
    return (length + 3) & ~3


def _attributes(data: bytes, offset: int, end: int) -> Iterator[tuple[int, bytes]]:
    while offset + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size:
            return
        yield kind & 0x3FFF, data[offset + _RTATTR.size : offset + length]  # strip NLA_F_NESTED/NET_BYTEORDER
        offset += _align(length)


def _parse_address(data: bytes, offset: int, end: int) -> InterfaceAddress | None:
    family, prefixlen, flags, scope, index = _IFADDRMSG.unpack_from(data, offset)
    attributes = dict(_attributes(data, offset + _align(_IFADDRMSG.size), end))
    raw = attributes.get(_IFA_LOCAL) or attributes.get(_IFA_ADDRESS)  # IFA_LOCAL is ours on point-to-point
    if raw is None or family not in (socket.AF_INET, socket.AF_INET6):
        return None
    if _IFA_FLAGS in attributes and len(attributes[_IFA_FLAGS]) >= 4:
        flags = int.from_bytes(attributes[_IFA_FLAGS][:4], sys.byteorder)
    address: IPAddress = ipaddress.IPv4Address(raw) if family == socket.AF_INET else ipaddress.IPv6Address(raw)
    return InterfaceAddress(ifindex=index, address=address, prefixlen=prefixlen, scope=scope, flags=flags)


def interface_addresses(ifindex: int | None = None) -> list[InterfaceAddress]:
    """Every address the kernel has (of interface `ifindex` only, if given), in the kernel's order."""
    sequence = next(_sequence) & 0xFFFFFFFF
    request = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(request), _RTM_GETADDR, _NLM_F_REQUEST | _NLM_F_DUMP, sequence, 0)
    found: list[InterfaceAddress] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_ROUTE) as sock:
        sock.sendto(header + request, (0, 0))
        while True:
            data = sock.recv(65536)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, kind, _flags, seq, _port = _NLMSGHDR.unpack_from(data, offset)
                if length < _NLMSGHDR.size:
                    break
                body, end = offset + _NLMSGHDR.size, offset + length
                offset += _align(length)
                if seq != sequence:
                    continue
                if kind == _NLMSG_DONE:
                    return [a for a in found if ifindex is None or a.ifindex == ifindex]
                if kind == _NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, body)[0]
                    raise NetlinkError(f"RTM_GETADDR: {errno.errorcode.get(code, code)}")
                if kind == _RTM_NEWADDR and (parsed := _parse_address(data, body, end)) is not None:
                    found.append(parsed)


def primary_addresses(
    ifname: str, *, exclude: Collection[IPAddress] = ()
) -> tuple[ipaddress.IPv4Address | None, ipaddress.IPv6Address | None]:
    """The interface's primary IPv4 address and usable IPv6 link-local address (None for either it lacks).

    `exclude` (the VIPs) are never chosen. Raises `OSError` if there is no interface `ifname` in the calling
    thread's network namespace.
    """
    ifindex = socket.if_nametoindex(ifname)
    ipv4: ipaddress.IPv4Address | None = None
    ipv6: ipaddress.IPv6Address | None = None
    for entry in interface_addresses(ifindex):
        address = entry.address
        if address in exclude:
            continue
        if ipv4 is None and isinstance(address, ipaddress.IPv4Address) and not entry.secondary:
            ipv4 = address
        elif ipv6 is None and isinstance(address, ipaddress.IPv6Address) and address.is_link_local and entry.usable:
            ipv6 = address
    return ipv4, ipv6
