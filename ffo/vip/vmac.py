"""The VRRP virtual MAC interface: names, addresses and the settings of one (pure).

RFC 9568 §7.3: the virtual router answers for its VIPs from 00-00-5E-00-01-{VRID} (IPv4) or
00-00-5E-00-02-{VRID} (IPv6), so that a takeover moves only the switches' MAC tables and hosts' neighbour
caches stay right. Linux cannot give one interface a second MAC for some addresses only, so ffo does what
keepalived's `use_vmac` does: a macvlan on the parent interface carrying the virtual MAC, created by the
master and holding the VIPs, deleted on release.

Choices, with keepalived's defaults where it has one:
- name `vrrp.<VRID>` for IPv4 and `vrrp6.<VRID>` for IPv6 (the same VRID may serve both families on one
  interface: RFC 9568 §1 makes them separate routers, so they need separate interfaces);
- macvlan mode `private` (keepalived's default): the macvlan never hears its siblings on the same parent;
  `bridge` is available for setups where local containers must reach the VIP;
- IPv6 address generation mode `none`: the vmac gets no link-local of its own. Two nodes share the vmac's
  MAC, so an EUI-64 link-local derived from it would be the same on both and fail DAD after a split brain;
  neighbour advertisements are sourced from the parent's link-local instead.
- the interface alias `VMAC_ALIAS` marks a macvlan as ffo's, so reconciliation removes only ffo's;
- IPv4 settings, keepalived's plus one: on the parent `arp_ignore = 1` and `arp_filter = 1`, on the vmac
  `arp_ignore = 1`, `accept_local = 1`, `rp_filter = 0`, `promote_secondaries = 1`, and (ffo only) on the
  parent `arp_announce = 2`. Measured here: Linux answers ARP for any local address on any interface, so
  without `arp_ignore` the parent answers a request for a VIP with the physical MAC before the vmac does,
  and the asker keeps the physical MAC; and when the node itself sends from a VIP (an ICMP error, a reply
  routed out of the parent), the parent's ARP request names the VIP as its sender with the physical MAC,
  and every host that hears it moves the VIP back to the physical MAC, unless `arp_announce = 2` makes it
  name the parent's own address. RFC 9568 §8.1.2 wants the virtual MAC, "not ... its physical MAC
  address". IPv6 needs nothing: Linux answers a neighbour solicitation only on the interface that holds
  the address. The parent's settings stay when the vmac goes (keepalived restores them when its last vmac
  on the parent goes: a refinement).
"""

from __future__ import annotations

import enum
from typing import Final

import attrs

from ffo.config import InstanceSettings
from ffo.vip.rtmsg import (
    IPV4_DEVCONF_ACCEPT_LOCAL,
    IPV4_DEVCONF_ARP_ANNOUNCE,
    IPV4_DEVCONF_ARP_IGNORE,
    IPV4_DEVCONF_ARPFILTER,
    IPV4_DEVCONF_PROMOTE_SECONDARIES,
    IPV4_DEVCONF_RP_FILTER,
)
from ffo.vrrp.packet import Family

__all__ = [
    "PARENT_IPV4_CONF",
    "VMAC_ALIAS",
    "VMAC_IPV4_CONF",
    "KernelLink",
    "MacvlanMode",
    "VmacSpec",
    "vmac_mac",
    "vmac_name",
]

VMAC_ALIAS: Final = "ffo vmac"
"""`IFLA_IFALIAS` of every macvlan ffo creates: what `reconcile_vmacs` recognises as its own."""


PARENT_IPV4_CONF: Final = {IPV4_DEVCONF_ARP_IGNORE: 1, IPV4_DEVCONF_ARPFILTER: 1, IPV4_DEVCONF_ARP_ANNOUNCE: 2}
"""An IPv4 vmac's parent: answer ARP only for its own addresses, and ask from its own address."""
VMAC_IPV4_CONF: Final = {
    IPV4_DEVCONF_ARP_IGNORE: 1,
    IPV4_DEVCONF_ACCEPT_LOCAL: 1,
    IPV4_DEVCONF_RP_FILTER: 0,
    IPV4_DEVCONF_PROMOTE_SECONDARIES: 1,
}
"""An IPv4 vmac: answer ARP only for its VIPs; hear other nodes' adverts (from our own VMAC) on it."""


class MacvlanMode(enum.Enum):
    """The macvlan modes a vmac may use (values as pyroute2 and `ip link` spell them)."""

    PRIVATE = "private"
    BRIDGE = "bridge"


def vmac_mac(vrid: int, family: Family) -> str:
    """00:00:5e:00:01:VRID for IPv4, 00:00:5e:00:02:VRID for IPv6 (RFC 9568 §7.3)."""
    if not 1 <= vrid <= 255:
        raise ValueError(f"VRID {vrid} is not in 1..255")
    return f"00:00:5e:00:{1 if family == Family.IPV4 else 2:02x}:{vrid:02x}"


def vmac_name(vrid: int, family: Family) -> str:
    """The default interface name: `vrrp.5` (IPv4) or `vrrp6.5` (IPv6); at most 9 of Linux's 15 characters."""
    return f"vrrp{'' if family == Family.IPV4 else '6'}.{vrid}"


@attrs.frozen(kw_only=True)
class VmacSpec:
    """One virtual MAC interface: a macvlan named `name` on `parent` with the VRRP MAC of (vrid, family)."""

    name: str
    parent: str
    vrid: int = attrs.field(validator=[attrs.validators.ge(1), attrs.validators.le(255)])
    family: Family
    mode: MacvlanMode = MacvlanMode.PRIVATE

    @property
    def mac(self) -> str:
        return vmac_mac(self.vrid, self.family)

    @classmethod
    def for_instance(cls, settings: InstanceSettings, *, mode: MacvlanMode = MacvlanMode.PRIVATE) -> VmacSpec:
        """The vmac of a `use_vmac = true` instance: default name, on the instance's interface."""
        return cls(
            name=vmac_name(settings.vrid, settings.family),
            parent=settings.interface,
            vrid=settings.vrid,
            family=settings.family,
            mode=mode,
        )


@attrs.frozen(kw_only=True)
class KernelLink:
    """The parts of one link (`RTM_NEWLINK` in a dump) that tell whether it is a vmac ffo made."""

    name: str
    index: int
    kind: str | None
    mac: str | None
    parent_index: int | None
    alias: str | None
    up: bool
    mode: str | None = None

    @property
    def ours(self) -> bool:
        return self.kind == "macvlan" and self.alias == VMAC_ALIAS

    def matches(self, spec: VmacSpec, parent_index: int | None) -> bool:
        """It is the macvlan `spec` asks for: ours, same MAC, same parent, same mode."""
        return (
            self.ours
            and (self.mac or "").lower() == spec.mac
            and self.parent_index == parent_index
            and self.mode in (None, spec.mode.value)
        )
