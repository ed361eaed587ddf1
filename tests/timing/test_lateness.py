"""LatenessTracker: exact nearest-rank percentiles, a window bounded by the ring, all-time count and max."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ffo.timing.lateness import LatenessSnapshot, LatenessTracker, nearest_rank
from tests.test_purity import FORBIDDEN, ROOT, imported_roots


def test_lateness_module_is_pure() -> None:
    assert not imported_roots(ROOT / "timing" / "lateness.py") & FORBIDDEN


def test_empty_tracker_reports_zeros() -> None:
    assert LatenessTracker().snapshot() == LatenessSnapshot(count=0, window=0, p50_ns=0, p99_ns=0, max_ns=0)


def test_one_to_hundred_gives_textbook_nearest_ranks() -> None:
    tracker = LatenessTracker()
    for sample in reversed(range(1, 101)):  # order must not matter
        tracker.record(sample)
    assert tracker.snapshot() == LatenessSnapshot(count=100, window=100, p50_ns=50, p99_ns=99, max_ns=100)


@pytest.mark.parametrize(
    ("samples", "p50", "p99"),
    [
        ([7], 7, 7),
        ([1, 2], 1, 2),
        ([1, 2, 3, 4], 2, 4),
        ([5, 1, 9], 5, 9),
        ([3, 3, 3, 1000], 3, 1000),
    ],
)
def test_small_samples(samples: list[int], p50: int, p99: int) -> None:
    tracker = LatenessTracker()
    for sample in samples:
        tracker.record(sample)
    snapshot = tracker.snapshot()
    assert (snapshot.p50_ns, snapshot.p99_ns, snapshot.max_ns) == (p50, p99, max(samples))


def test_early_timer_is_recorded_as_negative() -> None:
    tracker = LatenessTracker()
    tracker.record(-5)
    assert tracker.snapshot() == LatenessSnapshot(count=1, window=1, p50_ns=-5, p99_ns=-5, max_ns=-5)


def test_ring_keeps_only_the_last_capacity_samples_but_max_and_count_are_all_time() -> None:
    tracker = LatenessTracker(capacity=8)
    tracker.record(1_000_000)  # an old stall, pushed out of the window
    for sample in range(1000):
        tracker.record(sample)
    snapshot = tracker.snapshot()
    assert snapshot.count == 1001
    assert snapshot.window == 8 == tracker.capacity
    assert snapshot.max_ns == 1_000_000
    # The window is 992..999: nearest ranks 4 and 8 of 8.
    assert (snapshot.p50_ns, snapshot.p99_ns) == (995, 999)


def test_default_capacity_is_4096() -> None:
    tracker = LatenessTracker()
    for sample in range(5000):
        tracker.record(sample)
    assert tracker.snapshot().window == 4096 == tracker.capacity


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        LatenessTracker(capacity=0)


@given(st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=300), st.integers(1, 64))
def test_matches_a_sorted_reference(samples: list[int], capacity: int) -> None:
    tracker = LatenessTracker(capacity=capacity)
    for sample in samples:
        tracker.record(sample)
    window = sorted(samples[-capacity:])
    snapshot = tracker.snapshot()
    assert snapshot.count == len(samples)
    assert snapshot.window == len(window)
    assert snapshot.max_ns == max(samples)
    for percent, value in ((50, snapshot.p50_ns), (99, snapshot.p99_ns)):
        # Nearest rank: the smallest observed value with at least `percent` % of the window at or below it.
        assert value in window
        assert sum(s <= value for s in window) * 100 >= percent * len(window)
        assert sum(s < value for s in window) * 100 < percent * len(window)
    assert nearest_rank(window, 100) == window[-1]
