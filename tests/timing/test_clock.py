"""SystemClock reads the real clocks; FakeClock moves only when told to, and never backwards."""

from __future__ import annotations

import time

import pytest

from ffo.clock import Clock, FakeClock, SystemClock


def test_system_clock_is_monotonic_and_wall_is_near_time_ns() -> None:
    clock: Clock = SystemClock()
    first, second = clock.monotonic_ns(), clock.monotonic_ns()
    assert second >= first
    assert abs(clock.wall_ns() - time.time_ns()) < 60 * 10**9


def test_fake_clock_starts_at_zero_and_moves_on_request() -> None:
    clock = FakeClock(wall_epoch_ns=1_700_000_000 * 10**9)
    assert clock.monotonic_ns() == 0
    assert clock.advance(250) == 250
    assert clock.set(10_000) == 10_000
    assert clock.monotonic_ns() == 10_000
    assert clock.wall_ns() == 1_700_000_000 * 10**9 + 10_000


def test_fake_clock_refuses_to_go_back() -> None:
    clock = FakeClock(now_ns=100)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(99)
    assert clock.monotonic_ns() == 100
