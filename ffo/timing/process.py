"""Process settings that keep a timer-serving process responsive: a frozen heap and optional real-time priority.

Two measured threats to a 10 ms VRRP timer (issue 3, BENCHMARKS.md): a full garbage collection walking a big
start-up heap (~100 ms with scapy imported), and CPU contention (two busy cores delay a 10 ms asyncio timer by
up to 12 ms; SCHED_FIFO brings that down to ~2.5 ms).

- `gc.collect()` then `gc.freeze()` once start-up is over: the start-up garbage is freed, and the surviving
  long-lived objects (modules, classes, config) move to the permanent generation, so later collections only
  walk what the running actor allocates.
- `realtime_priority` 1..99 asks for SCHED_FIFO at that priority, as keepalived's `vrrp_rt_priority` does
  (keepalived uses SCHED_RR; with one real-time thread per process the two behave the same). It is combined
  with SCHED_RESET_ON_FORK so that nothing this process starts inherits real-time scheduling. The kernel's
  RT throttling (`kernel.sched_rt_runtime_us`, 95 % by default) still leaves the rest of the system a share
  of the CPU should the actor spin.

A refused real-time request (no CAP_SYS_NICE, RLIMIT_RTPRIO, an RT-less cgroup) is not an error: the daemon
still works, only with less margin, so it comes back as a note for the log and `status`. A priority outside
0..99 is a configuration bug and raises.
"""

from __future__ import annotations

import errno
import gc
import os

MAX_RT_PRIORITY = 99


def tune_for_timers(realtime_priority: int) -> list[str]:
    """Freeze the heap and, for 1..99, ask for SCHED_FIFO; return one human-readable note per setting.

    Call it once, after start-up (imports, config, sockets) and before serving timers. The scheduling change
    applies to the calling thread (Linux `sched_setscheduler(0, ...)`), which is the event loop's thread.
    """
    if isinstance(realtime_priority, bool) or not 0 <= realtime_priority <= MAX_RT_PRIORITY:
        raise ValueError(f"realtime_priority: {realtime_priority!r} is not in 0..{MAX_RT_PRIORITY}")
    notes = [_freeze_heap()]
    if realtime_priority:
        notes.append(_request_fifo(realtime_priority))
    return notes


def _freeze_heap() -> str:
    collected = gc.collect()
    gc.freeze()
    return f"gc: collected {collected} start-up objects, froze {gc.get_freeze_count()} long-lived ones"


def _request_fifo(priority: int) -> str:
    setscheduler = getattr(os, "sched_setscheduler", None)
    if setscheduler is None:
        return f"realtime_priority {priority} not applied: this platform has no sched_setscheduler"
    policy = os.SCHED_FIFO | getattr(os, "SCHED_RESET_ON_FORK", 0)
    try:
        setscheduler(0, policy, os.sched_param(priority))
    except OSError as error:
        reason = error.strerror or str(error)
        hint = " (needs root or CAP_SYS_NICE, or a RLIMIT_RTPRIO that allows it)" if error.errno == errno.EPERM else ""
        return f"realtime_priority {priority} not applied: SCHED_FIFO refused: {reason}{hint}"
    return f"realtime_priority {priority} applied: SCHED_FIFO (reset on fork) for pid {os.getpid()}"
