"""VipNetlink against a real kernel, in a namespace: adds, removes, reconciles, vmacs, and errors as values."""

from __future__ import annotations

import errno
import ipaddress
import subprocess
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ffo.clock import SystemClock
from ffo.vip import FFO_ADDR_PROTO, Operation, VmacSpec, parse_vip
from ffo.vip.netlink import VipNetlink
from ffo.vip.vmac import VMAC_ALIAS, MacvlanMode
from ffo.vrrp.packet import Family
from tests.vip.netns import Netns

pytestmark = [pytest.mark.netns, pytest.mark.asyncio]

V4 = parse_vip("v0", "192.0.2.100/32")
V4_24 = parse_vip("v0", "192.0.2.101/24")
V6 = parse_vip("v0", "2001:db8::100/128")


@pytest_asyncio.fixture(params=[True, False], ids=["fast", "pyroute2"])
async def kernel(netns: Netns, request: pytest.FixtureRequest) -> AsyncIterator[VipNetlink]:
    """Both address paths: struct-built requests (the default) and pyroute2's."""
    handle = await VipNetlink.open(clock=SystemClock(), netns=netns.name, fast=request.param)
    try:
        yield handle
    finally:
        handle.close()


def addresses(ns: Netns, interface: str = "v0") -> dict[str, dict[str, object]]:
    """`ip -j address` of one interface: address/prefix -> the kernel's row."""
    rows = ns.ip_json("address", "show", "dev", interface)
    return {f"{row['local']}/{row['prefixlen']}": row for row in rows[0]["addr_info"]} if rows else {}


async def test_acquire_adds_tagged_usable_vips_and_times_it(netns: Netns, kernel: VipNetlink) -> None:
    result = await kernel.acquire([V4, V4_24, V6])
    assert result.ok, result.errors
    assert result.operation is Operation.ACQUIRE
    assert result.added == (V4, V4_24, V6)
    assert result.netlink_ns > 0
    held = addresses(netns)
    assert {"192.0.2.100/32", "192.0.2.101/24", "2001:db8::100/128"} <= held.keys()
    ipv6 = held["2001:db8::100/128"]
    assert ipv6.get("nodad") is True
    assert not ipv6.get("tentative") and not ipv6.get("dadfailed")
    observed = {row.vip: row for row in await kernel.addresses()}
    assert all(observed[vip].proto == FFO_ADDR_PROTO for vip in (V4, V4_24, V6))
    assert observed[V6].usable


async def test_acquire_twice_and_release_twice_are_quiet(kernel: VipNetlink, netns: Netns) -> None:
    await kernel.acquire([V4, V6])
    again = await kernel.acquire([V4, V6])
    assert again.ok and again.added == () and again.unchanged == (V4, V6)
    assert again.held == (V4, V6)
    released = await kernel.release([V4, V6])
    assert released.ok and released.removed == (V4, V6)
    assert released.netlink_ns > 0
    assert not {"192.0.2.100/32", "2001:db8::100/128"} & addresses(netns).keys()
    twice = await kernel.release([V4, V6])
    assert twice.ok and twice.removed == () and twice.unchanged == (V4, V6)


async def test_missing_interface_is_an_error_value_not_an_exception(kernel: VipNetlink) -> None:
    ghost = parse_vip("ghost0", "192.0.2.200/32")
    result = await kernel.acquire([ghost, V4])
    assert result.added == (V4,)  # the other VIP still goes on
    (error,) = result.errors
    assert error.errno == errno.ENODEV
    assert error.vip == "192.0.2.200/32" and error.interface == "ghost0"
    assert "ghost0 does not exist" in error.reason and "ENODEV" in error.reason
    released = await kernel.release([ghost])
    assert released.ok and released.unchanged == (ghost,)  # not configured there: what release wants


async def test_reconcile_removes_stale_vips_only_and_adds_missing(netns: Netns, kernel: VipNetlink) -> None:
    stale = parse_vip("v0", "192.0.2.150/32")
    await kernel.acquire([stale, V4])  # tagged: as a crashed master's actor would have left them
    netns.ip("address", "add", "198.51.100.7/24", "dev", "v0")  # somebody else's
    netns.ip("address", "add", "192.0.2.160/32", "dev", "v0")  # a config VIP added by hand, untagged
    result = await kernel.reconcile([V4, V6])
    assert result.ok, result.errors
    assert result.operation is Operation.RECONCILE
    assert result.removed == (stale,)
    assert result.added == (V6,)
    assert result.unchanged == (V4,)
    held = addresses(netns)
    assert "192.0.2.150/32" not in held
    assert {"198.51.100.7/24", "192.0.2.1/24", "192.0.2.160/32", "192.0.2.100/32", "2001:db8::100/128"} <= held.keys()
    claimed = await kernel.reconcile([V4, V6], claimable=[parse_vip("v0", "192.0.2.160/32")])
    assert claimed.removed == (parse_vip("v0", "192.0.2.160/32"),)
    assert "198.51.100.7/24" in addresses(netns)
    settled = await kernel.reconcile([V4, V6])
    assert settled.added == () and settled.removed == () and settled.unchanged == (V4, V6)


async def test_reconcile_readds_a_tentative_ipv6_vip_without_dad(netns: Netns, kernel: VipNetlink) -> None:
    netns.sysctl("net.ipv6.conf.v0.accept_dad", "1")
    netns.sysctl("net.ipv6.conf.v0.dad_transmits", "50")  # keep it tentative for the whole test
    netns.ip("address", "add", "2001:db8::100/128", "dev", "v0")
    assert addresses(netns)["2001:db8::100/128"].get("tentative") is True
    result = await kernel.reconcile([V6])
    assert result.removed == (V6,) and result.added == (V6,)
    row = addresses(netns)["2001:db8::100/128"]
    assert row.get("nodad") is True and not row.get("tentative")


