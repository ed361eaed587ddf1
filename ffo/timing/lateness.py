"""How late timers fire: a bounded record of lateness samples, and its summary for `status` and the bus.

Timer lateness is the first thing to look at when a failover was spurious: a Backup whose Master_Down timer
fires on time after a master's advertisements stopped is correct; one that fired because its own process
stalled for 40 ms is not. The VRRP actor records `woke_ns - deadline_ns` for every timer it serves.

Memory is fixed at construction: a preallocated ring of the last `capacity` samples (64-bit ints in one
`array`, no per-sample objects for the collector to walk), plus the all-time count and maximum. Recording is
a store and two compares, cheap enough for every 10 ms timer; sorting happens only in `snapshot()`, which
runs when someone asks.

Pure: no clock, no I/O. The caller measures; this module only counts.
"""

from __future__ import annotations

from array import array

import attrs

DEFAULT_CAPACITY = 4096


@attrs.frozen(kw_only=True)
class LatenessSnapshot:
    """Summary of timer lateness, all in ns.

    `count` and `max_ns` cover every sample since start; `p50_ns` and `p99_ns` cover the last `window`
    samples (the ring), so they describe recent behaviour, while `max_ns` keeps the worst stall ever seen.
    Percentiles use the nearest-rank definition: the smallest sample such that at least p % of the window is
    at or below it, always an observed value. With no samples every field is 0.
    """

    count: int
    window: int
    p50_ns: int
    p99_ns: int
    max_ns: int


def nearest_rank(ordered: list[int], percent: int) -> int:
    """The nearest-rank `percent`-th percentile of an ascending, non-empty list (integer arithmetic)."""
    rank = -(-percent * len(ordered) // 100)  # ceil(percent / 100 * n) without floats
    return ordered[max(rank, 1) - 1]


class LatenessTracker:
    """Records lateness samples in ns into a fixed-size ring; `snapshot()` summarises them.

    A sample may be negative (a timer that fired early): that is recorded as is, because an early timer is a
    bug worth seeing rather than hiding behind a clamp.
    """

    __slots__ = ("_capacity", "_count", "_max", "_next", "_samples")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self._capacity = capacity
        self._samples = array("q", bytes(8 * capacity))
        self._next = 0
        self._count = 0
        self._max = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def count(self) -> int:
        return self._count

    def record(self, lateness_ns: int) -> None:
        self._samples[self._next] = lateness_ns
        self._next += 1
        if self._next == self._capacity:
            self._next = 0
        if self._count == 0 or lateness_ns > self._max:
            self._max = lateness_ns
        self._count += 1

    def snapshot(self) -> LatenessSnapshot:
        window = min(self._count, self._capacity)
        if window == 0:
            return LatenessSnapshot(count=0, window=0, p50_ns=0, p99_ns=0, max_ns=0)
        ordered = sorted(self._samples[:window])
        return LatenessSnapshot(
            count=self._count,
            window=window,
            p50_ns=nearest_rank(ordered, 50),
            p99_ns=nearest_rank(ordered, 99),
            max_ns=self._max,
        )
