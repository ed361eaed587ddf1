"""The VRRP state machine for one virtual router: `step(state, input, now) -> (state, effects)`.

Theory of operation
-------------------
Rule 1: everything that decides a transition lives in this file (the timer arithmetic is in `timers.py`).
Rule 2: the machine does no I/O and reads no clock: `now` (monotonic nanoseconds) is an argument, timers are
deadlines kept in the state, and what must happen in the world comes back as effects (`effects.py`).

The transitions are the table `TRANSITIONS`, one handler per (state, input type), each citing the section of
RFC 9568 (which obsoletes RFC 5798 and renames Master to Active) it implements. A pair missing from the table
changes nothing and yields `Dropped(IGNORED_IN_STATE)`: `step` is total and never raises for any state and
input. Checks that apply in every state (VRID, version, family, stale timers) run first, in `_screen`.

Entering a state runs that state's entry actions (`_enter_master`, `_enter_backup`, `_enter_initialize`),
whose first effect is `Transitioned` with a structured cause, so the event log can write the transition
before its effects are carried out.

Deviations and choices, each deliberate:
- RFC 9568 §6.4.3: a Master that discards a lower-priority advertisement sends its own at once so that the
  other router yields quickly and bridges relearn the virtual MAC. We do the same for an equal-priority
  advertisement from a lower address (the same "otherwise" branch).
- A Master whose priority is changed by a tracker advertises the new priority at once instead of at the
  next Adver_Timer: backups learn it one interval sooner; nothing in the RFC forbids it.
- Interface down takes the router to Initialize (RFC 9568 has no Fault state); interface up replays the
  Startup event if the router was started.
- VRRPv2 (RFC 3768): the interval is not learned; an advertisement with another interval is discarded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ffo.vrrp import timers
from ffo.vrrp.cause import Cause, CauseKind
from ffo.vrrp.effects import (
    AcquireVips,
    AnnounceVips,
    CancelTimer,
    Dropped,
    DropReason,
    Effect,
    ReleaseVips,
    SendAdvertisement,
    SetTimer,
    Transitioned,
)
from ffo.vrrp.inputs import (
    AdvertisementReceived,
    Input,
    InterfaceChanged,
    PriorityChanged,
    ShutdownRequested,
    Started,
    TimerExpired,
)
from ffo.vrrp.packet import Family
from ffo.vrrp.state import (
    DownArmReason,
    DownTimerArming,
    HeardAdvertisement,
    InstanceState,
    Role,
    TimerKind,
)

Outcome = tuple[InstanceState, tuple[Effect, ...]]
Handler = Callable[[InstanceState, Any, int], Outcome]


def step(state: InstanceState, event: Input, now: int) -> Outcome:
    """Apply one input at monotonic time `now`; return the new state and the effects to carry out."""
    rejection = _screen(state, event)
    if rejection is not None:
        return state, (rejection,)
    handler = TRANSITIONS.get((state.role, type(event)))
    if handler is None:
        detail = f"{type(event).__name__} in {state.role.value}"
        return state, (Dropped(reason=DropReason.IGNORED_IN_STATE, detail=detail),)
    return handler(state, event, now)


def next_deadline(state: InstanceState) -> int | None:
    """When the actor must call `step` with a `TimerExpired`, or None when no timer runs."""
    deadlines = [d for d in (state.adver_deadline_ns, state.down_deadline_ns) if d is not None]
    return min(deadlines) if deadlines else None


def due_timer(state: InstanceState) -> TimerExpired | None:
    """The timer input that is due first (its `fired_ns` is left equal to the deadline for the caller)."""
    best: TimerExpired | None = None
    for timer in (TimerKind.MASTER_DOWN, TimerKind.ADVER):
        deadline = state.deadline_of(timer)
        if deadline is not None and (best is None or deadline < best.deadline_ns):
            best = TimerExpired(timer=timer, deadline_ns=deadline, fired_ns=deadline)
    return best


def down_interval_ns(state: InstanceState) -> int:
    """Master_Down_Interval for this router now (RFC 9568 §6.1)."""
    return timers.master_down_interval_ns(state.priority, state.master_adver_interval_cs, state.config.version)


def skew_ns(state: InstanceState) -> int:
    return timers.skew_time_ns(state.priority, state.master_adver_interval_cs, state.config.version)


# --- checks common to every state (RFC 9568 §7.1 semantic checks; the codec did the syntactic ones) ---


def _screen(state: InstanceState, event: Input) -> Dropped | None:
    if isinstance(event, AdvertisementReceived):
        return _screen_advertisement(state, event)
    if isinstance(event, TimerExpired) and state.deadline_of(event.timer) != event.deadline_ns:
        return Dropped(reason=DropReason.STALE_TIMER, detail=f"{event.timer.value} at {event.deadline_ns}")
    if isinstance(event, PriorityChanged) and state.config.is_address_owner:
        return Dropped(reason=DropReason.OWNER_PRIORITY_FIXED, detail=f"ignored priority {event.priority}")
    return None


def _screen_advertisement(state: InstanceState, event: AdvertisementReceived) -> Dropped | None:
    config = state.config
    advert = event.advertisement
    if advert.vrid != config.vrid:
        return Dropped(reason=DropReason.WRONG_VRID, detail=f"vrid {advert.vrid} from {event.source}")
    if advert.version != config.version:
        return Dropped(reason=DropReason.WRONG_VERSION, detail=f"version {advert.version} from {event.source}")
    source_family = Family.IPV4 if event.source.version == 4 else Family.IPV6
    if source_family is not config.family:
        return Dropped(reason=DropReason.WRONG_FAMILY, detail=f"from {event.source}")
    if event.source == config.primary_address:
        return Dropped(reason=DropReason.OWN_ADVERTISEMENT, detail=str(event.source))
    if config.version == 2 and advert.interval_cs != config.advert_interval_cs:
        # RFC 3768 §7.1: the receiver MUST discard an advertisement whose interval differs from its own.
        detail = f"{advert.interval_cs // 100}s from {event.source}, configured {config.advert_interval_cs // 100}s"
        return Dropped(reason=DropReason.INTERVAL_MISMATCH, detail=detail)
    if state.role is Role.INITIALIZE:
        return Dropped(reason=DropReason.NOT_RUNNING, detail=f"from {event.source}")
    return None


# --- entry actions, by target state ---


def _transition(state: InstanceState, to_role: Role, cause: Cause) -> Transitioned:
    return Transitioned(from_role=state.role, to_role=to_role, cause=cause)


def _enter_master(state: InstanceState, now: int, cause: Cause) -> Outcome:
    """RFC 9568 §6.4.1/§6.4.2: advertise, take and announce the VIPs, start Adver_Timer, become Active."""
    config = state.config
    effects: list[Effect] = [_transition(state, Role.MASTER, cause)]
    if state.down_deadline_ns is not None:
        effects.append(CancelTimer(timer=TimerKind.MASTER_DOWN))
    deadline = now + timers.cs_to_ns(config.advert_interval_cs)
    effects += [
        SendAdvertisement(priority=state.priority, interval_cs=config.advert_interval_cs),
        AcquireVips(vips=config.vips, accept=config.accept or config.is_address_owner),
        AnnounceVips(vips=config.vips),
        SetTimer(timer=TimerKind.ADVER, deadline_ns=deadline),
    ]
    new_state = attrs.evolve(
        state,
        role=Role.MASTER,
        adver_deadline_ns=deadline,
        down_deadline_ns=None,
        down_armed=None,
        master_adver_interval_cs=config.advert_interval_cs,
    )
    return new_state, tuple(effects)


def _enter_backup(state: InstanceState, now: int, cause: Cause, interval_cs: int, arming: DownArmReason) -> Outcome:
    """RFC 9568 §6.4.1/§6.4.3: learn the interval, arm Master_Down_Timer, become Backup."""
    effects: list[Effect] = [_transition(state, Role.BACKUP, cause)]
    if state.role is Role.MASTER:
        effects += [CancelTimer(timer=TimerKind.ADVER), ReleaseVips(vips=state.config.vips)]
    learning = attrs.evolve(state, role=Role.BACKUP, adver_deadline_ns=None, master_adver_interval_cs=interval_cs)
    armed, set_timer = _arm_down_timer(learning, now, down_interval_ns(learning), arming)
    return armed, (*effects, set_timer)


def _enter_initialize(state: InstanceState, cause: Cause, *, say_goodbye: bool) -> Outcome:
    """RFC 9568 §6.4.2/§6.4.3 Shutdown: cancel timers, a Master sends priority 0 and gives up the VIPs."""
    effects: list[Effect] = [_transition(state, Role.INITIALIZE, cause)]
    if state.role is Role.MASTER:
        effects.append(CancelTimer(timer=TimerKind.ADVER))
        if say_goodbye:
            effects.append(SendAdvertisement(priority=0, interval_cs=state.config.advert_interval_cs))
        effects.append(ReleaseVips(vips=state.config.vips))
    elif state.role is Role.BACKUP:
        effects.append(CancelTimer(timer=TimerKind.MASTER_DOWN))
    new_state = attrs.evolve(
        state,
        role=Role.INITIALIZE,
        adver_deadline_ns=None,
        down_deadline_ns=None,
        down_armed=None,
        last_heard=None,
    )
    return new_state, tuple(effects)


def _arm_down_timer(
    state: InstanceState, now: int, duration_ns: int, reason: DownArmReason
) -> tuple[InstanceState, SetTimer]:
    deadline = now + duration_ns
    arming = DownTimerArming(reason=reason, at_ns=now, duration_ns=duration_ns)
    new_state = attrs.evolve(state, down_deadline_ns=deadline, down_armed=arming)
    return new_state, SetTimer(timer=TimerKind.MASTER_DOWN, deadline_ns=deadline)


def _startup(state: InstanceState, now: int, kind: CauseKind) -> Outcome:
    """RFC 9568 §6.4.1: the address owner becomes Active at once; everyone else waits as Backup."""
    if state.config.is_address_owner:
        cause = Cause(kind=CauseKind.STARTUP_ADDRESS_OWNER, local_priority=state.priority)
        if kind is CauseKind.INTERFACE_UP:
            cause = attrs.evolve(cause, kind=kind)
        return _enter_master(state, now, cause)
    interval = state.config.advert_interval_cs
    reset = attrs.evolve(state, master_adver_interval_cs=interval, last_heard=None)
    cause = Cause(
        kind=kind,
        local_priority=state.priority,
        interval_cs=interval,
        down_interval_ns=down_interval_ns(reset),
    )
    return _enter_backup(reset, now, cause, interval, DownArmReason.STARTUP)


# --- handlers: one per (state, input) pair ---


def _initialize_started(state: InstanceState, event: Started, now: int) -> Outcome:
    """§6.4.1 Startup event."""
    if state.started:
        return state, (Dropped(reason=DropReason.IGNORED_IN_STATE, detail="already started"),)
    started = attrs.evolve(state, started=True)
    if not state.interface_up:
        return started, ()
    return _startup(started, now, CauseKind.STARTUP)


def _initialize_shutdown(state: InstanceState, event: ShutdownRequested, now: int) -> Outcome:
    return attrs.evolve(state, started=False), ()


def _initialize_interface(state: InstanceState, event: InterfaceChanged, now: int) -> Outcome:
    updated = attrs.evolve(state, interface_up=event.up)
    if event.up and state.started and not state.interface_up:
        return _startup(updated, now, CauseKind.INTERFACE_UP)
    return updated, ()


def _running_shutdown(state: InstanceState, event: ShutdownRequested, now: int) -> Outcome:
    """§6.4.2/§6.4.3 Shutdown: a Master sends priority 0 so that Backups wait only Skew_Time."""
    new_state, effects = _enter_initialize(state, Cause(kind=CauseKind.SHUTDOWN), say_goodbye=True)
    return attrs.evolve(new_state, started=False), effects


def _running_interface(state: InstanceState, event: InterfaceChanged, now: int) -> Outcome:
    if event.up:
        return attrs.evolve(state, interface_up=True), ()
    new_state, effects = _enter_initialize(state, Cause(kind=CauseKind.INTERFACE_DOWN), say_goodbye=False)
    return attrs.evolve(new_state, interface_up=False), effects


def _any_priority(state: InstanceState, event: PriorityChanged, now: int) -> Outcome:
    """A Backup's new priority takes effect at the next advertisement (its Skew_Time is recomputed then)."""
    return attrs.evolve(state, priority=event.priority), ()


