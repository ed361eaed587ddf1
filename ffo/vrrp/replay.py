"""Replay a VRRP event stream through the current state machine: check it, or ask "what if" (pure).

`replay` feeds every recorded input back through `machine.step` and compares the effects it returns with the
recorded ones, record by record. A difference is a divergence: the machine no longer does what it did when the
log was written (a behaviour change between versions, a bug, or a damaged log). The replayed state goes on
from what the machine computed, so one divergence is reported once, not at every later step.

`what_if` answers "what would have happened with other settings": the recorded *external* inputs (received
advertisements, priority and interface changes, start and stop) are fed at their recorded times to a machine
with the changed settings, and its timers fire where *it* sets them, exactly on time. The recorded timer
inputs are not used: with other settings they would be due at other times. What it cannot know is how the
peers would have answered a node that behaved differently; the result says so.

Runs (`PeriodicRun`) are replayed from their first and last step (see `ffo.vrrp.record`): before the last
step of a timer run, the Adver_Timer deadline that the skipped steps would have set is taken from that step's
input. `what_if` spreads a run's advertisements evenly between its first and last time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Final

import attrs

from ffo.vrrp import machine
from ffo.vrrp.cause import render
from ffo.vrrp.describe import input_text
from ffo.vrrp.effects import Effect, Transitioned
from ffo.vrrp.inputs import Input, TimerExpired
from ffo.vrrp.record import InputApplied, InstanceConfigured, PeriodicRun, Step, TransitionMade, VrrpRecord
from ffo.vrrp.state import InstanceConfig, InstanceState, TimerKind

__all__ = [
    "Divergence",
    "Entry",
    "ReplayResult",
    "Replayer",
    "StepFunction",
    "TimedTransition",
    "WhatIfResult",
    "apply_settings",
    "replay",
    "what_if",
]

StepFunction = Callable[[InstanceState, Input, int], tuple[InstanceState, tuple[Effect, ...]]]
Entry = tuple[str, VrrpRecord]
"""A record's id (``stream:seq``) and its decoded VRRP record."""

_MAX_TIMER_STEPS: Final = 10_000_000
"""What-if fires at most this many timers between two inputs: a guard against a zero-interval loop."""


@attrs.frozen(kw_only=True)
class Divergence:
    record_id: str
    instance: str
    now_ns: int
    input: Input
    recorded: tuple[Effect, ...]
    replayed: tuple[Effect, ...]

    def describe(self) -> list[str]:
        """Both sides, one effect per line, so that a person sees where they part."""
        lines = [f"divergence at {self.record_id} ({self.instance}, t={self.now_ns} ns): {input_text(self.input)}"]
        lines.append("  recorded:")
        lines += [f"    {_effect_text(effect)}" for effect in self.recorded] or ["    (nothing)"]
        lines.append("  replayed:")
        lines += [f"    {_effect_text(effect)}" for effect in self.replayed] or ["    (nothing)"]
        return lines


def _effect_text(effect: Effect) -> str:
    if isinstance(effect, Transitioned):
        return f"Transitioned {effect.from_role.value} -> {effect.to_role.value}: {render(effect.cause)}"
    return repr(effect)


@attrs.frozen(kw_only=True)
class ReplayResult:
    events: int
    """Records of the replayed instances that were read."""
    transitions: int
    """Recorded transitions that were replayed."""
    divergences: tuple[Divergence, ...]
    skipped: dict[str, int]
    """Per instance, records that could not be replayed because no `InstanceConfigured` came before them
    (older segments removed by retention)."""


@attrs.define
class Replayer:
    step: StepFunction
    states: dict[str, InstanceState] = attrs.field(factory=dict)
    events: int = 0
    transitions: int = 0
    divergences: list[Divergence] = attrs.field(factory=list)
    skipped: dict[str, int] = attrs.field(factory=dict)

    def feed(self, record_id: str, record: VrrpRecord) -> None:
        self.events += 1
        if isinstance(record, InstanceConfigured):
            self.states[record.instance] = InstanceState.initial(record.config)
            return
        if record.instance not in self.states:
            self.skipped[record.instance] = self.skipped.get(record.instance, 0) + 1
            return
        if isinstance(record, PeriodicRun):
            self._check(record_id, record.instance, record.first)
            self._rebase_for(record.instance, record.last)
            self._check(record_id, record.instance, record.last)
        else:
            if isinstance(record, TransitionMade):
                self.transitions += 1
            self._check(record_id, record.instance, record.step)

    def _rebase_for(self, instance: str, last: Step) -> None:
        event = last.input
        if isinstance(event, TimerExpired) and event.timer is TimerKind.ADVER:
            self.states[instance] = attrs.evolve(self.states[instance], adver_deadline_ns=event.deadline_ns)

    def _check(self, record_id: str, instance: str, recorded: Step) -> None:
        state, effects = self.step(self.states[instance], recorded.input, recorded.now_ns)
        self.states[instance] = state
        if effects != recorded.effects:
            self.divergences.append(
                Divergence(
                    record_id=record_id,
                    instance=instance,
                    now_ns=recorded.now_ns,
                    input=recorded.input,
                    recorded=recorded.effects,
                    replayed=effects,
                )
            )


