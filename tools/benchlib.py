"""What the benchmarks in tools/ share: calls per second of a callable, best of several runs."""

from __future__ import annotations

import time
from collections.abc import Callable


def rate(action: Callable[[], object], seconds: float, repeat: int, batch: int = 1000) -> float:
    """Calls per second of `action`: the best of `repeat` runs of about `seconds` each (the least disturbed
    by a noisy machine)."""
    best = 0.0
    for _ in range(repeat):
        calls = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(batch):
                action()
            calls += batch
        best = max(best, calls / elapsed)
    return best