def _master_priority(state: InstanceState, event: PriorityChanged, now: int) -> Outcome:
    """A Master advertises its new priority at once, so Backups with preemption can act on it."""
    changed = attrs.evolve(state, priority=event.priority)
    return _advertise(changed, now, SendAdvertisement(priority=event.priority, interval_cs=_interval(state)))


def _backup_timer(state: InstanceState, event: TimerExpired, now: int) -> Outcome:
    """§6.4.2: Master_Down_Timer fired: become Active."""
    return _enter_master(state, now, _down_timer_cause(state, event))


def _backup_advertisement(state: InstanceState, event: AdvertisementReceived, now: int) -> Outcome:
    """§6.4.2: priority 0 -> wait Skew_Time; a good enough master -> learn its interval, reset the timer."""
    advert = event.advertisement
    heard = HeardAdvertisement(source=event.source, priority=advert.priority, interval_cs=advert.interval_cs, at_ns=now)
    if advert.priority == 0:
        armed, set_timer = _arm_down_timer(
            attrs.evolve(state, last_heard=heard), now, skew_ns(state), DownArmReason.PRIORITY_ZERO
        )
        return armed, (set_timer,)
    if not state.config.preempt or advert.priority >= state.priority:
        interval = advert.interval_cs if state.config.version == 3 else state.master_adver_interval_cs
        learned = attrs.evolve(state, master_adver_interval_cs=interval, last_heard=heard)
        armed, set_timer = _arm_down_timer(learned, now, down_interval_ns(learned), DownArmReason.ADVERTISEMENT)
        return armed, (set_timer,)
    detail = f"priority {advert.priority} < {state.priority} from {event.source} (preempt)"
    return attrs.evolve(state, last_heard=heard), (Dropped(reason=DropReason.LOWER_PRIORITY, detail=detail),)


