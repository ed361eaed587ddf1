"""What one VRRP virtual router knows: its settings and its protocol state (RFC 9568 §6.1, §6.4).

Timers are deadlines (monotonic nanoseconds) stored in the state, never running objects: the actor asks
`machine.next_deadline(state)` when to wake up, and a simulation jumps straight to it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import attrs

from ffo.vrrp.packet import Family, IPAddress


class Role(enum.Enum):
    """RFC 9568 §6.4 states, by the names operators know (RFC 9568 renamed Master to Active)."""

    INITIALIZE = "INITIALIZE"
    BACKUP = "BACKUP"
    MASTER = "MASTER"


class TimerKind(enum.Enum):
    """The two timers of RFC 9568 §6.2: Adver_Timer (Active) and Active_Down_Timer (Backup)."""

    ADVER = "adver"
    MASTER_DOWN = "master_down"


def _in_range(low: int, high: int) -> list[Callable[[Any, attrs.Attribute[int], int], Any]]:
    return [attrs.validators.ge(low), attrs.validators.le(high)]


@attrs.frozen(kw_only=True)
class InstanceConfig:
    """The settings of one virtual router that the protocol needs (RFC 9568 §6.1)."""

    name: str
    vrid: int = attrs.field(validator=_in_range(1, 255))
    family: Family
    version: int = attrs.field(default=3, validator=attrs.validators.in_((2, 3)))
    # Priority: 255 = the address owner, 1..254 = backups (RFC 9568 §6.1).
    priority: int = attrs.field(default=100, validator=_in_range(1, 255))
    # Advertisement_Interval in centiseconds; v2 intervals are whole seconds (a multiple of 100).
    advert_interval_cs: int = attrs.field(default=100, validator=_in_range(1, 4095 * 100))
    preempt: bool = True
    # Accept_Mode is carried to the VIP side; the protocol itself does not depend on it.
    accept: bool = True
    # The interface's primary address: source of our advertisements and the tie-break key (§6.4.3).
    primary_address: IPAddress
    vips: tuple[IPAddress, ...]

    @property
    def is_address_owner(self) -> bool:
        return self.priority == 255


@attrs.frozen(kw_only=True)
class HeardAdvertisement:
    """The last advertisement a Backup accepted: who is master as far as we know, and when we heard it."""

    source: IPAddress
    priority: int
    interval_cs: int
    at_ns: int


class DownArmReason(enum.Enum):
    STARTUP = "startup"  # armed on entering Backup from Initialize
    ADVERTISEMENT = "advertisement"  # reset by an accepted advertisement
    PRIORITY_ZERO = "priority_zero"  # the master announced it is leaving
    HIGHER_PRIORITY = "higher_priority"  # we left Master for a better router


@attrs.frozen(kw_only=True)
class DownTimerArming:
    """Why the Master_Down timer holds its current deadline, so that its expiry can be explained."""

    reason: DownArmReason
    at_ns: int  # when it was armed
    duration_ns: int  # Master_Down_Interval, or Skew_Time after a priority-0 advertisement


@attrs.frozen(kw_only=True)
class InstanceState:
    config: InstanceConfig
    role: Role = Role.INITIALIZE
    # Current priority: the configured one unless a tracker changed it.
    priority: int
    # A Startup event was received and no Shutdown since (RFC 9568 §6.4.1).
    started: bool = False
    interface_up: bool = True
    # Active_Adver_Interval: learned from the master's advertisements in v3, fixed in v2 (§6.1).
    master_adver_interval_cs: int
    adver_deadline_ns: int | None = None
    down_deadline_ns: int | None = None
    down_armed: DownTimerArming | None = None
    last_heard: HeardAdvertisement | None = None

    @classmethod
    def initial(cls, config: InstanceConfig) -> InstanceState:
        return cls(config=config, priority=config.priority, master_adver_interval_cs=config.advert_interval_cs)

    def deadline_of(self, timer: TimerKind) -> int | None:
        return self.adver_deadline_ns if timer is TimerKind.ADVER else self.down_deadline_ns
