"""One virtual router of a node: its settings, protocol state, recorder, counters and status (pure).

`ffo.vrrp.node` keeps one `InstanceRuntime` per `[[instance]]`. Two things here exist for scale:

- the state after a fast step (`ffo.vrrp.steady`) is built only when something reads it: a fast step records
  which repeat happened and when (`repeated`), and `state` applies it on first read;
- the `ffo status` view summarises the timer lateness only every `LATENESS_REFRESH_REPORTS` reports (see
  `lateness_summary`), the maximum excepted.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

import attrs

from ffo.config import InstanceSettings
from ffo.timing.lateness import LatenessSnapshot, LatenessTracker
from ffo.vrrp.actions import Send
from ffo.vrrp.packet import IPAddress
from ffo.vrrp.record import Recorder
from ffo.vrrp.state import InstanceConfig, InstanceState, Role
from ffo.vrrp.status import InstanceStatus
from ffo.vrrp.steady import Repeat

__all__ = ["LATENESS_REFRESH_REPORTS", "InstanceRuntime"]

LATENESS_REFRESH_REPORTS: Final = 10
"""Status reports between two summaries of an instance's timer lateness (10 s at one report a second)."""


@attrs.define
class InstanceRuntime:
    """One virtual router: its settings, its protocol state, its recorder and its counters."""

    settings: InstanceSettings
    config: InstanceConfig
    _state: InstanceState
    recorder: Recorder
    index: int = 0
    """Its position in the node's configuration (its key in the node's deadline queue)."""
    counters: Counter[str] = attrs.field(factory=Counter)
    lateness: LatenessTracker = attrs.field(factory=LatenessTracker)
    goodbye: tuple[Send, ...] = ()
    """The priority-0 advertisements of a clean shutdown: fixed by the settings, so built once, not at takeover."""
    repeat: Repeat | None = None
    """The steady step the fast path may repeat (`ffo.vrrp.steady`); None: every step goes to the machine."""
    sends: dict[tuple[int, int], tuple[Send, ...]] = attrs.field(factory=dict)
    """The advertisements already built, by (priority, interval in cs)."""
    _pending: tuple[Repeat, int] | None = None
    """The last fast step (its repeat and time), not yet applied to `_state`."""
    max_lateness_ns: int = 0
    """The worst timer lateness since start."""
    _lateness_view: LatenessSnapshot | None = None
    _lateness_reports: int = 0

    @property
    def state(self) -> InstanceState:
        """The protocol state, after every step so far (the last fast step is applied on first read)."""
        pending = self._pending
        if pending is not None:
            repeat, now_ns = pending
            self._state = repeat.state_at(self._state, now_ns)
            self._pending = None
        return self._state

    @state.setter
    def state(self, state: InstanceState) -> None:
        self._state = state
        self._pending = None

    def repeated(self, repeat: Repeat, now_ns: int) -> None:
        """A fast step of `repeat` happened at `now_ns` (its state is built when `state` is next read)."""
        self._pending = (repeat, now_ns)

    @property
    def master(self) -> IPAddress | None:
        """Who is master as far as this router knows: itself, the last master it heard, or nobody."""
        if self.state.role is Role.MASTER:
            return self.config.primary_address
        if self.state.role is Role.BACKUP and self.state.last_heard is not None:
            return self.state.last_heard.source
        return None

    def timer_fired(self, lateness_ns: int) -> None:
        """A timer of this instance fired `lateness_ns` after its deadline."""
        self.lateness.record(lateness_ns)
        first = self.lateness.count == 1
        self.max_lateness_ns = lateness_ns if first else max(self.max_lateness_ns, lateness_ns)

    def lateness_summary(self) -> LatenessSnapshot:
        """The lateness percentiles, recomputed every `LATENESS_REFRESH_REPORTS` reports (staggered by the
        instance's index, so that a node's instances do not all refresh in the same report): a summary sorts
        the whole ring (4,096 samples, ~0.5 ms), and 200 instances summarised every second cost a tenth of a
        core and held the loop for 100 ms, past a 10 ms Master_Down_Interval. The maximum, the stall
        indicator, is always current (`max_lateness_ns`)."""
        view = self._lateness_view
        if view is None or self._lateness_reports >= LATENESS_REFRESH_REPORTS:
            self._lateness_reports = self.index % LATENESS_REFRESH_REPORTS if view is None else 0
            view = self._lateness_view = self.lateness.snapshot()
        self._lateness_reports += 1
        return view

    def status(self) -> InstanceStatus:
        """The `ffo status` view of this instance (CLI.md)."""
        late = self.lateness_summary()
        worst = self.max_lateness_ns
        settings = self.settings
        return InstanceStatus(
            name=settings.name,
            vrid=settings.vrid,
            family=f"IPv{int(settings.family)}",
            state=self.state.role.value,
            priority=settings.priority,
            effective_priority=self.state.priority,
            master=None if self.master is None else str(self.master),
            vips=tuple(f"{vip}/{prefix}" for vip, prefix in zip(settings.vips, settings.vip_prefixes, strict=True)),
            timer_lateness_ms={"p50": late.p50_ns / 1e6, "p99": late.p99_ns / 1e6, "max": worst / 1e6},
            counters=dict(sorted(self.counters.items())),
        )
