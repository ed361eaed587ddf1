"""Carrier changes of the node's interfaces, from netlink notifications: the VRRP actor's `InterfaceChanged`.

A router whose link is down must stop being master (RFC 9568 has no Fault state; ffo goes to Initialize and
releases its VIPs, `ffo.vrrp.machine`), and start again when the link returns. The kernel says so at once on
the ``RTMGRP_LINK`` multicast group of a ``NETLINK_ROUTE`` socket: an ``RTM_NEWLINK`` whose flags carry
``IFF_LOWER_UP`` (carrier) and ``IFF_UP`` (administratively up), or an ``RTM_DELLINK``. "Up" here means both:
a veth whose peer went down keeps ``IFF_UP`` but loses ``IFF_LOWER_UP``.

`parse_link_messages` is pure (bytes in, changes out); `LinkWatch` is the socket, registered with the asyncio
loop like the raw VRRP sockets. The kernel repeats RTM_NEWLINK for many reasons (MTU, statistics, promiscuity),
so `LinkWatch` reports a change only when an interface's up/down state differs from the last one it saw.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable, Iterator

import attrs

__all__ = ["LinkChange", "LinkWatch", "parse_link_messages"]

_NETLINK_ROUTE = 0
_RTMGRP_LINK = 0x1
_RTM_NEWLINK, _RTM_DELLINK, _RTM_GETLINK = 16, 17, 18
_NLMSG_DONE = 3
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_IFLA_IFNAME = 3
_IFF_UP, _IFF_LOWER_UP = 0x1, 0x10000
_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_RTATTR = struct.Struct("=HH")


@attrs.frozen(kw_only=True)
class LinkChange:
    interface: str
    index: int
    up: bool
    """Administratively up and with carrier (IFF_UP and IFF_LOWER_UP); False also for a deleted link."""


def _align(length: int) -> int:
    return (length + 3) & ~3


def _ifname(data: bytes, offset: int, end: int) -> str | None:
    while offset + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size or offset + length > end:
            return None
        if kind == _IFLA_IFNAME:
            return data[offset + _RTATTR.size : offset + length].split(b"\0", 1)[0].decode(errors="replace")
        offset += _align(length)
    return None


def parse_link_messages(data: bytes) -> Iterator[LinkChange]:
    """The link states in one netlink datagram (RTM_NEWLINK / RTM_DELLINK); anything else is skipped."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _sequence, _port = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            return
        body = offset + _NLMSGHDR.size
        if kind in (_RTM_NEWLINK, _RTM_DELLINK) and body + _IFINFOMSG.size <= offset + length:
            _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(data, body)
            name = _ifname(data, body + _IFINFOMSG.size, offset + length)
            if name is not None:
                up = kind == _RTM_NEWLINK and flags & (_IFF_UP | _IFF_LOWER_UP) == (_IFF_UP | _IFF_LOWER_UP)
                yield LinkChange(interface=name, index=index, up=up)
        offset += _align(length)


class LinkWatch:
    """Watches the carrier of the named interfaces; calls `on_change` for each real change."""

    def __init__(self, interfaces: set[str], on_change: Callable[[LinkChange], None]) -> None:
        self.interfaces = interfaces
        self._on_change = on_change
        self._state: dict[str, bool] = {}
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_ROUTE)
        self._sock.bind((0, _RTMGRP_LINK))
        self._sock.setblocking(False)
        self._loop: asyncio.AbstractEventLoop | None = None

    def current(self) -> dict[str, bool]:
        """The interfaces' states now (one RTM_GETLINK dump), also the baseline for later changes."""
        dump = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_ROUTE)
        try:
            request = _NLMSGHDR.pack(
                _NLMSGHDR.size + _IFINFOMSG.size, _RTM_GETLINK, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0
            ) + _IFINFOMSG.pack(0, 0, 0, 0, 0)
            dump.sendto(request, (0, 0))
            states: dict[str, bool] = {}
            while True:
                data = dump.recv(65536)
                for change in parse_link_messages(data):
                    states[change.interface] = change.up
                if _done(data):
                    break
        finally:
            dump.close()
        self._state.update({name: up for name, up in states.items() if name in self.interfaces})
        return {name: states.get(name, False) for name in self.interfaces}

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self._sock.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        while True:
            try:
                data = self._sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ENOBUFS: notifications were lost; the next dump or change sets things right
                self.current()
                return
            for change in parse_link_messages(data):
                if change.interface in self.interfaces and self._state.get(change.interface) != change.up:
                    self._state[change.interface] = change.up
                    self._on_change(change)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._loop = None
        self._sock.close()


def _done(data: bytes) -> bool:
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind = _NLMSGHDR.unpack_from(data, offset)[:2]
        if kind == _NLMSG_DONE:
            return True
        if length < _NLMSGHDR.size:
            return True
        offset += _align(length)
    return False
