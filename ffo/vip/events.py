"""What the VIP actor publishes and logs: VIPs acquired and released, with how long each step took (pure).

Events, so past participles (STYLE convention 6). They carry the netlink time and the announcement time
separately, because the failover budget splits that way (DESIGN §1: advert-to-GARP crosses the bus and
netlink), and the errors per address, because a partly failed takeover must say which VIP is missing and why.
VIPs travel as strings with their prefix (`192.0.2.10/32`): what `ip address` shows and people search for.
"""

from __future__ import annotations

import attrs

from ffo.bus.messages import message
from ffo.eventlog.describe import Described, describer
from ffo.vip.results import VipError, VipResult
from ffo.vrrp.timers import format_ns

__all__ = ["VipsAcquired", "VipsReleased"]


@message("vip.acquired", version=1)
@attrs.frozen(kw_only=True)
class VipsAcquired:
    """The node now holds `vips` on `interface` (added now or already there), and announced them."""

    instance: str
    vips: tuple[str, ...]
    interface: str
    netlink_ns: int
    announce_ns: int
    errors: tuple[VipError, ...] = ()

    @classmethod
    def from_result(cls, *, instance: str, interface: str, result: VipResult, announce_ns: int) -> VipsAcquired:
        return cls(
            instance=instance,
            vips=tuple(vip.text for vip in result.held),
            interface=interface,
            netlink_ns=result.netlink_ns,
            announce_ns=announce_ns,
            errors=result.errors,
        )


@message("vip.released", version=1)
@attrs.frozen(kw_only=True)
class VipsReleased:
    """The node no longer holds `vips` on `interface` (removed now or already gone).

    `announce_ns` is 0 unless something was sent on release (nothing is today: the new master announces).
    """

    instance: str
    vips: tuple[str, ...]
    interface: str
    netlink_ns: int
    announce_ns: int = 0
    errors: tuple[VipError, ...] = ()

    @classmethod
    def from_result(cls, *, instance: str, interface: str, result: VipResult, announce_ns: int = 0) -> VipsReleased:
        return cls(
            instance=instance,
            vips=tuple(vip.text for vip in result.removed + result.unchanged),
            interface=interface,
            netlink_ns=result.netlink_ns,
            announce_ns=announce_ns,
            errors=result.errors,
        )


def _errors_sentence(errors: tuple[VipError, ...]) -> str | None:
    if not errors:
        return None
    return "; ".join(f"{error.vip or error.interface}: {error.reason}" for error in errors)


def _timing(netlink_ns: int, announce_ns: int) -> str:
    parts = [f"netlink {format_ns(netlink_ns)}"]
    if announce_ns:
        parts.append(f"announce {format_ns(announce_ns)}")
    return ", ".join(parts)


@describer(VipsAcquired)
def _acquired(event: VipsAcquired) -> Described:
    vips = ", ".join(event.vips) or "no VIPs"
    failed = f"; {len(event.errors)} failed" if event.errors else ""
    summary = f"acquired {vips} on {event.interface} ({_timing(event.netlink_ns, event.announce_ns)}){failed}"
    return Described(instance=event.instance, summary=summary, cause=_errors_sentence(event.errors))


@describer(VipsReleased)
def _released(event: VipsReleased) -> Described:
    vips = ", ".join(event.vips) or "no VIPs"
    failed = f"; {len(event.errors)} failed" if event.errors else ""
    summary = f"released {vips} on {event.interface} ({_timing(event.netlink_ns, event.announce_ns)}){failed}"
    return Described(instance=event.instance, summary=summary, cause=_errors_sentence(event.errors))
