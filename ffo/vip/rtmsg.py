"""Route netlink requests built and read with struct (pure): addresses, an interface's IPv4 ARP settings.

The takeover path adds a VIP; measured here (tools/bench_vip.py), a request built with struct on a plain
NETLINK_ROUTE socket takes ~30 µs to its acknowledgement, the same request through pyroute2 ~500 µs (its
message classes and queues, not the kernel). So the VIP actor builds these two requests itself and leaves
everything else (dumps, links, vmacs) to pyroute2, where time does not matter as much.

Layouts from <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_addr.h>: a 16-byte `nlmsghdr`, the 8-byte
`ifaddrmsg`, then attributes (2-byte length, 2-byte type, payload, padded to 4). IPv4 addresses carry
IFA_LOCAL (the address) and IFA_ADDRESS (the same, for a non-point-to-point interface), as `ip address add`
sends them; IPv6 only IFA_ADDRESS.

`inet_conf_request` sets per-interface IPv4 settings (what `/proc/sys/net/ipv4/conf/<if>/` shows) with
RTM_SETLINK: a vmac and its parent need ARP settings (see `ffo.vip.vmac`). netlink rather than /proc
because /proc/sys/net shows the namespace of whoever opened it, while a socket keeps its own; and pyroute2
would encode IFLA_INET_CONF as the whole array, overwriting every other setting of the interface.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator, Mapping
from typing import Final

from ffo.vip.model import IPInterface

__all__ = ["AddressOp", "acknowledgements", "address_request"]

RTM_SETLINK: Final = 19
RTM_NEWADDR: Final = 20
RTM_DELADDR: Final = 21
NLMSG_ERROR: Final = 2
NLM_F_REQUEST: Final = 0x1
NLM_F_ACK: Final = 0x4
NLM_F_REPLACE: Final = 0x100
NLM_F_EXCL: Final = 0x200
NLM_F_CREATE: Final = 0x400
AF_INET: Final = 2
AF_INET6: Final = 10
IFA_ADDRESS: Final = 1
IFA_LOCAL: Final = 2
IFA_FLAGS: Final = 8
IFA_PROTO: Final = 11
IFLA_AF_SPEC: Final = 26
IFLA_INET_CONF: Final = 1
NLA_F_NESTED: Final = 0x8000
# enum in <linux/ip.h>; the attribute type inside IFLA_INET_CONF is the index.
IPV4_DEVCONF_RP_FILTER: Final = 8
IPV4_DEVCONF_ARPFILTER: Final = 13
IPV4_DEVCONF_ARP_ANNOUNCE: Final = 18
IPV4_DEVCONF_ARP_IGNORE: Final = 19
IPV4_DEVCONF_PROMOTE_SECONDARIES: Final = 20
IPV4_DEVCONF_ACCEPT_LOCAL: Final = 23
_HEADER: Final = struct.Struct("=IHHII")  # length, type, flags, sequence, port
_IFADDRMSG: Final = struct.Struct("=BBBBi")  # family, prefix length, flags (8 bits), scope, index
_IFINFOMSG: Final = struct.Struct("=BxHiII")  # family, type, index, flags, change
_ATTR: Final = struct.Struct("=HH")
_ERROR: Final = struct.Struct("=i")


class AddressOp(enum.Enum):
    """The three requests: add (fails with EEXIST when present), replace (add or update), delete."""

    ADD = (RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL)
    REPLACE = (RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE)
    DELETE = (RTM_DELADDR, 0)


def _attribute(kind: int, payload: bytes) -> bytes:
    length = _ATTR.size + len(payload)
    return _ATTR.pack(length, kind) + payload + b"\x00" * (-length % 4)


def address_request(
    op: AddressOp, *, sequence: int, index: int, address: IPInterface, proto: int = 0, flags: int = 0
) -> bytes:
    """One request for `address` (with its prefix) on interface `index`, asking for an acknowledgement.

    `proto` is IFA_PROTO (omitted when 0), `flags` IFA_FLAGS (the 32-bit attribute; only on add/replace).
    """
    kind, extra = op.value
    packed = address.ip.packed
    family = AF_INET if address.version == 4 else AF_INET6
    attributes = _attribute(IFA_LOCAL, packed) if family == AF_INET else b""
    attributes += _attribute(IFA_ADDRESS, packed)
    if op is not AddressOp.DELETE:
        attributes += _attribute(IFA_FLAGS, struct.pack("=I", flags))
        if proto:
            attributes += _attribute(IFA_PROTO, bytes([proto]))
    body = _IFADDRMSG.pack(family, address.network.prefixlen, flags & 0xFF, 0, index) + attributes
    return _HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | extra, sequence, 0) + body


def inet_conf_request(*, sequence: int, index: int, values: Mapping[int, int]) -> bytes:
    """Set IPv4 settings of interface `index` (`IPV4_DEVCONF_*` index -> value); the others stay as they are."""
    conf = b"".join(_attribute(key, struct.pack("=I", value)) for key, value in sorted(values.items()))
    family = _attribute(AF_INET | NLA_F_NESTED, _attribute(IFLA_INET_CONF | NLA_F_NESTED, conf))
    body = _IFINFOMSG.pack(0, 0, index, 0, 0) + _attribute(IFLA_AF_SPEC | NLA_F_NESTED, family)
    return _HEADER.pack(_HEADER.size + len(body), RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, sequence, 0) + body


def acknowledgements(data: bytes) -> Iterator[tuple[int, int]]:
    """`(sequence, errno)` for each NLMSG_ERROR in a datagram from the kernel: errno 0 is success.

    Anything else (a truncated tail, other message types) is skipped: this socket asks only for acks.
    """
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, sequence, _port = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > len(data):
            return
        if kind == NLMSG_ERROR and length >= _HEADER.size + _ERROR.size:
            (error,) = _ERROR.unpack_from(data, offset + _HEADER.size)
            yield sequence, -error
        offset += (length + 3) & ~3
