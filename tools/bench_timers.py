"""Lateness of a periodic timer in a VRRP-like process: asyncio.sleep vs the timerfd DeadlineWaiter.

    .venv/bin/python tools/bench_timers.py [--seconds 5] [--period-ms 10] [--rt-priority 50] [--load-procs 2]

For each timer mechanism, idle and with every core busy, without and with SCHED_FIFO, a fresh child process
does what the VRRP actor will: `tune_for_timers` (gc.freeze, optional real-time priority), then waits for
absolute deadlines start + k x period and records `woke - deadline` (woke = when the waiting task resumed).
Each configuration runs in its own process so that real-time scheduling never leaks into the next one. The
load is `--load-procs` busy-loop children, started here and killed by PID when the loaded rows are done.

Mechanisms:
- `asyncio.sleep`: `DeadlineWaiter(use_timerfd=False)`, i.e. loop.call_later/call_at, which the selector
  rounds up to whole milliseconds (what the heartbeat task and most asyncio code do).
- `timerfd`: `DeadlineWaiter()`, an absolute CLOCK_MONOTONIC timerfd watched with loop.add_reader.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

from ffo.timing import DeadlineWaiter, LatenessTracker, tune_for_timers

REPO = Path(__file__).resolve().parents[1]
MECHANISMS = {"asyncio.sleep": False, "timerfd": True}
WARMUP_TICKS = 10  # start-up jitter (first page faults, first epoll registration) is not steady state


async def measure(use_timerfd: bool, seconds: float, period_ns: int) -> tuple[LatenessTracker, str]:
    ticks = int(seconds * 1e9 / period_ns)
    tracker = LatenessTracker(capacity=max(ticks, 1))
    with DeadlineWaiter(use_timerfd=use_timerfd) as waiter:
        start = time.monotonic_ns() + period_ns
        for tick in range(-WARMUP_TICKS, ticks):
            deadline = start + (tick + WARMUP_TICKS) * period_ns
            woke = await waiter.wait_until(deadline)
            if tick >= 0:
                tracker.record(woke - deadline)
        return tracker, waiter.mode


def worker(args: argparse.Namespace) -> None:
    notes = tune_for_timers(args.rt)
    tracker, mode = asyncio.run(measure(args.worker == "timerfd", args.seconds, int(args.period_ms * 1e6)))
    snapshot = tracker.snapshot()
    report = {
        "mode": mode,
        "notes": notes,
        "count": snapshot.count,
        "p50_ns": snapshot.p50_ns,
        "p99_ns": snapshot.p99_ns,
        "max_ns": snapshot.max_ns,
    }
    print(json.dumps(report))


def run_worker(mechanism: str, rt: int, args: argparse.Namespace) -> dict[str, object]:
    command = [sys.executable, __file__, "--worker", mechanism, "--rt", str(rt)]
    command += ["--seconds", str(args.seconds), "--period-ms", str(args.period_ms)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env, timeout=args.seconds + 60)
    report: dict[str, object] = json.loads(result.stdout)
    return report


def start_load(count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def stop_load(loaders: list[subprocess.Popen[bytes]]) -> None:
    for loader in loaders:
        if loader.poll() is None:
            os.kill(loader.pid, signal.SIGKILL)
        loader.wait()


def ms(ns: object) -> str:
    assert isinstance(ns, int)
    return f"{ns / 1e6:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per configuration")
    parser.add_argument("--period-ms", type=float, default=10.0)
    parser.add_argument("--rt-priority", type=int, default=50, help="SCHED_FIFO priority for the RT rows")
    parser.add_argument("--load-procs", type=int, default=os.cpu_count() or 2, help="busy loops for 'loaded'")
    parser.add_argument("--worker", choices=sorted(MECHANISMS), help=argparse.SUPPRESS)
    parser.add_argument("--rt", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    print(f"# {platform.node()}: Linux {platform.release()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"# periodic {args.period_ms:g} ms timer, {args.seconds:g} s per row, lateness = woke - deadline (ms)\n")
    print("| timer | load | scheduling | samples | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    notes: set[str] = set()
    for load in ("idle", f"{args.load_procs} busy loops"):
        loaders = start_load(args.load_procs) if load != "idle" else []
        try:
            for mechanism in MECHANISMS:
                for rt in (0, args.rt_priority):
                    report = run_worker(mechanism, rt, args)
                    rt_notes = [str(note) for note in report["notes"] if "realtime" in str(note)]  # type: ignore[attr-defined]
                    refused = any("not applied" in note for note in rt_notes)
                    notes.update(rt_notes if refused else [])
                    scheduling = f"SCHED_FIFO {rt}" + (" (refused)" if refused else "") if rt else "normal"
                    timer = mechanism if report["mode"] == "timerfd" or mechanism != "timerfd" else "sleep (no timerfd)"
                    cells = [timer, load, scheduling, str(report["count"])]
                    cells += [ms(report["p50_ns"]), ms(report["p99_ns"]), ms(report["max_ns"])]
                    print("| " + " | ".join(cells) + " |", flush=True)
        finally:
            stop_load(loaders)
    for note in sorted(notes):
        print(f"\nnote: {note}")


if __name__ == "__main__":
    main()
