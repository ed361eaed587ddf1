"""What the VRRP actor writes to its event stream, and the recorder that decides it (pure).

The stream must let `ffo replay` feed the recorded inputs through the machine and reproduce every transition
and effect, and let `ffo why` explain a transition, while a node at 10 ms advertisements writes kilobytes, not
gigabytes, per hour. So the recorder writes:

- `InstanceConfigured` when an instance starts (its settings: replay starts from `InstanceState.initial`);
- `TransitionMade` for a step whose effects include a transition, *before* the actor carries out its effects
  (write-ahead: the transition and its cause are in the log even if the process dies carrying it out);
- `InputApplied` for any other step that changed the state or asked for something to be done;
- `PeriodicRun` for a run of identical periodic steps: the same master's identical advertisements reaching a
  Backup, or our own Adver_Timer firing as Master. It holds the first and the last step in full, the count,
  and the worst timer lateness seen. A run is written when it ends (another kind of step comes) and at least
  every `run_flush_ns`, so a crash loses at most that much of an uneventful run;
- nothing for a step that changed nothing (a stale timer, an advertisement for another VRID): the actor
  counts those by reason.

Why a run may be replayed from its first and last step alone: within a run nothing but the timestamps
changes (same role, same peer, same priority, same advertisement), and everything a step stores in the state
(when the peer was last heard, the down timer's arming and deadline, the Adver_Timer deadline) depends only on
the step's own time, so the state after the last step is the state after all of them. The one thing replay
must supply is the Adver_Timer deadline that the last timer input was due at, which the skipped steps set:
it is in that input (`TimerExpired.deadline_ns`), see `ffo.vrrp.replay`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

import attrs

from ffo.bus.convert import register_type_name
from ffo.bus.messages import message
from ffo.vrrp.effects import Dropped, Effect, SetTimer, Transitioned
from ffo.vrrp.inputs import AdvertisementReceived, Input, TimerExpired
from ffo.vrrp.state import InstanceConfig, InstanceState, Role, TimerKind

__all__ = [
    "DEFAULT_RUN_FLUSH_NS",
    "InputApplied",
    "InstanceConfigured",
    "PeriodicRun",
    "Recorder",
    "Step",
    "StepRecord",
    "StepSource",
    "TransitionMade",
    "VrrpRecord",
]

DEFAULT_RUN_FLUSH_NS: Final = 60_000_000_000
"""An open run is written at least once a minute: about 60 records an hour per instance and role."""


@attrs.frozen(kw_only=True)
class Step:
    """One call of `machine.step`: the input at `now_ns` and the effects it returned, in order."""

    now_ns: int
    input: Input
    effects: tuple[Effect, ...]

    @property
    def transition(self) -> Transitioned | None:
        for effect in self.effects:
            if isinstance(effect, Transitioned):
                return effect
        return None


register_type_name(Step, "vrrp.step")


@message("vrrp.instance_configured", version=1)
@attrs.frozen(kw_only=True)
class InstanceConfigured:
    """An instance (re)starts with these settings: replay begins again from its initial state here."""

    instance: str
    config: InstanceConfig


@message("vrrp.transition", version=1)
@attrs.frozen(kw_only=True)
class TransitionMade:
    """A step that changed the role; `step.effects[0]` is the `Transitioned` with its structured cause."""

    instance: str
    step: Step

    @property
    def transition(self) -> Transitioned:
        found = self.step.transition
        assert found is not None, "a TransitionMade record always holds a transition"
        return found


@message("vrrp.input", version=1)
@attrs.frozen(kw_only=True)
class InputApplied:
    """A step that changed the state or had effects, without changing the role."""

    instance: str
    step: Step


@message("vrrp.run", version=1)
@attrs.frozen(kw_only=True)
class PeriodicRun:
    """`count` ≥ 2 identical periodic steps, from `first` to `last` (see the module docstring)."""

    instance: str
    count: int
    first: Step
    last: Step
    max_lateness_ns: int
    """The worst timer lateness in the run (0 for advertisement runs)."""


StepRecord = TransitionMade | InputApplied
VrrpRecord = InstanceConfigured | TransitionMade | InputApplied | PeriodicRun

_PeriodicKey = tuple[object, ...]


def periodic_key(before: InstanceState, event: Input, effects: tuple[Effect, ...]) -> _PeriodicKey | None:
    """The identity of a periodic step (steps with equal keys coalesce into a run), or None for any other.

    Periodic: an advertisement received in Backup or Master that did not change the role, and the
    Adver_Timer firing in Master. The key holds everything but the timestamps, so two steps with one key
    differ only in when they happened.
    """
    if any(isinstance(effect, Transitioned) for effect in effects):
        return None
    shape = tuple(_effect_shape(effect) for effect in effects)
    if isinstance(event, AdvertisementReceived) and before.role is not Role.INITIALIZE:
        return ("advert", before.role, before.priority, event.source, event.advertisement, shape)
    if isinstance(event, TimerExpired) and event.timer is TimerKind.ADVER and before.role is Role.MASTER:
        return ("adver_timer", before.priority, shape)
    return None


def _effect_shape(effect: Effect) -> object:
    """An effect without its times: a SetTimer's deadline moves with every step of a run."""
    if isinstance(effect, SetTimer):
        return (SetTimer, effect.timer)
    return effect


