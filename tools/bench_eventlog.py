"""Rates of the event log (ffo.eventlog): append, read, decode, recovery on open, and bytes per event.

    .venv/bin/python tools/bench_eventlog.py [--seconds 1] [--repeat 3] [--recovery-mb 200] [--dir DIR]

- append, group commit: `EventWriter.append` on an asyncio loop while `run_group_commit` fdatasyncs every
  10 ms in a worker thread (the daemon's setup); the loop gets control every 100 appends.
- append, fsync per record: `append` then `sync` each time: what durability-at-once would cost.
- read: `read_stream` (frame checks, msgpack, `Record`s); decode: `record_message` on each record read.
- recovery: `EventWriter.open` on a stream of `--recovery-mb` MB, (a) in 64 MiB segments, where only the
  newest segment is checked, and (b) as one segment, the worst case, reported per GB. The files were just
  written, so this is with a warm page cache.
- where the time goes: the parts of one append and one read, in µs, each timed alone.

Cases: a Heartbeat (4 scalar fields) and a VRRP `Transitioned` effect with its cause in a message (as in
tools/bench_codec_bus.py). Rates are the best of `--repeat` runs (the least disturbed by a noisy machine).
The log goes to `--dir` (default: a temporary directory next to the repository, on its file system).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import attrs
from benchlib import rate, sample_cause

from ffo.bus import Heartbeat, message
from ffo.clock import SystemClock
from ffo.eventlog.committer import run_group_commit
from ffo.eventlog.frame import MAGIC, FrameEncoder, decode_frame, segment_name
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.reader import read_stream
from ffo.eventlog.record import Record, fields_of, record_message
from ffo.eventlog.writer import EventWriter
from ffo.vrrp.effects import Effect, Transitioned
from ffo.vrrp.state import Role

GROUP_COMMIT_NS = 10_000_000
REPO = Path(__file__).resolve().parents[1]


@message("bench.eventlog.effect_emitted", version=1)
@attrs.frozen(kw_only=True)
class EffectEmitted:
    instance: str
    effect: Effect


def cases() -> list[tuple[str, Callable[[int], object]]]:
    cause = sample_cause()
    transitioned = EffectEmitted(
        instance="web", effect=Transitioned(from_role=Role.BACKUP, to_role=Role.MASTER, cause=cause)
    )
    return [
        ("Heartbeat", lambda n: Heartbeat(actor="vrrp", pid=4242, seq=n, loop_lag_ns=120_000)),
        ("Transitioned", lambda n: transitioned),
    ]


def open_writer(directory: Path, **policy: int) -> EventWriter:
    shutil.rmtree(directory, ignore_errors=True)
    return EventWriter.open(directory, node="lb1", stream="vrrp", clock=SystemClock(), policy=LogPolicy(**policy))


def append_group_commit(directory: Path, make: Callable[[int], object], seconds: float) -> tuple[float, int]:
    """Appends per second with the committer running, and how many fdatasyncs it made."""

    async def run() -> tuple[float, int]:
        with open_writer(directory) as writer:
            committer = asyncio.create_task(run_group_commit(writer, GROUP_COMMIT_NS))
            messages = [make(n) for n in range(100)]
            count, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds:
                for item in messages:
                    writer.append(item, cause="vrrp:1")
                count += len(messages)
                await asyncio.sleep(0)
            committer.cancel()
            syncs = writer.status.syncs
        return count / elapsed, syncs

    return asyncio.run(run())


def append_fsync_each(directory: Path, make: Callable[[int], object], seconds: float) -> float:
    with open_writer(directory) as writer:
        item, count, start = make(0), 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(10):
                writer.append(item, cause="vrrp:1")
                writer.sync()
            count += 10
    return count / elapsed


def write_log(directory: Path, make: Callable[[int], object], count: int, segment_bytes: int) -> int:
    """A stream of `count` records written straight through a FrameEncoder, in big writes; its size."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    encoder = FrameEncoder("lb1", "vrrp")
    type_name, version, fields = fields_of(make(0))
    ts, mono, total = time.time_ns(), time.monotonic_ns(), 0
    seq, chunk, file, size = 1, bytearray(), None, 0
    while seq <= count:
        frame = encoder.encode(
            type_name, version, seq=seq, ts_ns=ts + seq, mono_ns=mono + seq, cause=None, fields=fields
        )
        if file is None or size + len(chunk) + len(frame) > segment_bytes:
            if file is not None:
                file.write(chunk)
                file.close()
                total += size + len(chunk)
            file, chunk, size = (directory / segment_name(seq)).open("wb"), bytearray(MAGIC), 0
        chunk += frame
        if len(chunk) > 1 << 20:
            file.write(chunk)
            size += len(chunk)
            chunk = bytearray()
        seq += 1
    assert file is not None
    file.write(chunk)
    file.close()
    return total + size + len(chunk)


