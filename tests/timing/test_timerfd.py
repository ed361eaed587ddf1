"""TimerFd and DeadlineWaiter against the real kernel clock.

Real time is unavoidable here, so every check polls for a condition with a generous timeout and asserts only
what the kernel guarantees: a timer never fires before its deadline, and it does fire (within 2 s, far more
than any loaded CI machine needs). Nothing asserts how fast a wake-up is; `tools/bench_timers.py` measures that.
"""

from __future__ import annotations

import asyncio
import select
import time

import pytest

from ffo.timing.lateness import LatenessTracker
from ffo.timing.timerfd import DeadlineWaiter, TimerFd, Waiter, timerfd_available

GENEROUS_NS = 2 * 10**9
GENEROUS_MS = GENEROUS_NS // 10**6
MS = 10**6

needs_timerfd = pytest.mark.skipif(not timerfd_available(), reason="timerfd is Linux-only")


def readable(fd: int, timeout_ms: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout_ms))


def watched_by(loop: asyncio.AbstractEventLoop, fd: int) -> bool:
    """Whether the selector loop watches `fd`; asyncio offers no public query short of removing the reader."""
    return fd in loop._selector.get_map()  # type: ignore[attr-defined]


@needs_timerfd
def test_timerfd_fires_at_or_after_its_deadline() -> None:
    with TimerFd() as timer:
        assert timer.read_expirations() == 0  # never armed: nothing to read, and no blocking
        deadline = time.monotonic_ns() + 20 * MS
        timer.arm_at(deadline)
        assert 0 < timer.remaining_ns() <= 20 * MS
        assert readable(timer.fileno(), GENEROUS_MS)
        woke = time.monotonic_ns()
        assert deadline <= woke < deadline + GENEROUS_NS
        assert timer.read_expirations() == 1
        assert timer.read_expirations() == 0  # reading cleared it
        assert timer.remaining_ns() == 0  # one-shot: spent


@pytest.mark.parametrize("deadline", [0, -5, 1, "past"])
@needs_timerfd
def test_timerfd_deadline_in_the_past_fires_at_once(deadline: int | str) -> None:
    # 0 needs care: an all-zero it_value would disarm the timer instead of firing it.
    with TimerFd() as timer:
        timer.arm_at(time.monotonic_ns() - 10**9 if deadline == "past" else int(deadline))
        assert readable(timer.fileno(), GENEROUS_MS)
        assert timer.read_expirations() == 1


@needs_timerfd
def test_disarm_and_rearm_drop_a_pending_expiry() -> None:
    with TimerFd() as timer:
        timer.arm_at(1)
        assert readable(timer.fileno(), GENEROUS_MS)
        timer.disarm()
        assert not readable(timer.fileno(), 0)
        assert timer.read_expirations() == 0
        timer.arm_at(1)
        assert readable(timer.fileno(), GENEROUS_MS)
        timer.arm_at(time.monotonic_ns() + 3600 * 10**9)
        assert not readable(timer.fileno(), 0)
        timer.disarm()
        assert timer.remaining_ns() == 0


@needs_timerfd
def test_closed_timerfd_refuses_use_and_closes_once() -> None:
    timer = TimerFd()
    timer.close()
    timer.close()
    assert timer.closed
    with pytest.raises(ValueError, match="closed"):
        timer.arm_at(1)


@needs_timerfd
@pytest.mark.asyncio
async def test_wait_until_wakes_at_or_after_the_deadline_and_records_lateness() -> None:
    tracker = LatenessTracker()
    with DeadlineWaiter(tracker=tracker) as waiter:
        assert waiter.mode == "timerfd"
        for _ in range(3):
            deadline = time.monotonic_ns() + 5 * MS
            async with asyncio.timeout(GENEROUS_NS / 1e9):
                woke = await waiter.wait_until(deadline)
            assert deadline <= woke < deadline + GENEROUS_NS
    snapshot = tracker.snapshot()
    assert snapshot.count == 3
    assert 0 <= snapshot.p50_ns <= snapshot.max_ns < GENEROUS_NS


@pytest.mark.parametrize("use_timerfd", [pytest.param(True, marks=needs_timerfd), False])
@pytest.mark.asyncio
async def test_a_deadline_in_the_past_fires_at_once(use_timerfd: bool) -> None:
    with DeadlineWaiter(use_timerfd=use_timerfd) as waiter:
        for deadline in (time.monotonic_ns() - 10**9, 0):
            async with asyncio.timeout(GENEROUS_NS / 1e9):
                woke = await waiter.wait_until(deadline)
            assert woke >= deadline


@needs_timerfd
@pytest.mark.asyncio
async def test_cancelled_wait_removes_its_reader_and_disarms() -> None:
    loop = asyncio.get_running_loop()
    with DeadlineWaiter() as waiter:
        timer = waiter._timer
        assert timer is not None
        fd = timer.fileno()
        task = asyncio.create_task(waiter.wait_until(time.monotonic_ns() + 3600 * 10**9))
        async with asyncio.timeout(GENEROUS_NS / 1e9):
            while not watched_by(loop, fd):
                await asyncio.sleep(0)
        assert timer.remaining_ns() > 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not watched_by(loop, fd)
        assert not loop.remove_reader(fd)  # the public view of the same fact
        assert timer.remaining_ns() == 0
        # The waiter is still usable after a cancellation.
        deadline = time.monotonic_ns() + MS
        async with asyncio.timeout(GENEROUS_NS / 1e9):
            assert await waiter.wait_until(deadline) >= deadline
        assert not watched_by(loop, fd)


@pytest.mark.parametrize("use_timerfd", [pytest.param(True, marks=needs_timerfd), False])
@pytest.mark.asyncio
async def test_one_wait_at_a_time(use_timerfd: bool) -> None:
    with DeadlineWaiter(use_timerfd=use_timerfd) as waiter:
        first = asyncio.create_task(waiter.wait_until(time.monotonic_ns() + 3600 * 10**9))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="one wait at a time"):
            await waiter.wait_until(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first


@pytest.mark.asyncio
async def test_fallback_never_wakes_early_and_says_why() -> None:
    tracker = LatenessTracker()
    with DeadlineWaiter(tracker=tracker, use_timerfd=False) as waiter:
        assert waiter.mode == "sleep"
        assert "asyncio.sleep" in waiter.note
        for _ in range(3):
            deadline = time.monotonic_ns() + 3 * MS
            async with asyncio.timeout(GENEROUS_NS / 1e9):
                woke = await waiter.wait_until(deadline)
            assert deadline <= woke < deadline + GENEROUS_NS
    assert tracker.snapshot().count == 3


def test_deadline_waiter_is_a_waiter() -> None:
    with DeadlineWaiter(use_timerfd=False) as waiter:
        served: Waiter = waiter
        assert served is waiter
