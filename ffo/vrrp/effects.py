"""What the machine asks its actor to do: imperative effects, carried out in order.

The first effect of a transition is always `Transitioned`, so that an actor logging effects in order writes
the transition (with its cause) before carrying out anything it implies (write-ahead).
"""

from __future__ import annotations

import enum

import attrs

from ffo.vrrp.cause import Cause
from ffo.vrrp.packet import IPAddress
from ffo.vrrp.state import Role, TimerKind


@attrs.frozen(kw_only=True)
class Transitioned:
    from_role: Role
    to_role: Role
    cause: Cause


@attrs.frozen(kw_only=True)
class SendAdvertisement:
    """Send one advertisement with these fields; version, family and addresses come from the config."""

    priority: int
    interval_cs: int


@attrs.frozen(kw_only=True)
class SetTimer:
    timer: TimerKind
    deadline_ns: int


@attrs.frozen(kw_only=True)
class CancelTimer:
    timer: TimerKind


@attrs.frozen(kw_only=True)
class AcquireVips:
    vips: tuple[IPAddress, ...]
    accept: bool


@attrs.frozen(kw_only=True)
class ReleaseVips:
    vips: tuple[IPAddress, ...]


@attrs.frozen(kw_only=True)
class AnnounceVips:
    """Gratuitous ARP for IPv4 VIPs, unsolicited neighbour advertisements for IPv6 (RFC 9568 §6.4.1)."""

    vips: tuple[IPAddress, ...]


class DropReason(enum.Enum):
    """Why an input changed nothing. Counted per reason; the semantic checks of RFC 9568 §7.1."""

    WRONG_VRID = "wrong_vrid"
    WRONG_VERSION = "wrong_version"
    WRONG_FAMILY = "wrong_family"
    INTERVAL_MISMATCH = "interval_mismatch"  # VRRPv2 only (RFC 3768 §7.1)
    OWN_ADVERTISEMENT = "own_advertisement"
    LOWER_PRIORITY = "lower_priority"  # a Backup with preemption discards a worse master's advertisement
    NOT_RUNNING = "not_running"  # in Initialize
    STALE_TIMER = "stale_timer"  # cancelled or re-armed since it was scheduled
    OWNER_PRIORITY_FIXED = "owner_priority_fixed"
    IGNORED_IN_STATE = "ignored_in_state"


@attrs.frozen(kw_only=True)
class Dropped:
    reason: DropReason
    detail: str = ""


Effect = Transitioned | SendAdvertisement | SetTimer | CancelTimer | AcquireVips | ReleaseVips | AnnounceVips | Dropped
