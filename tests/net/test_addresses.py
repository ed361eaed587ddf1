"""Interface addresses from a netlink dump (no privilege needed for loopback)."""

from __future__ import annotations

import ipaddress
import socket

from ffo.net import interface_addresses, primary_addresses


def test_loopback_has_its_primary_address_and_no_link_local() -> None:
    assert primary_addresses("lo") == (ipaddress.IPv4Address("127.0.0.1"), None)


def test_the_dump_filters_by_interface() -> None:
    index = socket.if_nametoindex("lo")
    listed = interface_addresses(index)
    assert listed and all(entry.ifindex == index for entry in listed)
    assert ipaddress.IPv4Address("127.0.0.1") in {entry.address for entry in listed}
