"""Precise deadlines for asyncio: a Linux timerfd armed on CLOCK_MONOTONIC and watched by the event loop.

Why not `asyncio.sleep`/`loop.call_at`: the selector loop converts every wait to whole milliseconds, rounding
up (`EpollSelector.select` passes `ceil(timeout * 1e3)` ms to `epoll_wait`), so a timer is typically 0.1-1 ms
late before any scheduling delay. keepalived fires its Master_Down timer about 0.25 ms after the RFC bound
(BENCHMARKS.md); to match that, the wake-up must come from the kernel at the deadline itself. A timerfd armed
with an absolute CLOCK_MONOTONIC deadline (`TFD_TIMER_ABSTIME`) becomes readable at that instant with
hrtimer precision, and the loop's `epoll_wait` returns as soon as it is readable, whatever its own timeout.

Python 3.11 has no `os.timerfd_create` (3.13 added it), so the two calls go through ctypes. Where there is no
timerfd (not Linux, or a loop without `add_reader` such as the Windows proactor), `DeadlineWaiter` falls
back to `asyncio.sleep`, loops until the deadline has really passed, and says so in `note`.

This is an edge module: besides `ffo.clock` it is the only one that reads the clock, because the instant of
waking must be measured right where the wait ends. CLOCK_MONOTONIC is the clock `time.monotonic_ns()` reads
on Linux, so deadlines from `SystemClock` and the timerfd share one time base.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import time
from types import TracebackType
from typing import Any, Literal, Protocol

from ffo.timing.lateness import LatenessTracker

NS_PER_S = 1_000_000_000
TFD_TIMER_ABSTIME = 1  # <sys/timerfd.h>
# TFD_NONBLOCK and TFD_CLOEXEC are defined as O_NONBLOCK and O_CLOEXEC, whose values differ between
# architectures; the os module has the right ones for this one.
TFD_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
TFD_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
CLOCK_MONOTONIC = getattr(time, "CLOCK_MONOTONIC", 1)


class _Timespec(ctypes.Structure):
    # time_t and long are both the C long on the Linux ABIs we run on.
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


class _Libc:
    """The two libc entry points, looked up once. `CDLL(None)` is the already-loaded libc: no search."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.create: Any = libc.timerfd_create
        self.create.argtypes = (ctypes.c_int, ctypes.c_int)
        self.create.restype = ctypes.c_int
        self.settime: Any = libc.timerfd_settime
        self.settime.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p)
        self.settime.restype = ctypes.c_int
        self.gettime: Any = libc.timerfd_gettime
        self.gettime.argtypes = (ctypes.c_int, ctypes.POINTER(_Itimerspec))
        self.gettime.restype = ctypes.c_int


_libc: _Libc | None = None


def _load_libc() -> _Libc:
    global _libc  # noqa: PLW0603 - one lazy lookup per process
    if _libc is None:
        if not sys.platform.startswith("linux"):
            raise OSError(38, f"timerfd is Linux-only (this is {sys.platform})")  # ENOSYS
        try:
            _libc = _Libc()
        except AttributeError as error:  # a libc without timerfd_create (glibc < 2.8, musl is fine)
            raise OSError(38, f"timerfd not in libc: {error}") from error
    return _libc


def _raise_errno(call: str) -> None:
    errno = ctypes.get_errno()
    raise OSError(errno, f"{call}: {os.strerror(errno)}")