def _master_timer(state: InstanceState, event: TimerExpired, now: int) -> Outcome:
    """§6.4.3: Adver_Timer fired: advertise and restart it."""
    return _advertise(state, now, SendAdvertisement(priority=state.priority, interval_cs=_interval(state)))


def _master_advertisement(state: InstanceState, event: AdvertisementReceived, now: int) -> Outcome:
    """§6.4.3: yield to a better router; answer priority 0 and worse routers with our own advertisement."""
    advert = event.advertisement
    ours = SendAdvertisement(priority=state.priority, interval_cs=_interval(state))
    if advert.priority == 0:
        return _advertise(state, now, ours)
    better = advert.priority > state.priority
    tie_won = advert.priority == state.priority and int(event.source) > int(state.config.primary_address)
    if not (better or tie_won):
        return _advertise(state, now, ours)
    kind = CauseKind.HIGHER_PRIORITY if better else CauseKind.EQUAL_PRIORITY_HIGHER_ADDRESS
    cause = Cause(
        kind=kind,
        peer=event.source,
        peer_priority=advert.priority,
        local_priority=state.priority,
        interval_cs=advert.interval_cs,
    )
    interval = advert.interval_cs if state.config.version == 3 else state.master_adver_interval_cs
    heard = HeardAdvertisement(source=event.source, priority=advert.priority, interval_cs=advert.interval_cs, at_ns=now)
    return _enter_backup(attrs.evolve(state, last_heard=heard), now, cause, interval, DownArmReason.HIGHER_PRIORITY)


