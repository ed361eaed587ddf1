"""A plain NETLINK_ROUTE socket for struct-built requests, on the asyncio loop (the fast edge of
`ffo.vip.netlink`).

One request is in flight at a time (a lock): VIPs of a takeover go one after the other, each ~30 µs, and a
reply can never be matched to the wrong request. Replies to an earlier request whose waiter was cancelled
are recognised by their sequence number and skipped. A refusal raises pyroute2's `NetlinkError` with the
errno, so the caller handles both paths alike.

The socket is opened in the caller's network namespace, or in `netns` (tests, tools) through pyroute2's
helper, which opens it in a forked child inside the namespace and passes the descriptor back (the child is
ended with SIGTERM: a SIGTERM handler that raises would unwind the child through the caller's code).
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Callable, Mapping

from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netns import create_socket

from ffo.vip.model import IPInterface
from ffo.vip.rtmsg import AddressOp, acknowledgements, address_request, inet_conf_request

__all__ = ["RouteSocket"]

_NETLINK_ROUTE = 0
_RECEIVE_BYTES = 65536


class RouteSocket:
    """Address and interface-setting requests built with `ffo.vip.rtmsg`, acknowledged one at a time."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        sock.bind((0, 0))
        self._sock = sock
        self._lock = asyncio.Lock()
        self._sequence = itertools.count(1)

    @classmethod
    def open(cls, *, netns: str | None = None) -> RouteSocket:
        if netns is None:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_ROUTE)
        else:  # flags=0: never create a namespace that is not there
            sock = create_socket(netns, socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_ROUTE, flags=0)
        return cls(sock)

    async def address(self, op: AddressOp, *, index: int, address: IPInterface, proto: int = 0, flags: int = 0) -> None:
        """Add, replace or delete one address; `NetlinkError(errno)` if the kernel refused."""
        await self._request(
            lambda sequence: address_request(
                op, sequence=sequence, index=index, address=address, proto=proto, flags=flags
            )
        )

    async def set_inet_conf(self, *, index: int, values: Mapping[int, int]) -> None:
        """Set IPv4 settings (`IPV4_DEVCONF_*`) of interface `index`; `NetlinkError(errno)` if refused."""
        await self._request(lambda sequence: inet_conf_request(sequence=sequence, index=index, values=values))

    async def _request(self, build: Callable[[int], bytes]) -> None:
        loop = asyncio.get_running_loop()
        async with self._lock:
            sequence = next(self._sequence)
            await loop.sock_sendall(self._sock, build(sequence))
            while True:
                data = await loop.sock_recv(self._sock, _RECEIVE_BYTES)
                for acked, error in acknowledgements(data):
                    if acked != sequence:
                        continue  # the late answer to a request whose waiter was cancelled
                    if error:
                        raise NetlinkError(error)
                    return

    def close(self) -> None:
        self._sock.close()
