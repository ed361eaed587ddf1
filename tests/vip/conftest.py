"""Fixtures for the VIP tests: namespaces with a veth pair, skipped (with the reason) when not root."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import attrs
import pytest

from tests.vip.netns import Netns, veth


def _require_namespaces() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces, veth pairs and addresses (netns tests)")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's `ip` to create network namespaces")


@pytest.fixture
def netns() -> Iterator[Netns]:
    """One namespace with a veth pair `v0` (under test) and `v1`, both up; `v0` has 192.0.2.1/24."""
    _require_namespaces()
    ns = Netns()
    try:
        veth(ns, "v0", ns, "v1")
        ns.ip("address", "add", "192.0.2.1/24", "dev", "v0")
        yield ns
    finally:
        ns.delete()


@attrs.frozen
class Link:
    """Two namespaces joined by a veth: `a0` in `a` (the announcer) and `b0` in `b` (the listener)."""

    a: Netns
    b: Netns


@pytest.fixture
def link() -> Iterator[Link]:
    _require_namespaces()
    a = Netns()
    try:
        b = Netns()
        try:
            veth(a, "a0", b, "b0")
            a.ip("address", "add", "192.0.2.1/24", "dev", "a0")
            b.ip("address", "add", "192.0.2.2/24", "dev", "b0")
            a.ip("address", "add", "2001:db8::1/64", "dev", "a0")
            b.ip("address", "add", "2001:db8::2/64", "dev", "b0")
            yield Link(a=a, b=b)
        finally:
            b.delete()
    finally:
        a.delete()
