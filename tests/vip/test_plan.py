"""The reconciliation decision, without a kernel: table cases, then a property over random address sets."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from ffo.vip.model import FFO_ADDR_PROTO, IFA_F_DADFAILED, IFA_F_NODAD, IFA_F_TENTATIVE, KernelAddress, Vip, parse_vip
from ffo.vip.plan import AddressPlan, plan_addresses, plan_vmacs
from ffo.vip.vmac import VMAC_ALIAS, KernelLink, MacvlanMode, VmacSpec
from ffo.vrrp.packet import Family


def row(interface: str, text: str, *, proto: int = 0, flags: int = 0) -> KernelAddress:
    return KernelAddress(interface=interface, index=2, address=ipaddress.ip_interface(text), proto=proto, flags=flags)


def ours(interface: str, text: str, flags: int = 0) -> KernelAddress:
    return row(interface, text, proto=FFO_ADDR_PROTO, flags=flags)


A = parse_vip("eth0", "192.0.2.10/32")
B = parse_vip("eth0", "192.0.2.11/24")
C = parse_vip("eth0", "2001:db8::10/128")


def test_nothing_there_adds_everything_sorted_v4_before_v6() -> None:
    assert plan_addresses([C, B, A], []) == AddressPlan(add=(A, B, C))


def test_exact_and_usable_is_present_even_if_someone_else_added_it() -> None:
    observed = [ours("eth0", "192.0.2.10/32"), row("eth0", "192.0.2.11/24"), ours("eth0", "2001:db8::10/128", 0x80)]
    plan = plan_addresses([A, B, C], observed)
    assert plan.present == (A, B, C) and plan.empty


def test_stale_vips_of_ours_go_and_foreign_addresses_stay() -> None:
    observed = [
        ours("eth0", "192.0.2.99/32"),  # left by a crashed master
        row("eth0", "192.0.2.1/24"),  # the node's own address
        row("eth0", "fe80::1/64", proto=3),  # the kernel's link-local
        row("eth1", "198.51.100.1/24"),
        ours("vrrp.5", "203.0.113.5/32"),  # on a vmac
    ]
    plan = plan_addresses([A], observed)
    assert plan.add == (A,)
    assert plan.remove == (parse_vip("eth0", "192.0.2.99/32"), parse_vip("vrrp.5", "203.0.113.5/32"))


def test_claimable_untagged_addresses_go_too_whatever_their_prefix() -> None:
    observed = [row("eth0", "192.0.2.10/24"), row("eth0", "192.0.2.12/32")]
    plan = plan_addresses([], observed, claimable=[parse_vip("eth0", "192.0.2.10/32")])
    assert plan.remove == (parse_vip("eth0", "192.0.2.10/24"),)


def test_an_ipv4_vip_next_to_a_foreign_same_address_other_prefix() -> None:
    """IPv4 keys addresses with their prefix: both can exist, the foreign one is not ours to remove."""
    plan = plan_addresses([A], [row("eth0", "192.0.2.10/24")])
    assert plan == AddressPlan(add=(A,))


def test_ipv6_prefix_change_removes_the_old_one_first() -> None:
    wanted = parse_vip("eth0", "2001:db8::10/64")
    plan = plan_addresses([wanted], [row("eth0", "2001:db8::10/128")])
    assert plan.remove == (C,) and plan.add == (wanted,)


def test_tentative_or_failed_ipv6_is_added_again_without_dad() -> None:
    for flags in (IFA_F_TENTATIVE, IFA_F_DADFAILED | IFA_F_NODAD):
        plan = plan_addresses([C], [row("eth0", "2001:db8::10/128", flags=flags)])
        assert plan.remove == (C,) and plan.add == (C,) and plan.present == ()


def test_kernel_address_helpers() -> None:
    address = ours("eth0", "2001:db8::10/128", IFA_F_TENTATIVE)
    assert address.tagged and not address.usable and address.vip == C
    assert str(C) == "2001:db8::10/128 on eth0" and C.text == "2001:db8::10/128"
    assert (C.family, A.family, B.prefix) == (Family.IPV6, Family.IPV4, 24)


# -- property: carrying out the plan leaves exactly the desired VIPs among ffo's, and foreign ones alone ------

INTERFACES = st.sampled_from(["eth0", "eth1"])
ADDRESSES = st.one_of(
    st.integers(1, 6).map(lambda n: f"192.0.2.{n}"),
    st.integers(1, 6).map(lambda n: f"2001:db8::{n}"),
)
PREFIXES = st.sampled_from([None, 24, 64])


@st.composite
def vips(draw: st.DrawFn) -> Vip:
    text = draw(ADDRESSES)
    prefix = draw(PREFIXES)
    if prefix == 64 and "." in text:
        prefix = 24
    return parse_vip(draw(INTERFACES), text if prefix is None else f"{text}/{prefix}")


@st.composite
def kernel_rows(draw: st.DrawFn) -> KernelAddress:
    vip = draw(vips())
    proto = draw(st.sampled_from([0, FFO_ADDR_PROTO]))
    flags = draw(st.sampled_from([0, IFA_F_TENTATIVE])) if vip.address.version == 6 else 0
    return KernelAddress(interface=vip.interface, index=2, address=vip.address, proto=proto, flags=flags)


def kernel_key(vip: Vip) -> tuple[str, object, int | None]:
    """How the kernel keys an address: IPv4 with its prefix, IPv6 by the address alone."""
    return (vip.interface, vip.ip, vip.prefix if vip.address.version == 4 else None)


def apply(plan: AddressPlan, observed: list[KernelAddress]) -> dict[Vip, KernelAddress]:
    """The kernel's behaviour, as far as the plan relies on it: removals, then adds (tagged, no DAD)."""
    table = {address.vip: address for address in observed}
    for vip in plan.remove:
        table.pop(vip, None)
    for vip in plan.add:
        table[vip] = KernelAddress(interface=vip.interface, index=2, address=vip.address, proto=FFO_ADDR_PROTO)
    return table


