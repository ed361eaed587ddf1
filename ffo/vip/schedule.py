"""When a master announces its VIPs: keepalived's gratuitous ARP settings as a pure schedule.

keepalived (`vrrp_garp_master_*`, REFERENCE §1) sends `repeat` announcements at takeover, the same again
`delay` later (for switches and hosts that missed the first burst while a link was coming up), and, when
`refresh` is set, `refresh_repeat` more every `refresh` while master (users asked for it against ARP caches
that live for hours: keepalived#20). `interval` spaces the copies of one burst (`vrrp_garp_interval`; 0 sends
them back to back, keepalived's default).

The schedule is a generator of deadlines, not a loop with sleeps: the caller's event loop waits for each
deadline (so the VIP actor can cancel it on release, and tests can drive it with a fake clock), and one
`Announcement` means "send every VIP's frame once".
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections.abc import Iterator

import attrs

__all__ = ["AnnounceSettings", "Announcement", "Phase", "announcements"]

_NS_PER_S = 1_000_000_000


def _not_negative(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


@attrs.frozen(kw_only=True)
class AnnounceSettings:
    """keepalived's defaults: 5 back to back at takeover, 5 more after 5 s, no periodic refresh."""

    repeat: int = attrs.field(default=5, validator=_not_negative)
    """Announcements per burst at takeover and after `delay_ns` (`vrrp_garp_master_repeat`); 0 sends none."""
    interval_ns: int = attrs.field(default=0, validator=_not_negative)
    """Between the copies of one burst (`vrrp_garp_interval` / `vrrp_gna_interval`)."""
    delay_ns: int = attrs.field(default=5 * _NS_PER_S, validator=_not_negative)
    """From takeover to the second burst (`vrrp_garp_master_delay`); 0: no second burst."""
    refresh_ns: int = attrs.field(default=0, validator=_not_negative)
    """Period of the refresh bursts while master (`vrrp_garp_master_refresh`); 0: no refresh."""
    refresh_repeat: int = attrs.field(default=1, validator=_not_negative)
    """Announcements per refresh burst (`vrrp_garp_master_refresh_repeat`)."""

    @refresh_ns.validator
    def _refresh_after_burst(self, _attribute: object, value: int) -> None:
        if value and value <= max(self.refresh_repeat - 1, 0) * self.interval_ns:
            raise ValueError(f"refresh_ns {value} is not longer than one refresh burst")


class Phase(enum.Enum):
    TAKEOVER = "takeover"
    DELAYED = "delayed"
    REFRESH = "refresh"


@attrs.frozen(kw_only=True)
class Announcement:
    """Send every VIP's frame once, at `at_ns` (monotonic): copy `copy` (from 1) of a burst of `phase`."""

    at_ns: int
    phase: Phase
    copy: int


def _burst(at_ns: int, phase: Phase, count: int, interval_ns: int) -> Iterator[Announcement]:
    for index in range(count):
        yield Announcement(at_ns=at_ns + index * interval_ns, phase=phase, copy=index + 1)


def announcements(settings: AnnounceSettings, start_ns: int) -> Iterator[Announcement]:
    """Every announcement from a takeover at `start_ns`, in time order; endless when `refresh_ns` is set.

    At equal times the takeover and delayed bursts come before a refresh burst.
    """
    first = _burst(start_ns, Phase.TAKEOVER, settings.repeat, settings.interval_ns)
    streams = [first]
    if settings.delay_ns:
        streams.append(_burst(start_ns + settings.delay_ns, Phase.DELAYED, settings.repeat, settings.interval_ns))
    if settings.refresh_ns and settings.refresh_repeat:
        streams.append(
            itertools.chain.from_iterable(
                _burst(start_ns + k * settings.refresh_ns, Phase.REFRESH, settings.refresh_repeat, settings.interval_ns)
                for k in itertools.count(1)
            )
        )
    return heapq.merge(*streams, key=lambda item: item.at_ns)
