"""Bytes per hour of the VRRP event stream on a steady node, at 1 s, 100 ms and 10 ms advertisements.

    .venv/bin/python tools/bench_event_volume.py [--hours 1] [--intervals 1s,100ms,10ms]

A two-node cluster runs undisturbed in the simulator for the given time; each node's records (the real
`Recorder`, as the VRRP actor writes them) go through the real `EventWriter` into a temporary directory, and
the segment sizes are measured. Without coalescing, the backup alone would write one record per advertisement
(the last column: what that would cost at the measured size of one step record).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ffo.config import parse_duration
from ffo.eventlog.frame import encode_frame
from ffo.eventlog.record import Record, fields_of
from ffo.sim.cluster import Cluster
from ffo.sim.eventfiles import write_journal
from ffo.sim.journal import MemoryJournal
from ffo.sim.schedule import Scenario, node_specs
from ffo.vrrp import timers
from ffo.vrrp.record import InputApplied, PeriodicRun

S = 1_000_000_000


def steady(interval_cs: int, duration_ns: int) -> Scenario:
    interval_ns = timers.cs_to_ns(interval_cs)
    return Scenario(
        seed=0,
        nodes=node_specs([200, 100]),
        interval_cs=interval_cs,
        duration_ns=duration_ns,
        delay_min_ns=interval_ns // 10_000,
        delay_max_ns=interval_ns // 1000,
    )


def measure(interval: str, hours: float, root: Path) -> None:
    interval_cs = parse_duration(interval) // timers.NS_PER_CS
    duration_ns = int(hours * 3600 * S)
    journal = MemoryJournal()
    started = time.perf_counter()
    Cluster(scenario=steady(interval_cs, duration_ns), journal=journal).run()
    simulated = time.perf_counter() - started
    written = write_journal(journal, root / interval, wall_epoch_ns=0)
    adverts = duration_ns // timers.cs_to_ns(interval_cs)
    for node, state_dir in written.items():
        size = sum(path.stat().st_size for path in (state_dir / "events").rglob("*.log"))
        records = len(journal.streams[node])
        per_hour = size / hours
        step_size = _step_record_bytes(journal, node)
        naive = adverts / hours * step_size
        print(
            f"{interval:>6} {node:4} {records:8d} {size:10d} {per_hour / 1024:10.1f} KiB/h {adverts / hours:10.0f}/h"
            f"   {naive / 2**20:10.1f} MiB/h   (sim {simulated:.1f} s)"
        )


def _step_record_bytes(journal: MemoryJournal, node: str) -> int:
    """The framed size of one advertisement step record, as the log would store it."""
    run = next((e.record for e in journal.streams[node] if isinstance(e.record, PeriodicRun)), None)
    if run is None:
        return 0
    type_name, version, fields = fields_of(InputApplied(instance=run.instance, step=run.first))
    record = Record(
        node=node, stream="vrrp", seq=1, ts_ns=0, mono_ns=0, type=type_name, version=version, cause=None, fields=fields
    )
    return len(encode_frame(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--intervals", default="1s,100ms,10ms")
    args = parser.parse_args()
    print(f"steady 2-node cluster for {args.hours} h of simulated time; bytes of each node's VRRP stream")
    print(f"{'ivl':>6} {'node':4} {'records':>8} {'bytes':>10} {'per hour':>14} {'adverts':>11}   {'uncoalesced':>13}")
    with tempfile.TemporaryDirectory(prefix="ffo-volume-") as root:
        for interval in args.intervals.split(","):
            measure(interval.strip(), args.hours, Path(root))


if __name__ == "__main__":
    main()