@pytest.mark.parametrize("family", [Family.IPV4, Family.IPV6])
async def test_vmac_is_created_with_the_vrrp_mac_and_removed(netns: Netns, kernel: VipNetlink, family: Family) -> None:
    spec = VmacSpec(name="vrrp.7" if family == Family.IPV4 else "vrrp6.7", parent="v0", vrid=7, family=family)
    created = await kernel.ensure_vmac(spec)
    assert created.ok and created.created, created.errors
    assert created.netlink_ns > 0 and created.index is not None
    (link,) = netns.ip_json("-d", "link", "show", "dev", spec.name)
    assert link["address"] == f"00:00:5e:00:0{1 if family == Family.IPV4 else 2}:07"
    assert link["ifalias"] == VMAC_ALIAS
    assert "UP" in link["flags"]
    assert link["linkinfo"]["info_kind"] == "macvlan"
    assert link["linkinfo"]["info_data"]["mode"] == "private"
    assert link["link"] == "v0"
    vip = parse_vip(spec.name, "2001:db8::7/128" if family == Family.IPV6 else "192.0.2.7/32")
    assert (await kernel.acquire([vip])).added == (vip,)
    if family == Family.IPV6:  # no link-local of its own: it would be the same on every node
        assert not any(
            row["scope"] == "link" for row in netns.ip_json("address", "show", "dev", spec.name)[0]["addr_info"]
        )
    again = await kernel.ensure_vmac(spec)
    assert again.ok and not again.created and again.index == created.index
    removed = await kernel.remove_vmac(spec.name)
    assert removed.ok and removed.removed
    assert netns.ip("link", "show", "dev", spec.name, check=False) == ""
    gone = await kernel.remove_vmac(spec.name)
    assert gone.ok and not gone.removed


def sysctl(ns: Netns, key: str) -> str:
    done = subprocess.run(
        ["ip", "netns", "exec", ns.name, "sysctl", "-n", key], check=True, capture_output=True, text=True, timeout=10
    )
    return done.stdout.strip()


async def test_ipv4_vmac_arp_settings(netns: Netns, kernel: VipNetlink) -> None:
    """keepalived's settings on the vmac and its parent, plus arp_announce (see ffo.vip.vmac); nothing else."""
    untouched = ("rp_filter", "forwarding", "accept_local", "proxy_arp")
    before = {key: sysctl(netns, f"net.ipv4.conf.v0.{key}") for key in untouched}
    assert (await kernel.ensure_vmac(VmacSpec(name="vrrp.7", parent="v0", vrid=7, family=Family.IPV4))).ok
    parent = {key: sysctl(netns, f"net.ipv4.conf.v0.{key}") for key in ("arp_ignore", "arp_filter", "arp_announce")}
    assert parent == {"arp_ignore": "1", "arp_filter": "1", "arp_announce": "2"}
    assert {key: sysctl(netns, f"net.ipv4.conf.v0.{key}") for key in untouched} == before
    keys = ("arp_ignore", "accept_local", "rp_filter", "promote_secondaries")
    vmac = {key: sysctl(netns, f"net.ipv4.conf.vrrp/7.{key}") for key in keys}
    assert vmac == {"arp_ignore": "1", "accept_local": "1", "rp_filter": "0", "promote_secondaries": "1"}


async def test_vmac_errors_and_foreign_links(netns: Netns, kernel: VipNetlink) -> None:
    orphan = VmacSpec(name="vrrp.9", parent="ghost0", vrid=9, family=Family.IPV4)
    result = await kernel.ensure_vmac(orphan)
    (error,) = result.errors
    assert error.errno == errno.ENODEV and "ghost0 does not exist" in error.reason
    netns.ip("link", "add", "link", "v0", "name", "vrrp.8", "type", "macvlan", "mode", "bridge")
    taken = await kernel.ensure_vmac(VmacSpec(name="vrrp.8", parent="v0", vrid=8, family=Family.IPV4))
    assert taken.errors[0].errno == errno.EEXIST
    refused = await kernel.remove_vmac("vrrp.8")
    assert refused.errors and not refused.removed
    assert netns.ip("link", "show", "dev", "vrrp.8")  # still there


async def test_reconcile_vmacs_removes_only_ffos_stale_ones(netns: Netns, kernel: VipNetlink) -> None:
    stale = VmacSpec(name="vrrp.3", parent="v0", vrid=3, family=Family.IPV4)
    wanted = VmacSpec(name="vrrp.4", parent="v0", vrid=4, family=Family.IPV4, mode=MacvlanMode.BRIDGE)
    assert (await kernel.ensure_vmac(stale)).created
    netns.ip("link", "add", "link", "v0", "name", "mv0", "type", "macvlan")
    results = await kernel.reconcile_vmacs([wanted])
    assert [(r.name, r.removed, r.created) for r in results] == [("vrrp.3", True, False), ("vrrp.4", False, True)]
    names = {row["ifname"] for row in netns.ip_json("link", "show")}
    assert "vrrp.3" not in names and {"vrrp.4", "mv0", "v0"} <= names


async def test_link_identity(netns: Netns, kernel: VipNetlink) -> None:
    identity = await kernel.link_identity("v0")
    assert identity is not None
    assert identity.mac == netns.mac("v0")
    assert identity.link_local is not None and identity.link_local.is_link_local
    assert identity.link_local in {
        ipaddress.IPv6Address(row["local"])
        for row in netns.ip_json("address", "show", "dev", "v0")[0]["addr_info"]
        if row["family"] == "inet6"
    }
    assert await kernel.link_identity("ghost0") is None
