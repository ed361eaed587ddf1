"""Reading: damage in an older segment reported with its file and offset and read past, streams merged by
monotonic time, a writer's unfinished tail seen as a tail, and following a live stream."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from ffo.eventlog.frame import MAGIC, ProblemKind
from ffo.eventlog.reader import Corruption, follow, list_segments, list_streams, read_merged, read_stream
from ffo.eventlog.record import Record
from tests.eventlog.helpers import Tick, fake_clock, open_writer, read_all, read_clean


def write_segments(directory: Path, count: int = 30) -> list[tuple[int, Path]]:
    with open_writer(directory, segment_max_bytes=400) as writer:
        for n in range(count):
            writer.append(Tick(n=n, note="older segments get damaged"), mono_ns=1000 + n)
    segments = list_segments(directory)
    assert len(segments) >= 3
    return segments


def frame_offsets(path: Path) -> list[int]:
    """Where each record of a clean segment starts."""
    offsets, offset, data = [], len(MAGIC), path.read_bytes()
    while offset < len(data):
        offsets.append(offset)
        offset += 8 + int.from_bytes(data[offset + 4 : offset + 8], "little")
    return offsets


def test_flipped_bits_in_an_older_segment_are_reported_and_read_past(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    segments = write_segments(directory)
    first_seq, older = segments[1]
    starts = frame_offsets(older)
    data = bytearray(older.read_bytes())
    data[starts[1] + 30] ^= 0x04  # the second record of the segment
    data[starts[1] + 31] ^= 0x80
    older.write_bytes(bytes(data))
    records, damage = read_all(directory)
    assert [record.seq for record in records] == [seq for seq in range(1, 31) if seq != first_seq + 1]
    corrupt, gap = damage
    assert (corrupt.segment, corrupt.offset, corrupt.end_offset) == (older, starts[1], starts[2])
    assert (corrupt.kind, corrupt.is_tail) == (ProblemKind.BAD_CHECKSUM, False)
    assert str(older) in corrupt.describe() and f"bytes {starts[1]}..{starts[2]}" in corrupt.describe()
    assert (gap.kind, gap.segment, gap.offset) == (ProblemKind.OUT_OF_SEQUENCE, older, starts[2])
    assert "1 records missing" in gap.reason


def test_a_torn_end_of_an_older_segment_is_corruption_not_a_tail(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    segments = write_segments(directory)
    _, older = segments[0]
    older.write_bytes(older.read_bytes()[:-3])
    records, damage = read_all(directory)
    assert len(records) == 29
    assert [(item.segment, item.kind, item.is_tail) for item in damage[:1]] == [(older, ProblemKind.TRUNCATED, False)]


def test_garbage_between_frames_is_skipped_with_its_range(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    _, older = write_segments(directory)[0]
    starts = frame_offsets(older)
    data = older.read_bytes()
    older.write_bytes(data[: starts[1]] + b"\x99garbage\x00\x00" + data[starts[1] :])
    records, damage = read_all(directory)
    assert len(records) == 30
    assert [(item.offset, item.end_offset, item.kind) for item in damage] == [
        (starts[1], starts[1] + 10, ProblemKind.BAD_LENGTH)
    ]


def test_a_writers_unfinished_record_is_a_tail(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    with open_writer(directory) as writer:
        for n in range(3):
            writer.append(Tick(n=n))
    [(_, segment)] = list_segments(directory)
    data = segment.read_bytes()
    segment.write_bytes(data[:-10])  # as a reader sees a write in progress
    records, damage = read_all(directory)
    assert len(records) == 2
    [tail] = damage
    assert tail.is_tail and tail.kind is ProblemKind.TRUNCATED and tail.end_offset == len(data) - 10
    assert "torn tail" in tail.describe()


def test_a_bad_header_is_reported_and_the_frames_still_read(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    _, older = write_segments(directory)[0]
    older.write_bytes(b"XXXXXXXX" + older.read_bytes()[8:])
    records, damage = read_all(directory)
    assert len(records) == 30
    assert [(item.offset, item.end_offset, item.kind) for item in damage] == [(0, 8, ProblemKind.BAD_HEADER)]


def test_reading_from_a_seq_skips_older_segments(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    segments = write_segments(directory)
    segments[0][1].write_bytes(b"damage that must not even be read")
    items = list(read_stream(directory, from_seq=segments[1][0] + 1))
    assert [item.seq for item in items if isinstance(item, Record)] == list(range(segments[1][0] + 1, 31))
    assert not [item for item in items if isinstance(item, Corruption)]


def test_streams_merge_by_monotonic_time(tmp_path: Path) -> None:
    clock = fake_clock()
    events = tmp_path / "events"
    with (
        open_writer(events / "vrrp", clock, stream="vrrp") as vrrp,
        open_writer(events / "vip", clock, stream="vip") as vip,
    ):
        for n, writer in enumerate([vrrp, vip, vip, vrrp, vrrp, vip]):
            clock.advance(10)
            writer.append(Tick(n=n))
        vip.append(Tick(n=6), mono_ns=clock.monotonic_ns())  # same time as the last one: by stream name, seq
    (events / "not-a-stream.txt").write_text("ignored")
    assert list_streams(events) == [events / "vip", events / "vrrp"]
    merged = list(read_merged(events))
    assert all(isinstance(item, Record) for item in merged)
    assert [(item.stream, item.fields["n"]) for item in merged if isinstance(item, Record)] == [
        ("vrrp", 0),
        ("vip", 1),
        ("vip", 2),
        ("vrrp", 3),
        ("vrrp", 4),
        ("vip", 5),
        ("vip", 6),
    ]


def test_damage_is_merged_in_place(tmp_path: Path) -> None:
    events = tmp_path / "events"
    write_segments(events / "a")
    shutil.copytree(events / "a", events / "b")
    _, newest = list_segments(events / "b")[-1]
    newest.write_bytes(newest.read_bytes()[:-1])
    merged = list(read_merged(events))
    damage = [index for index, item in enumerate(merged) if isinstance(item, Corruption)]
    assert len(damage) == 1 and merged[damage[0]].is_tail  # type: ignore[union-attr]
    before, after = merged[damage[0] - 1], merged[damage[0] + 1]  # b's torn seq 30 sorts where b:30 would
    assert isinstance(before, Record) and isinstance(after, Record) and (before.seq, after.seq) == (29, 30)
    assert merged[damage[0]].segment == newest  # type: ignore[union-attr]


def test_follow_yields_new_records_across_rotation_and_new_streams(tmp_path: Path) -> None:
    events = tmp_path / "events"
    with open_writer(events / "a", stream="a", segment_max_bytes=300) as writer:
        writer.append(Tick(n=0))
        new = follow(events, poll_interval_s=0.001)  # starts at the current end
        for n in range(1, 15):
            writer.append(Tick(n=n))
        got = [next(new) for _ in range(14)]
        assert [item.fields["n"] for item in got if isinstance(item, Record)] == list(range(1, 15))
        with open_writer(events / "b", stream="b") as other:
            other.append(Tick(n=100))
            item = next(new)
            assert isinstance(item, Record) and (item.stream, item.seq) == ("b", 1)
        segment = list_segments(events / "a")[-1][1]
        writer.append(Tick(n=15))
        with segment.open("ab") as file:  # a write in progress: waited for, not reported
            file.write(b"\x10\x20")
        first = next(new)
        assert isinstance(first, Record) and first.fields["n"] == 15
        later = threading.Timer(0.05, writer.append, [Tick(n=16)])  # lands after the torn bytes: now damage
        later.start()
        second, third = next(new), next(new)
        later.join()
        assert isinstance(second, Corruption) and not second.is_tail and second.end_offset - second.offset == 2
        assert isinstance(third, Record) and third.fields["n"] == 16


def test_follow_can_start_after_what_was_read(tmp_path: Path) -> None:
    events = tmp_path / "events"
    with open_writer(events / "a", stream="a", segment_max_bytes=300) as writer:
        for n in range(10):
            writer.append(Tick(n=n))
    assert len(read_clean(events / "a")) == 10
    from_start = follow(events, poll_interval_s=0.001, from_start=True)
    assert [next(from_start).seq for _ in range(10)] == list(range(1, 11))  # type: ignore[union-attr]
    after = follow(events, poll_interval_s=0.001, after={"a": 6})
    assert [next(after).seq for _ in range(4)] == [7, 8, 9, 10]  # type: ignore[union-attr]
