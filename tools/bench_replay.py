"""Replay rate: VRRP records read from disk, decoded and fed through the machine, per second.

    .venv/bin/python tools/bench_replay.py [--seeds 300]

The records are what the simulated nodes of `--seeds` failure schedules (3 nodes, 1 s, 60 s each) wrote, one
node after the other into one stream (as one long-lived node restarting), with the real writer; then timed in
three stages: read (frames to `Record`), decode (to the VRRP record classes, with upcasting), and replay
(through `machine.step`, comparing effects).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ffo.clock import FakeClock
from ffo.eventlog.reader import read_stream
from ffo.eventlog.record import Record, record_message
from ffo.eventlog.writer import EventWriter
from ffo.sim.cluster import Cluster
from ffo.sim.journal import MemoryJournal
from ffo.sim.schedule import generate
from ffo.vrrp.replay import replay

S = 1_000_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ffo-replay-") as root:
        stream = Path(root) / "vrrp"
        with EventWriter.open(stream, node="n", stream="vrrp", clock=FakeClock()) as writer:
            for seed in range(args.seeds):
                journal = MemoryJournal()
                Cluster(scenario=generate(seed, nodes=3, interval_cs=100, duration_ns=60 * S), journal=journal).run()
                for entries in journal.streams.values():
                    for entry in entries:
                        writer.append(entry.record, mono_ns=entry.mono_ns, ts_ns=entry.mono_ns)
        started = time.perf_counter()
        records = [item for item in read_stream(stream) if isinstance(item, Record)]
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        messages = [record_message(record) for record in records]
        decode_s = time.perf_counter() - started
        started = time.perf_counter()
        divergences = replay((f"vrrp:{i}", message) for i, message in enumerate(messages, 1))  # type: ignore[misc]
        replay_s = time.perf_counter() - started
        size = sum(path.stat().st_size for path in stream.glob("*.log"))
    diverged = len(divergences.divergences)
    count = len(records)
    print(f"{count} records ({args.seeds} seeds), {size / count:.0f} bytes each; {diverged} divergences")
    print(f"  read   {count / read_s:10,.0f} records/s")
    print(f"  decode {count / decode_s:10,.0f} records/s")
    print(f"  replay {count / replay_s:10,.0f} records/s (a run record is two machine steps)")
    total = read_s + decode_s + replay_s
    print(f"  all    {count / total:10,.0f} records/s end to end")


if __name__ == "__main__":
    main()
