"""Resync throughput: a stream served in batches by `read_range` and stored by `ReplicaStore.store`.

    .venv/bin/python tools/bench_resync_store.py [--records 1000000] [--batch-records 1000]
        [--batch-bytes 1048576] [--repeat 3] [--dir DIR]

- source: `--records` small records (a Heartbeat, ~80 bytes stored) appended by `EventWriter` with the
  default policy (64 MiB segments), as a node's own stream.
- serve: `read_range` from seq 1 to the head, `--batch-records` / `--batch-bytes` a batch, each next request
  from the last `next_seq` (what a peer's resync asks for); frames stay in memory only for the batch.
- store: `ReplicaStore.store` of each batch into an empty replica, with `sync` (fdatasync) every 100 batches
  and once at the end, included in its time (the RPC actor syncs once a second from a worker thread).
- the two sides are timed separately inside one copy loop (`perf_counter` around each call); rates are the
  best of `--repeat` copies, each into a fresh replica. The files were just written: a warm page cache.
- then: one `read_range` of 1000 records starting deep inside a 64 MiB segment (the bisection by probes),
  and `stream_head` (the tail of the newest segment), in ms.

Correctness is checked, not assumed: the replica's segments must be byte-identical to the source's.
The log goes to `--dir` (default: a temporary directory next to the repository, on its file system).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from ffo.bus import Heartbeat
from ffo.clock import SystemClock
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.ranges import read_range, stream_head
from ffo.eventlog.reader import list_segments
from ffo.eventlog.writer import EventWriter
from ffo.rpc.replica import ReplicaStore

REPO = Path(__file__).resolve().parents[1]
NODE, STREAM = "lb1", "vrrp"
SYNC_EVERY_BATCHES = 100


def write_source(events_dir: Path, count: int) -> tuple[float, int]:
    """The source stream (appends per second, bytes on disk)."""
    clock = SystemClock()
    policy = LogPolicy(retain_bytes=1 << 40)
    start = time.perf_counter()
    with EventWriter.open(events_dir / STREAM, node=NODE, stream=STREAM, clock=clock, policy=policy) as writer:
        mono, ts = clock.monotonic_ns(), clock.wall_ns()
        for n in range(count):
            beat = Heartbeat(actor="vrrp", pid=4242, seq=n, loop_lag_ns=n % 5000)
            writer.append(beat, mono_ns=mono + n, ts_ns=ts + n)
            if n % 10_000 == 9_999:
                writer.sync()
    elapsed = time.perf_counter() - start
    return count / elapsed, sum(path.stat().st_size for _, path in list_segments(events_dir / STREAM))


def copy(source: Path, replica_dir: Path, batch_records: int, batch_bytes: int) -> tuple[float, float, int, int]:
    """Seconds serving, seconds storing, records and frame bytes copied."""
    serve = store = 0.0
    records = frame_bytes = batches = 0
    next_seq = 1
    with ReplicaStore.open(replica_dir, local_node="bench", policy=LogPolicy(retain_bytes=1 << 40)) as replica:
        while True:
            start = time.perf_counter()
            found = read_range(source, next_seq, max_records=batch_records, max_bytes=batch_bytes)
            middle = time.perf_counter()
            if not found.frames:
                serve += middle - start
                break
            result = replica.store(NODE, STREAM, found.frames)
            batches += 1
            if batches % SYNC_EVERY_BATCHES == 0:
                replica.sync()
            end = time.perf_counter()
            serve, store = serve + middle - start, store + end - middle
            assert result.stored == len(found.frames) and found.damage is None, (result, found.damage)
            records += result.stored
            frame_bytes += sum(len(frame) for frame in found.frames)
            next_seq = found.next_seq
        start = time.perf_counter()
        replica.sync()
        store += time.perf_counter() - start
    return serve, store, records, frame_bytes


def identical(source: Path, replica: Path) -> bool:
    ours, theirs = list_segments(source), list_segments(replica)
    same_names = [first for first, _ in ours] == [first for first, _ in theirs]
    return same_names and all(a.read_bytes() == b.read_bytes() for (_, a), (_, b) in zip(ours, theirs, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description="read_range and ReplicaStore.store throughput.")
    parser.add_argument("--records", type=int, default=1_000_000, help="records in the stream (default 1000000)")
    parser.add_argument("--batch-records", type=int, default=1000, help="records per batch (default 1000)")
    parser.add_argument("--batch-bytes", type=int, default=1 << 20, help="bytes per batch (default 1 MiB)")
    parser.add_argument("--repeat", type=int, default=3, help="copies; the best is kept (default 3)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary dir)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix=".bench-resync-", dir=args.dir or REPO))
    try:
        run(base, args)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run(base: Path, args: argparse.Namespace) -> None:
    events = base / "events"
    appends, size = write_source(events, args.records)
    source = events / STREAM
    segments = list_segments(source)
    print(f"source: {args.records:,} records, {size / 1e6:,.1f} MB in {len(segments)} segments")
    print(f"  written by EventWriter at {appends:,.0f} appends/s")
    print(f"batches of at most {args.batch_records} records / {args.batch_bytes:,} bytes")
    best_serve = best_store = float("inf")
    records = frame_bytes = 0
    for attempt in range(args.repeat):
        replica = base / f"replica{attempt}"
        serve, store, records, frame_bytes = copy(source, replica, args.batch_records, args.batch_bytes)
        assert records == args.records, records
        assert identical(source, replica / NODE / STREAM), "the replica differs from the source"
        best_serve, best_store = min(best_serve, serve), min(best_store, store)
        shutil.rmtree(replica)
    megabytes = frame_bytes / 1e6
    print(f"{'side':<28} {'records/s':>12} {'MB/s':>8} {'s':>7}")
    for name, seconds in (("serve (read_range)", best_serve), ("store (store + sync)", best_store)):
        print(f"{name:<28} {records / seconds:>12,.0f} {megabytes / seconds:>8.1f} {seconds:>7.2f}")
    both = best_serve + best_store
    print(f"{'copy (both, one thread)':<28} {records / both:>12,.0f} {megabytes / both:>8.1f} {both:>7.2f}")
    print("replica segments byte-identical to the source: yes")
    latencies(source, segments, args.repeat)


def latencies(source: Path, segments: list[tuple[int, Path]], repeat: int) -> None:
    first, path = max(segments, key=lambda item: item[1].stat().st_size)
    following = [seq for seq, _ in segments if seq > first]
    deep = first + ((following[0] if following else stream_head(source) + 1) - first) * 3 // 4
    seek = head = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        found = read_range(source, deep, max_records=1000, max_bytes=1 << 20)
        seek = min(seek, time.perf_counter() - start)
        assert found.first_seq == deep and len(found.frames) == 1000
        start = time.perf_counter()
        stream_head(source)
        head = min(head, time.perf_counter() - start)
    size = path.stat().st_size / 1e6
    print(f"read_range of 1000 records from seq {deep:,} (3/4 into a {size:.0f} MB segment): {seek * 1e3:.2f} ms")
    print(f"stream_head: {head * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