class TimerFd:
    """A one-shot CLOCK_MONOTONIC timerfd: `arm_at(deadline_ns)`, then the fd turns readable at the deadline.

    Non-blocking and close-on-exec, so a forked helper never inherits it and a read never stalls the loop.
    Re-arming or disarming resets the pending expiration count (the kernel zeroes it in `timerfd_settime`),
    so a stale expiry can never wake a later wait.
    """

    __slots__ = ("_fd", "_libc", "_spec")

    def __init__(self) -> None:
        self._libc = _load_libc()
        fd = self._libc.create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            _raise_errno("timerfd_create")
        self._fd: int = fd
        self._spec = _Itimerspec()  # reused for every call: no allocation per arm

    def fileno(self) -> int:
        if self._fd < 0:
            raise ValueError("TimerFd is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def arm_at(self, deadline_ns: int) -> None:
        """Fire once at the absolute CLOCK_MONOTONIC time `deadline_ns`; a past deadline fires at once.

        An all-zero it_value means "disarm" to the kernel, so deadlines at or before 0 are armed at 1 ns,
        which is just as much in the past.
        """
        seconds, nanoseconds = divmod(max(deadline_ns, 1), NS_PER_S)
        self._settime(TFD_TIMER_ABSTIME, seconds, nanoseconds)

    def disarm(self) -> None:
        self._settime(0, 0, 0)

    def _settime(self, flags: int, seconds: int, nanoseconds: int) -> None:
        spec = self._spec
        spec.it_value.tv_sec = seconds
        spec.it_value.tv_nsec = nanoseconds
        if self._libc.settime(self.fileno(), flags, ctypes.byref(spec), None) < 0:
            _raise_errno("timerfd_settime")

    def remaining_ns(self) -> int:
        """Time left before the timer fires; 0 when it is disarmed or has already fired (one-shot)."""
        current = _Itimerspec()
        if self._libc.gettime(self.fileno(), ctypes.byref(current)) < 0:
            _raise_errno("timerfd_gettime")
        return int(current.it_value.tv_sec) * NS_PER_S + int(current.it_value.tv_nsec)

    def read_expirations(self) -> int:
        """How many times the timer expired since it was last read or armed (0 if not yet); clears the count."""
        try:
            data = os.read(self.fileno(), 8)
        except BlockingIOError:
            return 0
        return int.from_bytes(data, sys.byteorder)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> TimerFd:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            self.close()


def timerfd_available() -> bool:
    """True when this process can create a timerfd (Linux with a libc that has it)."""
    try:
        TimerFd().close()
    except OSError:
        return False
    return True


class Waiter(Protocol):
    """What an actor needs to serve timers; `DeadlineWaiter` is the real one, tests may pass a fake."""

    async def wait_until(self, deadline_ns: int) -> int:
        """Return, at or after monotonic `deadline_ns`, the monotonic ns at which the caller resumed."""
        ...


class DeadlineWaiter:
    """Waits for absolute CLOCK_MONOTONIC deadlines inside an asyncio loop; one wait at a time.

    `wait_until` arms the timerfd, registers it with `loop.add_reader`, and returns the monotonic time at
    which the waiting task resumed: that instant minus the deadline is the lateness the actor acts with, so it
    is what `tracker` (if given) records. It never returns before the deadline. Cancellation is clean: the
    reader is removed and the timer disarmed before `CancelledError` propagates, so nothing fires later.
    """

    __slots__ = ("_busy", "_future", "_mode", "_note", "_timer", "tracker")

    def __init__(self, *, tracker: LatenessTracker | None = None, use_timerfd: bool = True) -> None:
        self.tracker = tracker
        self._future: asyncio.Future[None] | None = None
        self._busy = False
        self._timer: TimerFd | None = None
        self._mode: Literal["timerfd", "sleep"] = "sleep"
        self._note = "timerfd not requested: asyncio.sleep, rounded up to whole milliseconds by the selector"
        if use_timerfd:
            try:
                self._timer = TimerFd()
                self._mode = "timerfd"
                self._note = "timerfd (CLOCK_MONOTONIC, absolute deadlines) watched by the event loop"
            except OSError as error:
                self._note = f"no timerfd ({error.strerror or error}): asyncio.sleep, ~1 ms granularity"

    @property
    def mode(self) -> Literal["timerfd", "sleep"]:
        """Which mechanism serves the waits: `timerfd`, or the `sleep` fallback."""
        return self._mode

    @property
    def note(self) -> str:
        """One line for logs and `status`: the mechanism and, for the fallback, why."""
        return self._note

    async def wait_until(self, deadline_ns: int) -> int:
        """Sleep until CLOCK_MONOTONIC reaches `deadline_ns`; return the monotonic ns at which we resumed."""
        if self._busy:
            raise RuntimeError("DeadlineWaiter serves one wait at a time; use one waiter per task")
        self._busy = True
        try:
            if self._timer is not None and not await self._wait_timerfd(self._timer, deadline_ns):
                self._fall_back("this event loop has no add_reader")
            if self._timer is None:
                await self._wait_sleep(deadline_ns)
            woke = time.monotonic_ns()
        finally:
            self._busy = False
        if self.tracker is not None:
            self.tracker.record(woke - deadline_ns)
        return woke

    async def _wait_timerfd(self, timer: TimerFd, deadline_ns: int) -> bool:
        """Wait on the timerfd; False (without waiting) if the loop cannot watch file descriptors."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        fd = timer.fileno()
        timer.arm_at(deadline_ns)
        try:
            loop.add_reader(fd, self._on_readable)
        except NotImplementedError:
            timer.disarm()
            return False
        self._future = future
        try:
            await future
        finally:
            self._future = None
            loop.remove_reader(fd)
            if future.cancelled() or not future.done():  # not fired: nothing may fire later
                timer.disarm()
        return True

    def _on_readable(self) -> None:
        timer, future = self._timer, self._future
        if timer is not None and timer.read_expirations() and future is not None and not future.done():
            future.set_result(None)

    async def _wait_sleep(self, deadline_ns: int) -> None:
        # call_later may wake a few ns early (float seconds) and is rounded up to whole ms; loop until due.
        while (remaining := deadline_ns - time.monotonic_ns()) > 0:
            await asyncio.sleep(remaining / NS_PER_S)

    def _fall_back(self, reason: str) -> None:
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        self._mode = "sleep"
        self._note = f"{reason}: asyncio.sleep, ~1 ms granularity"

    def close(self) -> None:
        if self._timer is not None:
            self._timer.close()

    def __enter__(self) -> DeadlineWaiter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
