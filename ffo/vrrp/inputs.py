"""What can happen to a virtual router: the inputs of `machine.step`, named in the past tense.

Each is a frozen value so that it can be logged, shipped and replayed as it was.
"""

from __future__ import annotations

import attrs

from ffo.vrrp.packet import Advertisement, IPAddress
from ffo.vrrp.state import TimerKind


@attrs.frozen(kw_only=True)
class Started:
    """The Startup event of RFC 9568 §6.4.1."""


@attrs.frozen(kw_only=True)
class ShutdownRequested:
    """The Shutdown event of RFC 9568 §6.4.2/§6.4.3 (the daemon stops or the instance is removed)."""


@attrs.frozen(kw_only=True)
class AdvertisementReceived:
    """A syntactically valid advertisement (the codec checked it) from `source`."""

    source: IPAddress
    advertisement: Advertisement


@attrs.frozen(kw_only=True)
class TimerExpired:
    """A timer fired. `deadline_ns` is when it was due, `fired_ns` when it actually ran: the lateness."""

    timer: TimerKind
    deadline_ns: int
    fired_ns: int

    @property
    def lateness_ns(self) -> int:
        return self.fired_ns - self.deadline_ns


@attrs.frozen(kw_only=True)
class PriorityChanged:
    """A tracker (or an operator) changed this router's priority. The address owner's 255 is fixed."""

    priority: int = attrs.field(validator=[attrs.validators.ge(1), attrs.validators.le(254)])
    reason: str = ""


@attrs.frozen(kw_only=True)
class InterfaceChanged:
    """The interface's carrier went down or up (from netlink)."""

    up: bool


Input = Started | ShutdownRequested | AdvertisementReceived | TimerExpired | PriorityChanged | InterfaceChanged
INPUT_TYPES: tuple[type[Input], ...] = (
    Started,
    ShutdownRequested,
    AdvertisementReceived,
    TimerExpired,
    PriorityChanged,
    InterfaceChanged,
)
