"""The next deadline of many virtual routers, without looking at all of them (pure).

A node with K routers asks after every batch of work "when must I wake up next?" and, on waking, "whose
timer is due?". Scanning every router answers both in O(K): at 200 routers and 10 ms intervals that is
20,000 wake-ups or packets a second, each paying for 200 routers. `DeadlineQueue` answers in O(log K) with a
binary heap and lazy deletion: a router whose deadline moves gets a new heap entry and its old entry is left
behind, recognised as stale when it reaches the top (it no longer equals the router's current deadline) and
dropped there. A Backup hearing its master every interval moves its Master_Down deadline every interval, so
stale entries are the common case; they sit below the live ones and leave at the next `next_deadline`. One
router with a long timer (a 1 s interval next to 10 ms ones) would hold the stale entries of all the others
above it for seconds, so the heap is rebuilt from the current deadlines when it grows past a few entries per
router (O(K), at most once per K pushes).

The queue holds each router's *current* deadline (`deadline_of`); the heap only orders them. Items are
identified by a small integer (their position in the node's configuration), which also breaks ties, so
routers due at the same instant come out in configuration order.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Generic, TypeVar

__all__ = ["DeadlineQueue"]

T = TypeVar("T")
_COMPACT_FACTOR = 4
_COMPACT_SLACK = 64


class DeadlineQueue(Generic[T]):
    """Items `0..n-1` with one optional deadline each (monotonic ns); the earliest first."""

    __slots__ = ("_current", "_heap", "_items")

    def __init__(self, items: Sequence[T]) -> None:
        self._items = tuple(items)
        self._current: list[int | None] = [None] * len(self._items)
        self._heap: list[tuple[int, int]] = []

    def deadline_of(self, index: int) -> int | None:
        """Item `index`'s current deadline (None: no timer runs)."""
        return self._current[index]

    def set(self, index: int, deadline: int | None) -> None:
        """Item `index` is next due at `deadline` (None: never, until set again)."""
        if self._current[index] == deadline:
            return
        self._current[index] = deadline
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, index))
            if len(self._heap) > _COMPACT_FACTOR * len(self._current) + _COMPACT_SLACK:
                self._compact()

    def _compact(self) -> None:
        """Rebuild the heap from the current deadlines: every stale entry goes at once."""
        self._heap = [(deadline, index) for index, deadline in enumerate(self._current) if deadline is not None]
        heapq.heapify(self._heap)

    def next_deadline(self) -> int | None:
        """The earliest current deadline (stale entries on top are dropped on the way)."""
        heap, current = self._heap, self._current
        while heap:
            deadline, index = heap[0]
            if current[index] == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def pop_due(self, now_ns: int) -> list[tuple[int, T]]:
        """Every item due at or before `now_ns`, earliest first (ties in index order), as (deadline, item).

        Their deadlines are cleared: the caller fires their timers and `set`s what comes next.
        """
        heap, current, items = self._heap, self._current, self._items
        due: list[tuple[int, T]] = []
        while heap and heap[0][0] <= now_ns:
            deadline, index = heapq.heappop(heap)
            if current[index] == deadline:
                current[index] = None
                due.append((deadline, items[index]))
        return due

    def __len__(self) -> int:
        """Heap entries, stale ones included (for tests and statistics)."""
        return len(self._heap)
