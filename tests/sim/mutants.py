"""Deliberately broken state machines: the invariant checker must catch each of them.

Each mutant wraps the real `step` and changes one rule, the way a plausible bug would.
"""

from __future__ import annotations

import attrs

from ffo.vrrp import machine, timers
from ffo.vrrp.effects import Effect, SetTimer
from ffo.vrrp.inputs import AdvertisementReceived, Input
from ffo.vrrp.state import InstanceState, Role, TimerKind

Outcome = tuple[InstanceState, tuple[Effect, ...]]


def ignores_priority_zero(state: InstanceState, event: Input, now: int) -> Outcome:
    """A Backup that treats a priority-0 advertisement as noise and waits the full Master_Down_Interval."""
    if isinstance(event, AdvertisementReceived) and event.advertisement.priority == 0:
        return state, ()
    return machine.step(state, event, now)


def inverted_skew(state: InstanceState, event: Input, now: int) -> Outcome:
    """Skew_Time computed from Priority instead of (256 - Priority): lower priorities fire first."""
    new_state, effects = machine.step(state, event, now)
    if new_state.down_deadline_ns is None or new_state.down_deadline_ns == state.down_deadline_ns:
        return new_state, effects
    interval = new_state.master_adver_interval_cs
    right = timers.skew_time_ns(new_state.priority, interval, 3)
    wrong = new_state.priority * timers.cs_to_ns(interval) // 256
    deadline = new_state.down_deadline_ns - right + wrong
    fixed = tuple(
        SetTimer(timer=e.timer, deadline_ns=deadline)
        if isinstance(e, SetTimer) and e.timer is TimerKind.MASTER_DOWN
        else e
        for e in effects
    )
    return attrs.evolve(new_state, down_deadline_ns=deadline), fixed


def no_address_tie_break(state: InstanceState, event: Input, now: int) -> Outcome:
    """A Master that never yields to an equal-priority advertisement, whatever the sender's address."""
    if (
        state.role is Role.MASTER
        and isinstance(event, AdvertisementReceived)
        and event.advertisement.priority == state.priority
    ):
        return state, ()
    return machine.step(state, event, now)


MUTANTS = {
    "ignores_priority_zero": ignores_priority_zero,
    "inverted_skew": inverted_skew,
    "no_address_tie_break": no_address_tie_break,
}
