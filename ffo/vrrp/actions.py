"""What the node's VRRP core asks its actor to do, in order (pure values; `ffo.vrrp.node` returns them).

The order is the write-ahead rule: a step's records (`Append`) come before its packets (`Send`) and VIP
commands (`VipCommand`), so the log holds a transition before anything it implies is done.
"""

from __future__ import annotations

import attrs

from ffo.vrrp.effects import AcquireVips, AnnounceVips, ReleaseVips
from ffo.vrrp.packet import Family, IPAddress
from ffo.vrrp.record import VrrpRecord

__all__ = ["Action", "Append", "Send", "VipCommand"]


@attrs.frozen(kw_only=True)
class Append:
    """Append this record to the VRRP actor's event stream (before the actions that follow it)."""

    record: VrrpRecord


@attrs.frozen(kw_only=True)
class Send:
    """Send this VRRP message (the IP payload) from `source` to `destination` on `interface`."""

    instance: str
    interface: str
    family: Family
    source: IPAddress
    destination: IPAddress
    payload: bytes
    priority: int


@attrs.frozen(kw_only=True)
class VipCommand:
    """Ask the VIP actor to add, remove or announce an instance's VIPs."""

    instance: str
    interface: str
    vrid: int
    family: Family
    effect: AcquireVips | ReleaseVips | AnnounceVips
    prefixes: tuple[int, ...]
    use_vmac: bool
    goodbye: tuple[Send, ...] = ()
    """With AcquireVips: the priority-0 advertisements to send on this instance's behalf if it dies."""


Action = Append | Send | VipCommand