def _lateness(event: Input) -> int:
    return event.lateness_ns if isinstance(event, TimerExpired) else 0


class StepSource(Protocol):
    """Something that can build the step a repeat made (`ffo.vrrp.steady`'s repeats)."""

    def step_at(self, now_ns: int, due_ns: int) -> Step: ...


@attrs.define
class _OpenRun:
    """A run being counted. Its last step may be a recipe (`Recorder.repeat`): built only when it is written."""

    key: _PeriodicKey
    first: Step
    last_or_recipe: Step | tuple[StepSource, int, int]
    count: int
    max_lateness_ns: int

    @property
    def last(self) -> Step:
        last = self.last_or_recipe
        if not isinstance(last, Step):
            source, now_ns, due_ns = last
            last = self.last_or_recipe = source.step_at(now_ns, due_ns)
        return last


@attrs.define
class Recorder:
    """Turns the steps of one instance into the records to append, in order (pure: no clock, no I/O).

    The actor calls `configured` when the instance starts, `observe` after every `machine.step` (and appends
    what it returns before carrying out the effects), `flush` now and then, and `close` at shutdown. After a
    crash nothing is called: the open run is lost with the process, as its docstring above allows.
    """

    instance: str
    run_flush_ns: int = DEFAULT_RUN_FLUSH_NS
    _run: _OpenRun | None = None

    def configured(self, config: InstanceConfig) -> list[VrrpRecord]:
        return [*self.close(), InstanceConfigured(instance=self.instance, config=config)]

    def observe(
        self, before: InstanceState, event: Input, now_ns: int, after: InstanceState, effects: tuple[Effect, ...]
    ) -> list[VrrpRecord]:
        """The records for this step: none, the end of a run, the step itself, or both."""
        if all(isinstance(effect, Dropped) for effect in effects) and after == before:
            return []
        step = Step(now_ns=now_ns, input=event, effects=effects)
        key = periodic_key(before, event, effects)
        run = self._run
        if key is not None and run is not None and run.key == key:
            run.last_or_recipe = step
            run.count += 1
            run.max_lateness_ns = max(run.max_lateness_ns, _lateness(event))
            if now_ns - run.first.now_ns >= self.run_flush_ns:
                return self.close()
            return []
        records = self.close()
        if key is not None:
            self._run = _OpenRun(key=key, first=step, last_or_recipe=step, count=1, max_lateness_ns=_lateness(event))
        else:
            records.append(self._single(step))
        return records

    @property
    def run_open(self) -> bool:
        """Whether a run is being counted: the last step that was not dropped belongs to it."""
        return self._run is not None

    def repeat(self, now_ns: int, lateness_ns: int, source: StepSource, due_ns: int) -> Sequence[VrrpRecord]:
        """`observe` for a step the caller knows to repeat the open run's last one, times apart (the fast
        paths of `ffo.vrrp.steady`): counted without building it; `source.step_at(now_ns, due_ns)` builds it
        if the run is written.

        Returns what `observe` would: nothing, or the run's record when it has been open `run_flush_ns`.
        """
        run = self._run
        assert run is not None, "a repeat extends an open run"
        run.last_or_recipe = (source, now_ns, due_ns)
        run.count += 1
        run.max_lateness_ns = max(run.max_lateness_ns, lateness_ns)
        if now_ns - run.first.now_ns >= self.run_flush_ns:
            return self.close()
        return ()

    def flush(self, now_ns: int) -> list[VrrpRecord]:
        """Write the open run if it has been open for `run_flush_ns` (call it on a slow periodic tick)."""
        run = self._run
        if run is not None and now_ns - run.first.now_ns >= self.run_flush_ns:
            return self.close()
        return []

    def close(self) -> list[VrrpRecord]:
        """End the open run, if any, and return its record."""
        run, self._run = self._run, None
        if run is None:
            return []
        if run.count == 1:
            return [self._single(run.first)]
        return [
            PeriodicRun(
                instance=self.instance,
                count=run.count,
                first=run.first,
                last=run.last,
                max_lateness_ns=run.max_lateness_ns,
            )
        ]

    def discard(self) -> None:
        """Forget the open run (the simulator's crash: the process and its memory are gone)."""
        self._run = None

    def _single(self, step: Step) -> StepRecord:
        if step.transition is not None:
            return TransitionMade(instance=self.instance, step=step)
        return InputApplied(instance=self.instance, step=step)
