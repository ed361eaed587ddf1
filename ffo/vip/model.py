"""What a VIP is to the kernel, and what the kernel tells us it has (pure value types).

A VIP is an address *with its prefix* on a named interface, because that is the identity the kernel keeps:
for IPv4, `192.0.2.10/32` and `192.0.2.10/24` on one interface are two addresses; for IPv6 the address alone
is the key and a prefix change needs a delete and an add (measured: `replace` with another prefix length
keeps the old one). `Vip` is that identity; `KernelAddress` is one row of the kernel's address dump, with the
two things the plan needs besides the address: who put it there (`IFA_PROTO`) and whether it is usable yet
(an IPv6 address still in duplicate address detection cannot be used as a source or answer for anyone).

How ffo recognises its own addresses: it tags every VIP it adds with `IFA_PROTO = FFO_ADDR_PROTO` (Linux
≥ 5.18 keeps and reports the tag; `ip address show` prints it as `proto 0x66`). `reconcile` removes only
tagged addresses, or addresses the caller names as claimable (the VIPs of the config, for older kernels
that drop the tag), never anything else on the interface.
"""

from __future__ import annotations

import ipaddress
from typing import Final

import attrs

from ffo.vrrp.packet import Family

__all__ = [
    "FFO_ADDR_PROTO",
    "IFA_F_DADFAILED",
    "IFA_F_NODAD",
    "IFA_F_TENTATIVE",
    "IPInterface",
    "KernelAddress",
    "Vip",
    "parse_vip",
    "sort_key",
]

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
"""An address with its prefix length, as `ip address` shows it: `192.0.2.10/32`."""

FFO_ADDR_PROTO: Final = 0x66
"""ffo's `IFA_PROTO` tag ("f"). The kernel reserves 1..3 (loopback, RA, link-local); the rest is free."""

# Address flags from <linux/if_addr.h>.
IFA_F_NODAD: Final = 0x02
"""Skip duplicate address detection: a VIP is ours by election, and DAD would hold it ~1 s as tentative."""
IFA_F_DADFAILED: Final = 0x08
IFA_F_TENTATIVE: Final = 0x40


@attrs.frozen(kw_only=True)
class Vip:
    """One VIP on one interface: the address with its prefix, as the kernel keys it."""

    interface: str
    address: IPInterface

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return self.address.ip

    @property
    def prefix(self) -> int:
        return self.address.network.prefixlen

    @property
    def family(self) -> Family:
        return Family.IPV4 if self.address.version == 4 else Family.IPV6

    @property
    def text(self) -> str:
        """The address with its prefix (`192.0.2.10/32`): how events and `ip address` spell it."""
        return str(self.address)

    def __str__(self) -> str:
        return f"{self.address} on {self.interface}"


def parse_vip(interface: str, text: str) -> Vip:
    """`Vip` from `"192.0.2.10/24"` or `"2001:db8::10"` (host prefix when none is given)."""
    return Vip(interface=interface, address=ipaddress.ip_interface(text))


def sort_key(vip: Vip) -> tuple[str, int, int, int]:
    """A total order over VIPs of both families (ipaddress refuses to compare across versions)."""
    return (vip.interface, vip.address.version, int(vip.ip), vip.prefix)


@attrs.frozen(kw_only=True)
class KernelAddress:
    """One address the kernel reports (`RTM_NEWADDR` in a dump)."""

    interface: str
    index: int
    address: IPInterface
    proto: int = 0
    """`IFA_PROTO`: `FFO_ADDR_PROTO` when ffo added it; 0 when absent (someone else, or an older kernel)."""
    flags: int = 0
    """`IFA_FLAGS` (the 32-bit form; the 8-bit header field truncates them)."""

    @property
    def vip(self) -> Vip:
        return Vip(interface=self.interface, address=self.address)

    @property
    def tagged(self) -> bool:
        """ffo added it (its `IFA_PROTO` tag is ours)."""
        return self.proto == FFO_ADDR_PROTO

    @property
    def usable(self) -> bool:
        """The kernel uses it now: not an IPv6 address still in (or failed by) duplicate address detection."""
        return not self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)
