"""Desired VIPs versus the kernel's addresses: what to add and what to remove (pure).

This is the whole decision of reconciliation, kept out of the netlink edge so that it is tested without a
kernel. The edge (`ffo.vip.netlink`) dumps the addresses, calls `plan_addresses`, and carries the plan out,
removals first (for IPv6, an address with another prefix must go before the wanted one can be added).

The rules, in order:

1. A desired VIP the kernel has exactly (interface, address and prefix), usable, is `present`: nothing to do.
   That holds even if someone else added it: ffo does not take over an address it did not add.
2. A desired VIP the kernel has but cannot use (IPv6 still tentative in DAD, or DAD failed: adding
   `IFA_F_NODAD` to an existing tentative address leaves it tentative, measured on Linux 6.18) is removed
   and added again with `IFA_F_NODAD`.
3. A desired IPv6 VIP whose address the kernel has on that interface with another prefix: that address is
   removed (the VIP claims its address; IPv6 keys addresses without the prefix), then the VIP is added.
4. Any other address that is ffo's (tagged with `FFO_ADDR_PROTO`, or named by the caller as `claimable`)
   and not desired is removed: a VIP left by a crashed actor, or by an older config.
5. Everything else on the interface is left alone: the node's own addresses, link-locals, other daemons'.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ffo.vip.model import KernelAddress, Vip, sort_key
from ffo.vip.vmac import KernelLink, VmacSpec

__all__ = ["AddressPlan", "VmacPlan", "plan_addresses", "plan_vmacs"]


@attrs.frozen(kw_only=True)
class AddressPlan:
    """What to do, sorted by interface, family and address: removals run before additions."""

    add: tuple[Vip, ...] = ()
    remove: tuple[Vip, ...] = ()
    present: tuple[Vip, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.add and not self.remove


def plan_addresses(
    desired: Iterable[Vip], observed: Iterable[KernelAddress], *, claimable: Iterable[Vip] = ()
) -> AddressPlan:
    """The changes that make `observed` hold exactly the `desired` VIPs among the addresses ffo manages.

    `claimable`: VIPs ffo may remove even without its tag (matched by interface and address, any prefix):
    the VIPs of the configuration, for kernels older than 5.18 that do not keep `IFA_PROTO`.
    """
    wanted = set(desired)
    rows = list(observed)
    claim = {(vip.interface, vip.ip) for vip in claimable}
    by_vip = {row.vip: row for row in rows}
    add: set[Vip] = set()
    remove: set[Vip] = set()
    present: set[Vip] = set()
    for vip in wanted:
        row = by_vip.get(vip)
        if row is not None and row.usable:
            present.add(vip)
            continue
        if row is not None:
            remove.add(vip)  # rule 2: re-add without DAD
        add.add(vip)
        if vip.address.version == 6:
            remove.update(
                other.vip
                for other in rows
                if other.interface == vip.interface and other.address.ip == vip.ip and other.vip != vip
            )
    for row in rows:
        ours = row.tagged or (row.interface, row.address.ip) in claim
        if ours and row.vip not in wanted:
            remove.add(row.vip)
    return AddressPlan(
        add=tuple(sorted(add, key=sort_key)),
        remove=tuple(sorted(remove, key=sort_key)),
        present=tuple(sorted(present, key=sort_key)),
    )


@attrs.frozen(kw_only=True)
class VmacPlan:
    """Virtual MAC interfaces to create, to delete (ffo's, no longer wanted or wrong) and to leave as they are.

    `conflicts` are desired names held by a link ffo did not make: ffo never deletes those, it reports them.
    """

    create: tuple[VmacSpec, ...] = ()
    remove: tuple[str, ...] = ()
    present: tuple[VmacSpec, ...] = ()
    conflicts: tuple[VmacSpec, ...] = ()


def plan_vmacs(desired: Iterable[VmacSpec], observed: Iterable[KernelLink]) -> VmacPlan:
    """Make ffo's macvlans (alias `VMAC_ALIAS`) exactly the `desired` ones; other links are never touched.

    A macvlan of ffo's under a desired name but with another MAC, parent or mode is deleted and created again.
    """
    links = {link.name: link for link in observed}
    index_of = {link.name: link.index for link in links.values()}
    wanted = {spec.name: spec for spec in desired}
    create: list[VmacSpec] = []
    remove: list[str] = []
    present: list[VmacSpec] = []
    conflicts: list[VmacSpec] = []
    for name, spec in sorted(wanted.items()):
        link = links.get(name)
        if link is None:
            create.append(spec)
        elif link.matches(spec, index_of.get(spec.parent)):
            present.append(spec)
        elif link.ours:
            remove.append(name)
            create.append(spec)
        else:
            conflicts.append(spec)
    remove.extend(name for name, link in sorted(links.items()) if link.ours and name not in wanted)
    return VmacPlan(create=tuple(create), remove=tuple(remove), present=tuple(present), conflicts=tuple(conflicts))
