"""`ffo why`: one transition explained in a paragraph, with the evidence from the event stream (pure).

The question after an incident is "why did it fail over?" (keepalived issues #570, #1938, #1731). The
transition's structured cause says what the machine decided; this module adds what the node had seen: the
advertisements it heard since its previous transition (from whom, at what priority, how often, the last
one), how long it then heard nothing and how many advertisements that is, which timer fired, when it was
armed and why, how late it fired, priority changes and their reasons, and what the node did next.

The state just before the transition is rebuilt by replaying the stream up to it (`ffo.vrrp.replay`), so the
down timer's arming is the machine's own record, not a guess.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Sequence

import attrs

from ffo.vrrp import machine, timers
from ffo.vrrp.cause import render
from ffo.vrrp.effects import AcquireVips, AnnounceVips, Effect, ReleaseVips, SendAdvertisement
from ffo.vrrp.inputs import (
    AdvertisementReceived,
    Input,
    InterfaceChanged,
    PriorityChanged,
    ShutdownRequested,
    Started,
    TimerExpired,
)
from ffo.vrrp.record import InputApplied, InstanceConfigured, PeriodicRun, Step, TransitionMade, VrrpRecord
from ffo.vrrp.replay import Replayer
from ffo.vrrp.state import DownArmReason, InstanceState, Role, TimerKind

__all__ = ["Logged", "NotATransitionError", "explain", "last_transition"]


@attrs.frozen(kw_only=True)
class Logged:
    """A VRRP record as read from the log, with the log's timestamps (for converting step times to wall time)."""

    id: str
    mono_ns: int
    ts_ns: int
    record: VrrpRecord

    def wall_of(self, mono_ns: int) -> int:
        """A monotonic time of this node as wall-clock ns, through this record's pair of readings."""
        return mono_ns + (self.ts_ns - self.mono_ns)


class NotATransitionError(LookupError):
    """The event asked about is not in the stream, or is not a transition."""


def last_transition(logged: Sequence[Logged]) -> str | None:
    """The id of the latest transition in `logged`, for `ffo why --last`."""
    for item in reversed(logged):
        if isinstance(item.record, TransitionMade):
            return item.id
    return None


@attrs.define
class _Heard:
    """Advertisements of one (source, priority, interval) seen in the window."""

    source: str
    priority: int
    interval_cs: int
    count: int = 0
    first_ns: int = 0
    last_ns: int = 0

    def add(self, count: int, first_ns: int, last_ns: int) -> None:
        if self.count == 0:
            self.first_ns = first_ns
        self.count += count
        self.last_ns = last_ns


def explain(logged: Sequence[Logged], target_id: str, related: Sequence[str] = ()) -> list[str]:
    """Paragraphs explaining the transition `target_id`; `related` are descriptions of records elsewhere
    (other actors' streams) that name it as their cause, such as the VIP actor's netlink work."""
    index = next((i for i, item in enumerate(logged) if item.id == target_id), None)
    if index is None:
        raise NotATransitionError(f"{target_id}: no such event in this log")
    target = logged[index]
    if not isinstance(target.record, TransitionMade):
        raise NotATransitionError(f"{target_id}: a {type(target.record).__name__}, not a transition")
    record = target.record
    before = _state_before(logged[:index], record.instance)
    window = _window(logged[:index], record.instance)
    paragraphs = [_headline(target, record)]
    seen = _seen(window, target, record.step, before)
    if seen:
        paragraphs.append(seen)
    timer = _timer(target, record.step, before)
    if timer:
        paragraphs.append(timer)
    paragraphs.append(_priorities(window, target, record, before))
    paragraphs.append(_actions(record.step.effects, related))
    return paragraphs


def _state_before(previous: Sequence[Logged], instance: str) -> InstanceState | None:
    replayer = Replayer(step=machine.step)
    for item in previous:
        if item.record.instance == instance:
            replayer.feed(item.id, item.record)
    return replayer.states.get(instance)


