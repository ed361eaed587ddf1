"""Timer precision for the processes that serve VRRP timers.

- `lateness`: a bounded record of how late timers fired, and its summary (pure).
- `timerfd`: absolute CLOCK_MONOTONIC deadlines for asyncio through a Linux timerfd, with a fallback.
- `process`: `tune_for_timers`, a frozen heap and optional SCHED_FIFO for the timer-serving process.
"""

from ffo.timing.lateness import LatenessSnapshot, LatenessTracker
from ffo.timing.process import tune_for_timers
from ffo.timing.timerfd import DeadlineWaiter, TimerFd, Waiter, timerfd_available

__all__ = [
    "DeadlineWaiter",
    "LatenessSnapshot",
    "LatenessTracker",
    "TimerFd",
    "Waiter",
    "timerfd_available",
    "tune_for_timers",
]
