"""VIPs: what a node holds, how it gets them from the kernel, and how it tells the link (DESIGN §1, "vip").

Pure parts (no I/O): `model` (a VIP and the kernel's view of an address), `plan` (desired versus observed),
`vmac` (the VRRP virtual MAC interface), `results` and `events` (what an operation did), `frames` (gratuitous
ARP and unsolicited NA bytes) and `schedule` (when to announce). Edges: `netlink` (pyroute2, on asyncio) and
`ffo.net.announce` (the AF_PACKET sender).

`VipNetlink` and `LinkIdentity` are imported on first use, so that reading the event log (which needs the
event classes here) does not pay pyroute2's ~0.3 s import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ffo.vip.events import VipsAcquired, VipsReleased
from ffo.vip.frames import announcement_frames, gratuitous_arp, mac_bytes, mac_text, unsolicited_na
from ffo.vip.model import FFO_ADDR_PROTO, KernelAddress, Vip, parse_vip
from ffo.vip.plan import AddressPlan, VmacPlan, plan_addresses, plan_vmacs
from ffo.vip.results import LinkResult, Operation, VipError, VipResult
from ffo.vip.schedule import Announcement, AnnounceSettings, Phase, announcements
from ffo.vip.vmac import KernelLink, MacvlanMode, VmacSpec, vmac_mac, vmac_name

if TYPE_CHECKING:
    from ffo.vip.netlink import LinkIdentity, VipNetlink

__all__ = [
    "FFO_ADDR_PROTO",
    "AddressPlan",
    "AnnounceSettings",
    "Announcement",
    "KernelAddress",
    "KernelLink",
    "LinkIdentity",
    "LinkResult",
    "MacvlanMode",
    "Operation",
    "Phase",
    "Vip",
    "VipError",
    "VipNetlink",
    "VipResult",
    "VipsAcquired",
    "VipsReleased",
    "VmacPlan",
    "VmacSpec",
    "announcement_frames",
    "announcements",
    "gratuitous_arp",
    "mac_bytes",
    "mac_text",
    "parse_vip",
    "plan_addresses",
    "plan_vmacs",
    "unsolicited_na",
    "vmac_mac",
    "vmac_name",
]

_EDGE = frozenset({"LinkIdentity", "VipNetlink"})


def __getattr__(name: str) -> object:
    if name in _EDGE:
        return getattr(importlib.import_module("ffo.vip.netlink"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