@given(st.lists(vips(), max_size=6), st.lists(kernel_rows(), max_size=8))
def test_after_the_plan_ours_are_exactly_the_desired(desired: list[Vip], observed: list[KernelAddress]) -> None:
    unique = list({kernel_key(vip): vip for vip in desired}.values())  # a config names each address once
    rows = list({kernel_key(address.vip): address for address in observed}.values())  # as the kernel holds them
    plan = plan_addresses(unique, rows)
    after = apply(plan, rows)
    assert set(unique) <= after.keys()
    assert all(after[vip].usable for vip in unique)
    assert {vip for vip, address in after.items() if address.tagged} <= set(unique)
    claimed = {(vip.interface, vip.ip) for vip in unique if vip.address.version == 6}
    for address in rows:
        if not address.tagged and (address.interface, address.address.ip) not in claimed:
            assert address.vip in after  # foreign and not in the way of an IPv6 VIP: untouched
    assert set(plan.add).isdisjoint(plan.present)
    assert set(plan.remove).isdisjoint(plan.present)


# -- vmacs -------------------------------------------------------------------------------------------------------


def link(
    name: str,
    index: int,
    *,
    mac: str | None = None,
    parent: int | None = None,
    alias: str | None = VMAC_ALIAS,
    mode: str = "private",
    kind: str = "macvlan",
) -> KernelLink:
    return KernelLink(name=name, index=index, kind=kind, mac=mac, parent_index=parent, alias=alias, up=True, mode=mode)


ETH0 = link("eth0", 2, kind="veth", alias=None, mac="02:00:00:00:00:01")
SPEC5 = VmacSpec(name="vrrp.5", parent="eth0", vrid=5, family=Family.IPV4)


def test_vmac_plan_create_present_remove_conflict() -> None:
    spec6 = VmacSpec(name="vrrp6.5", parent="eth0", vrid=5, family=Family.IPV6)
    spec7 = VmacSpec(name="vrrp.7", parent="eth0", vrid=7, family=Family.IPV4)
    observed = [
        ETH0,
        link("vrrp.5", 5, mac="00:00:5e:00:01:05", parent=2),  # as wanted
        link("vrrp.9", 9, mac="00:00:5e:00:01:09", parent=2),  # ours, stale
        link("vrrp.7", 7, mac="02:11:22:33:44:55", parent=2, alias=None),  # somebody else's
        link("mv0", 8, mac="02:11:22:33:44:66", parent=2, alias=None),
    ]
    plan = plan_vmacs([SPEC5, spec6, spec7], observed)
    assert plan.present == (SPEC5,)
    assert plan.create == (spec6,)
    assert plan.remove == ("vrrp.9",)
    assert plan.conflicts == (spec7,)


def test_vmac_plan_recreates_ours_when_it_differs() -> None:
    for wrong in (
        link("vrrp.5", 5, mac="00:00:5e:00:01:06", parent=2),
        link("vrrp.5", 5, mac="00:00:5e:00:01:05", parent=3),
        link("vrrp.5", 5, mac="00:00:5e:00:01:05", parent=2, mode="bridge"),
    ):
        plan = plan_vmacs([SPEC5], [ETH0, wrong])
        assert plan.remove == ("vrrp.5",) and plan.create == (SPEC5,)
    bridge = VmacSpec(name="vrrp.5", parent="eth0", vrid=5, family=Family.IPV4, mode=MacvlanMode.BRIDGE)
    assert plan_vmacs([bridge], [ETH0, link("vrrp.5", 5, mac="00:00:5e:00:01:05", parent=2, mode="bridge")]).present
