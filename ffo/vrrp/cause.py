"""Why a transition happened, as structured data, and the sentence a person reads in a postmortem.

A cause is data first (kind, peer, priorities, times, intervals) so that the event log, `ffo why` and the
cluster view can reason about it; `render` turns it into one sentence such as
"no advertisement from 192.0.2.11 for 361.2 ms > Master_Down_Interval 360.9 ms (timer fired 0.2 ms late)".
"""

from __future__ import annotations

import enum

import attrs

from ffo.vrrp.packet import IPAddress
from ffo.vrrp.timers import format_ns


class CauseKind(enum.Enum):
    STARTUP = "startup"  # Initialize -> Backup (RFC 9568 §6.4.1)
    STARTUP_ADDRESS_OWNER = "startup_address_owner"  # Initialize -> Master at priority 255 (§6.4.1)
    MASTER_DOWN = "master_down"  # Backup -> Master: no advertisement within Master_Down_Interval
    NO_MASTER_AT_STARTUP = "no_master_at_startup"  # Backup -> Master: nothing heard since start
    MASTER_LEFT = "master_left"  # Backup -> Master: Skew_Time after a priority-0 advertisement
    PREEMPTED = "preempted"  # Backup -> Master: the master's priority is lower than ours (preempt on)
    HIGHER_PRIORITY = "higher_priority"  # Master -> Backup (§6.4.3)
    EQUAL_PRIORITY_HIGHER_ADDRESS = "equal_priority_higher_address"  # Master -> Backup, tie-break
    SHUTDOWN = "shutdown"  # -> Initialize
    INTERFACE_DOWN = "interface_down"  # -> Initialize
    INTERFACE_UP = "interface_up"  # Initialize -> Backup/Master


@attrs.frozen(kw_only=True)
class Cause:
    kind: CauseKind
    peer: IPAddress | None = None
    peer_priority: int | None = None
    local_priority: int | None = None
    interval_cs: int | None = None
    # When the peer was last heard from, and how long the down timer waited.
    last_heard_ns: int | None = None
    down_interval_ns: int | None = None
    # The timer that fired: when it was due and when it ran.
    deadline_ns: int | None = None
    fired_ns: int | None = None


def _lateness(cause: Cause) -> str:
    if cause.deadline_ns is None or cause.fired_ns is None:
        return ""
    return f" (timer fired {format_ns(cause.fired_ns - cause.deadline_ns)} late)"


def render(cause: Cause) -> str:
    """One sentence, from the structured cause alone."""
    kind = cause.kind
    peer = str(cause.peer) if cause.peer is not None else "?"
    if kind is CauseKind.MASTER_DOWN and cause.last_heard_ns is not None and cause.fired_ns is not None:
        silent = format_ns(cause.fired_ns - cause.last_heard_ns)
        bound = format_ns(cause.down_interval_ns or 0)
        return f"no advertisement from {peer} for {silent} ≥ Master_Down_Interval {bound}{_lateness(cause)}"
    if kind is CauseKind.NO_MASTER_AT_STARTUP:
        bound = format_ns(cause.down_interval_ns or 0)
        return f"no master heard within Master_Down_Interval {bound} of starting{_lateness(cause)}"
    if kind is CauseKind.MASTER_LEFT:
        skew = format_ns(cause.down_interval_ns or 0)
        return f"master {peer} announced priority 0 (leaving); took over after Skew_Time {skew}{_lateness(cause)}"
    if kind is CauseKind.PREEMPTED:
        return (
            f"master {peer} advertises priority {cause.peer_priority} < our {cause.local_priority} "
            f"and preemption is on; took over after Master_Down_Interval{_lateness(cause)}"
        )
    if kind is CauseKind.HIGHER_PRIORITY:
        return f"advertisement from {peer} with priority {cause.peer_priority} > our {cause.local_priority}"
    if kind is CauseKind.EQUAL_PRIORITY_HIGHER_ADDRESS:
        return (
            f"advertisement from {peer} with equal priority {cause.peer_priority} "
            "and a higher primary address (tie-break)"
        )
    if kind is CauseKind.STARTUP_ADDRESS_OWNER:
        return "started as the address owner (priority 255)"
    if kind is CauseKind.STARTUP:
        return f"started with priority {cause.local_priority}; waiting for a master"
    if kind is CauseKind.SHUTDOWN:
        return "shutdown requested"
    if kind is CauseKind.INTERFACE_DOWN:
        return "interface went down"
    return "interface came up"