# --- helpers ---


def _interval(state: InstanceState) -> int:
    return state.config.advert_interval_cs


def _advertise(state: InstanceState, now: int, advert: SendAdvertisement) -> Outcome:
    deadline = now + timers.cs_to_ns(_interval(state))
    restarted = attrs.evolve(state, adver_deadline_ns=deadline)
    return restarted, (advert, SetTimer(timer=TimerKind.ADVER, deadline_ns=deadline))


def _down_timer_cause(state: InstanceState, event: TimerExpired) -> Cause:
    """Explain a Master_Down_Timer expiry from what armed it and what was heard since."""
    arming = state.down_armed
    heard = state.last_heard
    base = Cause(
        kind=CauseKind.NO_MASTER_AT_STARTUP,
        local_priority=state.priority,
        interval_cs=state.master_adver_interval_cs,
        down_interval_ns=arming.duration_ns if arming else None,
        deadline_ns=event.deadline_ns,
        fired_ns=event.fired_ns,
    )
    if arming is None or heard is None:
        return base
    if arming.reason is DownArmReason.PRIORITY_ZERO:
        kind = CauseKind.MASTER_LEFT
    elif heard.at_ns > arming.at_ns:
        # Heard since the timer was armed, yet it was not reset: that master is worse than us (preemption).
        kind = CauseKind.PREEMPTED
    else:
        kind = CauseKind.MASTER_DOWN
    return attrs.evolve(base, kind=kind, peer=heard.source, peer_priority=heard.priority, last_heard_ns=heard.at_ns)


TRANSITIONS: dict[tuple[Role, type[Input]], Handler] = {
    (Role.INITIALIZE, Started): _initialize_started,
    (Role.INITIALIZE, ShutdownRequested): _initialize_shutdown,
    (Role.INITIALIZE, InterfaceChanged): _initialize_interface,
    (Role.INITIALIZE, PriorityChanged): _any_priority,
    (Role.BACKUP, ShutdownRequested): _running_shutdown,
    (Role.BACKUP, InterfaceChanged): _running_interface,
    (Role.BACKUP, PriorityChanged): _any_priority,
    (Role.BACKUP, TimerExpired): _backup_timer,
    (Role.BACKUP, AdvertisementReceived): _backup_advertisement,
    (Role.MASTER, ShutdownRequested): _running_shutdown,
    (Role.MASTER, InterfaceChanged): _running_interface,
    (Role.MASTER, PriorityChanged): _master_priority,
    (Role.MASTER, TimerExpired): _master_timer,
    (Role.MASTER, AdvertisementReceived): _master_advertisement,
}
"""(state, input) -> handler. Pairs not listed (Started while running, a timer in Initialize, an
advertisement in Initialize, screened earlier) change nothing."""
