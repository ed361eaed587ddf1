"""Fixtures for the raw-socket tests: one three-node lab per module, and sockets opened inside its nodes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ffo.lab import Lab, netns_unavailable
from ffo.net import VrrpSocket
from ffo.vrrp.packet import Family
from tests.lab.support import PREFIX, no_leftover_namespaces, require_netns

__all__ = ["lab", "no_leftover_namespaces", "open_socket", "require_netns"]

OpenSocket = Callable[..., VrrpSocket]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """n1, n2, n3 on one bridge, IPv4 and IPv6 (link-local ready)."""
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with Lab(PREFIX, nodes=3, ipv6=True) as built:
        built.wait_ipv6_ready()
        yield built


@pytest.fixture
def open_socket(lab: Lab) -> Iterator[OpenSocket]:
    """`open_socket(node, family, **kw)`: ffo's socket on the node's eth0, closed when the test ends."""
    opened: list[VrrpSocket] = []

    def open_(node: str, family: Family, **kw: object) -> VrrpSocket:
        with lab.inside(node):
            sock = VrrpSocket.open(lab.interface(node), family, node=node, **kw)  # type: ignore[arg-type]
        opened.append(sock)
        return sock

    yield open_
    for sock in opened:
        sock.close()
