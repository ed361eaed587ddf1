"""What the VRRP actor asks of the VIP actor, over the bus (topic ``cmd.vip``).

A request names the instance, what to do with its VIPs and where, and the id of the VRRP record that decided
it (`cause`, ``vrrp:<seq>``), so that the VIP actor's own events point back to the transition and `ffo why`
can say what the node did because of it.

`goodbye` travels with an `ACQUIRE`: the priority-0 advertisements this instance would send on a clean
shutdown, already encoded. Should the VRRP actor die while master (SIGKILL, a crash), the VIP actor sends
them on its behalf and releases the VIPs, so that the backup takes over within Skew_Time instead of
3 x interval, and the VIPs are never on two nodes (issue 5, "beyond keepalived").
"""

from __future__ import annotations

import enum

import attrs

from ffo.bus.messages import message
from ffo.vrrp.packet import Family

VIP_COMMAND_TOPIC = "cmd.vip"


class VipAction(enum.Enum):
    ACQUIRE = "acquire"
    RELEASE = "release"
    ANNOUNCE = "announce"


@attrs.frozen(kw_only=True)
class GoodbyePacket:
    """One encoded VRRP message and where it goes: what a clean shutdown would have sent."""

    interface: str
    family: Family
    source: str
    destination: str
    payload: bytes


@message("vip.request", version=1)
@attrs.frozen(kw_only=True)
class VipRequest:
    instance: str
    action: VipAction
    interface: str
    vrid: int
    family: Family
    vips: tuple[str, ...]
    """With their prefix length: ``192.0.2.100/24``."""
    use_vmac: bool
    cause: str | None
    """The id of the VRRP record that decided this (``vrrp:57``)."""
    goodbye: tuple[GoodbyePacket, ...] = ()
