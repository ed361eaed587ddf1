"""What the benchmarks in tools/ share: calls per second of a callable (best of several runs), sample data."""

from __future__ import annotations

import ipaddress
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

from ffo.vrrp.cause import Cause, CauseKind


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


def sample_cause() -> Cause:
    """A typical transition cause (a master that went silent), for benchmarks of what carries one."""
    return Cause(
        kind=CauseKind.MASTER_DOWN,
        peer=ipaddress.IPv4Address("192.0.2.11"),
        peer_priority=200,
        local_priority=100,
        interval_cs=100,
        last_heard_ns=1_000_000_000,
        down_interval_ns=3_609_000_000,
        deadline_ns=4_609_000_000,
        fired_ns=4_609_200_000,
    )


def lab_preflight(tool: str, *, with_keepalived: bool) -> int | None:
    """For the benchmarks that build a namespace lab: None when they can run (and SIGTERM then unwinds like
    Ctrl-C, so the lab is torn down), else exit code 3 after saying why."""
    from ffo.lab import netns_unavailable
    from ffo.lab.keepalived import keepalived_unavailable

    for reason in (netns_unavailable(), keepalived_unavailable() if with_keepalived else None):
        if reason is not None:
            print(f"{tool}: cannot run: {reason}", file=sys.stderr)
            return 3
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return None


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt
