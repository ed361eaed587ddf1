"""The two steady-state steps, computed without a pass through the state machine (pure).

At 200 virtual routers and 10 ms intervals a node makes 20,000 steps a second, and in a stable cluster
almost every one of them is a repeat of the step before it for the same router:

- a Master's Adver_Timer fires (RFC 9568 §6.4.3): send an advertisement, restart the timer;
- a Backup hears the same master's same advertisement (§6.4.2): reset the Master_Down timer.

`ffo.vrrp.record` already argues why such steps form a run: within it nothing changes but times, and what a
step stores in the state (the timer deadlines, when and what the master was last heard) depends only on the
step's own time. So the outcome of the next repeat is the outcome of the last one with the times moved, and a
`Repeat` computes it directly: the state (`state_at`) and the step the recorder keeps (`step_at`), each a
few field assignments instead of a screen, a table lookup, a handler and several `attrs.evolve` calls.

A repeat is never guessed. `recognise` looks at a step the machine itself just made and returns its
`Repeat` only when computing that very step here gives exactly the machine's state and effects; the node
then takes the fast path for the following identical inputs (same timer kind in the same role and priority,
or the same advertisement from the same source), and goes back to the machine for anything else. The
machine stays the only place that decides (`ffo.vrrp.machine`'s Rule 1); tests/vrrp/test_steady.py feeds
random input sequences to a node with and without these paths and requires identical states, actions and
records, step by step.
"""

from __future__ import annotations

import attrs

from ffo.vrrp.effects import Effect, SendAdvertisement, SetTimer
from ffo.vrrp.inputs import AdvertisementReceived, Input, TimerExpired
from ffo.vrrp.packet import Advertisement, IPAddress
from ffo.vrrp.record import Step
from ffo.vrrp.state import DownArmReason, DownTimerArming, HeardAdvertisement, InstanceState, Role, TimerKind
from ffo.vrrp.timers import cs_to_ns

__all__ = ["AdverTimerRepeat", "AdvertisementRepeat", "Repeat", "recognise"]

_ADVER, _MASTER_DOWN = TimerKind.ADVER, TimerKind.MASTER_DOWN


@attrs.frozen(kw_only=True)
class AdverTimerRepeat:
    """A Master's Adver_Timer firing again: the same advertisement, the timer restarted one interval on."""

    period_ns: int
    """Advertisement_Interval: the next repeat is due this long after this one."""
    send: SendAdvertisement
    """The advertisement effect, the same at every repeat (priority and interval do not change in a run)."""

    def state_at(self, base: InstanceState, now_ns: int) -> InstanceState:
        """The state after the repeat that fired at `now_ns`, from the state before any repeat of the run."""
        return attrs.evolve(base, adver_deadline_ns=now_ns + self.period_ns)

    def step_at(self, now_ns: int, due_ns: int) -> Step:
        """The step the machine would have made: the timer due at `due_ns` fired at `now_ns`."""
        deadline = now_ns + self.period_ns
        event = TimerExpired(timer=_ADVER, deadline_ns=due_ns, fired_ns=now_ns)
        return Step(now_ns=now_ns, input=event, effects=(self.send, SetTimer(timer=_ADVER, deadline_ns=deadline)))


@attrs.frozen(kw_only=True)
class AdvertisementRepeat:
    """A Backup hearing `advertisement` from `source` again: Master_Down_Timer re-armed for the same time."""

    received: AdvertisementReceived
    """The input, the same at every repeat."""
    period_ns: int
    """Master_Down_Interval as the machine computed it (from our priority and the learned interval): the
    timer is due this long after the repeat."""
    interval_cs: int
    """Active_Adver_Interval, learned from the advertisement (v3) or kept (v2)."""
    source: IPAddress = attrs.field(init=False)
    advertisement: Advertisement = attrs.field(init=False)
    """The input's two fields, kept apart to compare a received packet with them at the least cost."""

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "source", self.received.source)
        object.__setattr__(self, "advertisement", self.received.advertisement)

    def state_at(self, base: InstanceState, now_ns: int) -> InstanceState:
        """The state after the repeat heard at `now_ns`, from the state before any repeat of the run."""
        advert = self.received.advertisement
        heard = HeardAdvertisement(
            source=self.received.source, priority=advert.priority, interval_cs=advert.interval_cs, at_ns=now_ns
        )
        arming = DownTimerArming(reason=DownArmReason.ADVERTISEMENT, at_ns=now_ns, duration_ns=self.period_ns)
        return attrs.evolve(
            base,
            master_adver_interval_cs=self.interval_cs,
            last_heard=heard,
            down_deadline_ns=now_ns + self.period_ns,
            down_armed=arming,
        )

    def step_at(self, now_ns: int, due_ns: int) -> Step:
        """The step the machine would have made on hearing it at `now_ns` (`due_ns`: for timers only)."""
        set_timer = SetTimer(timer=_MASTER_DOWN, deadline_ns=now_ns + self.period_ns)
        return Step(now_ns=now_ns, input=self.received, effects=(set_timer,))


Repeat = AdverTimerRepeat | AdvertisementRepeat


def recognise(
    before: InstanceState, event: Input, now_ns: int, after: InstanceState, effects: tuple[Effect, ...]
) -> Repeat | None:
    """The repeat of the step the machine just made, if it is one computed here exactly; else None."""
    candidate = _candidate(before, event, now_ns, after, effects)
    if candidate is None:
        return None
    due_ns = event.deadline_ns if isinstance(event, TimerExpired) else now_ns
    if candidate.state_at(before, now_ns) != after:
        return None
    if candidate.step_at(now_ns, due_ns) != Step(now_ns=now_ns, input=event, effects=effects):
        return None
    return candidate


def _candidate(
    before: InstanceState, event: Input, now_ns: int, after: InstanceState, effects: tuple[Effect, ...]
) -> Repeat | None:
    if before.role is not after.role or len(effects) not in (1, 2):
        return None
    if isinstance(event, TimerExpired):
        if event.timer is _ADVER and before.role is Role.MASTER and isinstance(effects[0], SendAdvertisement):
            return AdverTimerRepeat(period_ns=cs_to_ns(before.config.advert_interval_cs), send=effects[0])
        return None
    if isinstance(event, AdvertisementReceived) and before.role is Role.BACKUP:
        # Priority 0 also re-arms the timer alone, for Skew_Time: a leaving master is not a steady state.
        if event.advertisement.priority == 0 or not isinstance(effects[0], SetTimer):
            return None
        return AdvertisementRepeat(
            received=event,
            period_ns=effects[0].deadline_ns - now_ns,
            interval_cs=after.master_adver_interval_cs,
        )
    return None
