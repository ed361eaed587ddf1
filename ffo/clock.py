"""Time behind an interface: the one place (with `ffo.timing.timerfd`) that reads the system clocks.

Everything else gets `now` as an argument (STYLE.md convention 2), so the pure core can be replayed and tests
never sleep. `monotonic_ns` drives every timer; `wall_ns` is for display and envelope timestamps only, because
the wall clock can jump (NTP steps, an operator's `date -s`) and a jump must never fire or stall a VRRP timer.

`FakeClock` lives here rather than in `tests/support` because actor tests in other packages and the simulator
need the same one; it is a handful of lines and reads no clock.
"""

from __future__ import annotations

import time
from typing import Protocol

import attrs


class Clock(Protocol):
    """What actors need from time: a monotonic reading for deadlines and a wall reading for people."""

    def monotonic_ns(self) -> int:
        """CLOCK_MONOTONIC in ns: the time base of every deadline and of the timerfd."""
        ...

    def wall_ns(self) -> int:
        """Nanoseconds since the Unix epoch, for timestamps that people and other nodes read."""
        ...


@attrs.frozen(kw_only=True)
class SystemClock:
    """The real clocks. `time.monotonic_ns` is CLOCK_MONOTONIC on Linux, the clock the timerfd is armed on."""

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def wall_ns(self) -> int:
        return time.time_ns()


@attrs.frozen(kw_only=True)
class SkewedClock:
    """The real clocks, with the wall reading moved by `skew_ns`: `[node] test_clock_skew`, for tests only.

    Nodes in namespaces of one machine share one clock, so a clock offset between them can only be made
    up. The monotonic reading is left alone: deadlines never depend on the wall clock.
    """

    skew_ns: int

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def wall_ns(self) -> int:
        return time.time_ns() + self.skew_ns


def node_clock(skew_ns: int) -> Clock:
    """The clock a node runs on: the system's, or a skewed one when a test asks for it."""
    return SkewedClock(skew_ns=skew_ns) if skew_ns else SystemClock()


@attrs.define(kw_only=True)
class FakeClock:
    """A clock that moves only when told to, like trio's MockClock: starts at 0, then `advance` or `set`.

    The wall reading is `wall_epoch_ns` plus the monotonic reading, so both move together and a test can pin
    the wall clock to a readable date. Moving backwards is refused: a monotonic clock that goes back would hide
    exactly the deadline bugs the tests are there to catch.
    """

    now_ns: int = 0
    wall_epoch_ns: int = 0

    def monotonic_ns(self) -> int:
        return self.now_ns

    def wall_ns(self) -> int:
        return self.wall_epoch_ns + self.now_ns

    def advance(self, ns: int) -> int:
        """Move forward by `ns` (≥ 0) and return the new reading."""
        if ns < 0:
            raise ValueError(f"a monotonic clock cannot go back: advance({ns})")
        self.now_ns += ns
        return self.now_ns

    def set(self, ns: int) -> int:
        """Jump to `ns` (not before the current reading), e.g. to a deadline; return the new reading."""
        if ns < self.now_ns:
            raise ValueError(f"a monotonic clock cannot go back: set({ns}) < {self.now_ns}")
        self.now_ns = ns
        return self.now_ns