def read_rates(directory: Path, repeat: int) -> tuple[float, float, int]:
    """Records read per second, streaming (as `ffo events` reads: each record used, then dropped), and
    records turned into messages per second."""
    best_read = best_decode = 0.0
    records = [item for item in read_stream(directory) if isinstance(item, Record)]
    for _ in range(repeat):
        start = time.perf_counter()
        for _item in read_stream(directory):
            pass
        best_read = max(best_read, len(records) / (time.perf_counter() - start))
        start = time.perf_counter()
        for record in records:
            record_message(record)
        best_decode = max(best_decode, len(records) / (time.perf_counter() - start))
    return best_read, best_decode, len(records)


def open_time(directory: Path, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        writer = EventWriter.open(
            directory, node="lb1", stream="vrrp", clock=SystemClock(), policy=LogPolicy(retain_bytes=1 << 40)
        )
        best = min(best, time.perf_counter() - start)
        writer.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description="Append, read, decode and recovery rates of the event log.")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one rate run (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is kept (default 3)")
    parser.add_argument("--recovery-mb", type=int, default=200, help="size of the log opened (default 200)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary dir)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix=".bench-eventlog-", dir=args.dir or REPO))
    try:
        run(base, args)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run(base: Path, args: argparse.Namespace) -> None:
    columns = ("B/event", "append/s gc", "syncs/s", "append/s fsync", "read/s", "decode/s")
    print(f"{'case':<13}" + "".join(f" {column:>14}" for column in columns))
    for name, make in cases():
        appended, syncs = max(append_group_commit(base / name, make, args.seconds) for _ in range(args.repeat))
        each = max(append_fsync_each(base / name, make, args.seconds / 2) for _ in range(args.repeat))
        size = write_log(base / name, make, 200_000, 64 << 20)
        read, decode, count = read_rates(base / name, args.repeat)
        per_event = (size - len(MAGIC)) / count
        figures = (per_event, appended, syncs / args.seconds, each, read, decode)
        print(f"{name:<13}" + "".join(f" {figure:>14,.0f}" for figure in figures))
    breakdown(base / "parts", args)
    recovery(base / "recovery", args)


def breakdown(directory: Path, args: argparse.Namespace) -> None:
    """The parts of one append and one read of a Heartbeat, each timed alone (µs per call)."""
    message = cases()[0][1](1)
    type_name, version, fields = fields_of(message)
    encoder = FrameEncoder("lb1", "vrrp")
    frame = encoder.encode(type_name, version, seq=1, ts_ns=1, mono_ns=2, cause="vrrp:1", fields=fields)
    record, _ = decode_frame(frame, 0)
    assert isinstance(record, Record)
    with open_writer(directory) as writer:
        fd = os.open(directory / "raw", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        encode = functools.partial(
            encoder.encode, type_name, version, seq=1, ts_ns=1, mono_ns=2, cause="vrrp:1", fields=fields
        )
        parts: list[tuple[str, Callable[[], object]]] = [
            ("append: fields_of (the bus converter's unstructure)", functools.partial(fields_of, message)),
            ("append: FrameEncoder.encode (msgpack, crc32)", encode),
            ("append: os.write of one frame (O_APPEND)", functools.partial(os.write, fd, frame)),
            ("append: the whole EventWriter.append", functools.partial(writer.append, message, cause="vrrp:1")),
            ("read: decode_frame (crc32, msgpack, Record)", functools.partial(decode_frame, frame, 0)),
            ("decode: record_message (the converter's structure)", functools.partial(record_message, record)),
        ]
        print("\nwhere the time goes (Heartbeat, µs per call)")
        for label, action in parts:
            print(f"  {label:<52} {1e6 / rate(action, args.seconds / 4, args.repeat):>6.2f}")
        os.close(fd)


def recovery(directory: Path, args: argparse.Namespace) -> None:
    name, make = cases()[0]
    count = args.recovery_mb * 1_000_000 // 99
    print(f"\nrecovery: EventWriter.open on a {args.recovery_mb} MB stream of {count:,} {name} records (warm cache)")
    for layout, segment_bytes in (("in 64 MiB segments", 64 << 20), ("as one segment", 1 << 40)):
        size = write_log(directory, make, count, segment_bytes)
        newest = max(directory.iterdir()).stat().st_size
        seconds = open_time(directory, args.repeat)
        checked = f"checks the newest segment, {newest / 1e6:,.0f} MB of {size / 1e6:,.0f}"
        cost = f"{seconds * 1000:,.1f} ms = {seconds * 1000 / (newest / 1e9):,.0f} ms per GB checked"
        print(f"  {layout:<19} open {checked:<42} {cost}")


if __name__ == "__main__":
    main()