def replay(entries: Iterable[Entry], *, instance: str | None = None, step: StepFunction = machine.step) -> ReplayResult:
    """Feed the recorded inputs (of `instance`, or of every instance) through `step` and compare the effects."""
    replayer = Replayer(step=step)
    for record_id, record in entries:
        if instance is None or record.instance == instance:
            replayer.feed(record_id, record)
    return ReplayResult(
        events=replayer.events,
        transitions=replayer.transitions,
        divergences=tuple(replayer.divergences),
        skipped=dict(replayer.skipped),
    )


# --- what if ---------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TimedTransition:
    instance: str
    at_ns: int
    transition: Transitioned

    def describe(self) -> str:
        change = self.transition
        return f"{change.from_role.value} -> {change.to_role.value}: {render(change.cause)}"


@attrs.frozen(kw_only=True)
class WhatIfResult:
    settings: dict[str, object]
    recorded: tuple[TimedTransition, ...]
    alternative: tuple[TimedTransition, ...]
    inputs: int
    """External inputs fed (a run's advertisements counted one by one)."""


def apply_settings(config: InstanceConfig, settings: dict[str, object]) -> InstanceConfig:
    """`config` with `settings` (InstanceConfig field names) changed; attrs validators check the values."""
    unknown = sorted(set(settings) - {field.name for field in attrs.fields(InstanceConfig)})
    if unknown:
        raise ValueError(f"not an instance setting: {', '.join(unknown)}")
    return attrs.evolve(config, **settings)  # type: ignore[arg-type]  # names checked above


@attrs.define
class _Alternative:
    instance: str
    step: StepFunction
    settings: dict[str, object]
    state: InstanceState | None = None
    transitions: list[TimedTransition] = attrs.field(factory=list)
    inputs: int = 0

    def restart(self, config: InstanceConfig, at_ns: int) -> None:
        self.run_timers_until(at_ns)
        self.state = InstanceState.initial(apply_settings(config, self.settings))

    def feed(self, event: Input, at_ns: int) -> None:
        if self.state is None:
            return
        self.run_timers_until(at_ns)
        self.inputs += 1
        self._apply(event, at_ns)

    def run_timers_until(self, at_ns: int) -> None:
        for _ in range(_MAX_TIMER_STEPS):
            if self.state is None:
                return
            due = machine.due_timer(self.state)
            if due is None or due.deadline_ns > at_ns:
                return
            self._apply(due, due.deadline_ns)
        raise RuntimeError(f"what-if: more than {_MAX_TIMER_STEPS} timers before t={at_ns} ns")

    def _apply(self, event: Input, at_ns: int) -> None:
        assert self.state is not None
        self.state, effects = self.step(self.state, event, at_ns)
        for effect in effects:
            if isinstance(effect, Transitioned):
                self.transitions.append(TimedTransition(instance=self.instance, at_ns=at_ns, transition=effect))


def _external_steps(record: VrrpRecord) -> Iterator[tuple[int, Input]]:
    """The inputs from outside the machine in `record`, at their times (timer inputs are left out)."""
    if isinstance(record, TransitionMade | InputApplied):
        steps: tuple[tuple[int, Input], ...] = ((record.step.now_ns, record.step.input),)
    elif isinstance(record, PeriodicRun):
        steps = tuple(_spread(record))
    else:
        steps = ()
    for at_ns, event in steps:
        if not isinstance(event, TimerExpired):
            yield at_ns, event


def _spread(run: PeriodicRun) -> Iterator[tuple[int, Input]]:
    """A run's `count` inputs, evenly spaced from its first to its last step."""
    first, last = run.first.now_ns, run.last.now_ns
    for k in range(run.count):
        yield first + (last - first) * k // (run.count - 1), run.first.input


def what_if(
    entries: Iterable[Entry], *, instance: str, settings: dict[str, object], step: StepFunction = machine.step
) -> WhatIfResult:
    """The transitions `instance` made, and those it would have made with `settings` changed."""
    alternative = _Alternative(instance=instance, step=step, settings=settings)
    recorded: list[TimedTransition] = []
    end_ns = 0
    for _, record in entries:
        if record.instance != instance:
            continue
        if isinstance(record, InstanceConfigured):
            alternative.restart(record.config, end_ns)
            continue
        if isinstance(record, TransitionMade):
            recorded.append(TimedTransition(instance=instance, at_ns=record.step.now_ns, transition=record.transition))
        for at_ns, event in _external_steps(record):
            alternative.feed(event, at_ns)
            end_ns = max(end_ns, at_ns)
        end_ns = max(end_ns, _last_time(record))
    alternative.run_timers_until(end_ns)
    return WhatIfResult(
        settings=dict(settings),
        recorded=tuple(recorded),
        alternative=tuple(alternative.transitions),
        inputs=alternative.inputs,
    )


def _last_time(record: VrrpRecord) -> int:
    if isinstance(record, PeriodicRun):
        return record.last.now_ns
    if isinstance(record, TransitionMade | InputApplied):
        return record.step.now_ns
    return 0