def _window(previous: Sequence[Logged], instance: str) -> list[Logged]:
    """The instance's records since its previous transition (or since it was configured)."""
    window: list[Logged] = []
    for item in reversed(previous):
        if item.record.instance != instance:
            continue
        if isinstance(item.record, TransitionMade | InstanceConfigured):
            break
        window.append(item)
    window.reverse()
    return window


def _clock(wall_ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(wall_ns / 1e9, tz=datetime.UTC)
    return moment.strftime("%H:%M:%S.%f")[:-3]


def _stamp(wall_ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(wall_ns / 1e9, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _headline(target: Logged, record: TransitionMade) -> str:
    change = record.transition
    when = _stamp(target.wall_of(record.step.now_ns))
    return (
        f"{target.id} at {when}: instance {record.instance} went {change.from_role.value} -> "
        f"{change.to_role.value} because {render(change.cause)}."
    )


def _steps(item: Logged) -> Iterator[tuple[Step, int]]:
    """The steps a record holds, each with how many identical ones it stands for."""
    record = item.record
    if isinstance(record, TransitionMade | InputApplied):
        yield record.step, 1
    elif isinstance(record, PeriodicRun):
        yield record.first, 1
        if record.count > 1:
            yield record.last, record.count - 1


def _seen(window: Sequence[Logged], target: Logged, step: Step, before: InstanceState | None) -> str:
    heard: dict[tuple[str, int, int], _Heard] = {}
    for item in window:  # a run comes as its first step and its last (standing for the rest)
        for each, count in _steps(item):
            if isinstance(each.input, AdvertisementReceived):
                _hear(heard, each.input, count, each.now_ns, each.now_ns)
    if isinstance(step.input, AdvertisementReceived):
        _hear(heard, step.input, 1, step.now_ns, step.now_ns)
    if not heard:
        if before is not None and before.role is Role.BACKUP:
            return "Since it became BACKUP it had heard no advertisement at all."
        return ""
    sentences = []
    for entry in sorted(heard.values(), key=lambda h: h.first_ns):
        every = timers.format_ns(timers.cs_to_ns(entry.interval_cs))
        if entry.count == 1:
            sentences.append(
                f"one advertisement from {entry.source} (priority {entry.priority}, interval {every}) "
                f"at {_clock(target.wall_of(entry.last_ns))}"
            )
        else:
            sentences.append(
                f"{entry.count} advertisements from {entry.source} (priority {entry.priority}, every {every}) "
                f"from {_clock(target.wall_of(entry.first_ns))} to {_clock(target.wall_of(entry.last_ns))}"
            )
    text = "Before this it had heard " + "; ".join(sentences) + "."
    latest = max(heard.values(), key=lambda h: h.last_ns)
    silence = step.now_ns - latest.last_ns
    interval_ns = timers.cs_to_ns(latest.interval_cs)
    if isinstance(step.input, TimerExpired) and silence >= interval_ns:
        missed = silence // interval_ns
        plural = "s" if missed != 1 else ""
        every = timers.format_ns(interval_ns)
        text += (
            f" Then nothing for {timers.format_ns(silence)}: {missed} advertisement{plural} from {latest.source}"
            f" missed (expected every {every})."
        )
    return text


def _hear(
    heard: dict[tuple[str, int, int], _Heard], event: AdvertisementReceived, count: int, first: int, last: int
) -> None:
    advert = event.advertisement
    key = (str(event.source), advert.priority, advert.interval_cs)
    entry = heard.setdefault(key, _Heard(source=key[0], priority=key[1], interval_cs=key[2]))
    entry.add(count, first, last)


_ARMED_BY = {
    DownArmReason.STARTUP: "when the instance started",
    DownArmReason.ADVERTISEMENT: "by the last accepted advertisement",
    DownArmReason.PRIORITY_ZERO: "by a priority-0 advertisement (the master leaving), for Skew_Time only",
    DownArmReason.HIGHER_PRIORITY: "when it yielded to a better master",
}


def _timer(target: Logged, step: Step, before: InstanceState | None) -> str:
    event = step.input
    if not isinstance(event, TimerExpired):
        return ""
    late = timers.format_ns(event.lateness_ns)
    due, fired = _clock(target.wall_of(event.deadline_ns)), _clock(target.wall_of(event.fired_ns))
    if event.timer is TimerKind.ADVER:
        return f"Its Adver_Timer was due at {due} and fired at {fired}, {late} late."
    text = f"Its Master_Down timer was due at {due} and fired at {fired}, {late} late."
    arming = before.down_armed if before is not None else None
    if arming is not None and before is not None:
        interval = timers.format_ns(timers.cs_to_ns(before.master_adver_interval_cs))
        skew = timers.format_ns(machine.skew_ns(before))
        text += (
            f" It had been armed at {_clock(target.wall_of(arming.at_ns))} {_ARMED_BY[arming.reason]}, for "
            f"{timers.format_ns(arming.duration_ns)} (Master_Down_Interval = 3 x {interval} + Skew_Time {skew} "
            f"at priority {before.priority})."
            if arming.reason is not DownArmReason.PRIORITY_ZERO
            else f" It had been armed at {_clock(target.wall_of(arming.at_ns))} {_ARMED_BY[arming.reason]}: "
            f"{timers.format_ns(arming.duration_ns)}."
        )
    return text


def _priorities(window: Sequence[Logged], target: Logged, record: TransitionMade, before: InstanceState | None) -> str:
    if before is None:
        return "Its state before this event is not in the log (older segments removed?)."
    configured = before.config.priority
    text = f"Its priority was {before.priority}"
    text += f" (configured {configured})." if before.priority != configured else " (as configured)."
    changes = [
        (item, each.input, each.now_ns)
        for item in window
        for each, _ in _steps(item)
        if isinstance(each.input, PriorityChanged)
    ]
    if isinstance(record.step.input, PriorityChanged):
        changes.append((target, record.step.input, record.step.now_ns))
    for item, change, at in changes:
        assert isinstance(change, PriorityChanged)
        reason = f" ({change.reason})" if change.reason else ""
        text += f" At {_clock(item.wall_of(at))} its priority was set to {change.priority}{reason}."
    text += f" Preemption {'on' if before.config.preempt else 'off'}"
    text += ", address owner." if before.config.is_address_owner else "."
    other = _trigger(record.step.input)
    if other:
        text += f" The event itself: {other}."
    return text


def _trigger(event: Input) -> str:
    if isinstance(event, Started):
        return "the instance was started"
    if isinstance(event, ShutdownRequested):
        return "shutdown was requested"
    if isinstance(event, InterfaceChanged):
        return f"the interface went {'up' if event.up else 'down'}"
    if isinstance(event, AdvertisementReceived):
        advert = event.advertisement
        return f"an advertisement from {event.source} with priority {advert.priority}"
    return ""


def _actions(effects: tuple[Effect, ...], related: Sequence[str]) -> str:
    done: list[str] = []
    for effect in effects:
        if isinstance(effect, SendAdvertisement):
            goodbye = " (goodbye: backups take over after Skew_Time)" if effect.priority == 0 else ""
            done.append(f"sent an advertisement with priority {effect.priority}{goodbye}")
        elif isinstance(effect, AcquireVips):
            done.append(f"took the VIPs {', '.join(str(vip) for vip in effect.vips)}")
        elif isinstance(effect, AnnounceVips):
            done.append("announced them (gratuitous ARP / unsolicited neighbour advertisement)")
        elif isinstance(effect, ReleaseVips):
            done.append(f"released the VIPs {', '.join(str(vip) for vip in effect.vips)}")
    text = "Then it " + ", ".join(done) + "." if done else "It had nothing else to do."
    if related:
        text += " Elsewhere on the node: " + "; ".join(related) + "."
    return text
