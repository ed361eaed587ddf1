"""Serving ranges: frames exactly as stored across segments, within limits, found without reading the whole
log; records lost to retention, damage or a missing segment reported with where to go on; the live edge."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ffo.errors import LocalProtocolError
from ffo.eventlog.frame import MAGIC, ProblemKind, decode_frame, segment_name
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.ranges import RangeRead, read_range, stream_head, stream_heads
from ffo.eventlog.reader import list_segments
from ffo.eventlog.record import Record
from ffo.eventlog.writer import EventWriter
from tests.eventlog.helpers import NODE, Tick, fake_clock, open_writer, read_clean

UNLIMITED = {"max_records": 1_000_000, "max_bytes": 1 << 30}


def write_stream(directory: Path, count: int, *, note: str = "a record of a served stream", **policy: int) -> None:
    with EventWriter.open(directory, node=NODE, stream="s", clock=fake_clock(), policy=LogPolicy(**policy)) as writer:
        for n in range(count):
            writer.append(Tick(n=n, note=note), mono_ns=1000 + n)


def stored_frames(directory: Path) -> list[bytes]:
    """Every frame of a clean stream, cut out of its segment files by their lengths."""
    frames = []
    for _, path in list_segments(directory):
        data, offset = path.read_bytes(), len(MAGIC)
        while offset < len(data):
            end = offset + 8 + int.from_bytes(data[offset + 4 : offset + 8], "little")
            frames.append(data[offset:end])
            offset = end
    return frames


def seqs(found: RangeRead) -> list[int]:
    records = [decode_frame(frame, 0)[0] for frame in found.frames]
    assert all(isinstance(record, Record) for record in records)
    return [record.seq for record in records if isinstance(record, Record)]


def pull(directory: Path, from_seq: int, **limits: int) -> Iterator[RangeRead]:
    """Ranges one after the other, as a peer asks for them, until one returns nothing new."""
    while True:
        found = read_range(directory, from_seq, **limits)
        yield found
        if found.next_seq == from_seq and found.resume_seq is None:
            return
        from_seq = found.resume_seq if found.damage is not None and found.resume_seq else found.next_seq


@pytest.fixture
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """The bytes `os.pread` returned since the fixture was set up (ranges read only through it)."""
    total = [0]
    real = os.pread

    def pread(fd: int, length: int, offset: int) -> bytes:
        data = real(fd, length, offset)
        total[0] += len(data)
        return data

    monkeypatch.setattr(os, "pread", pread)
    return lambda: total[0]


def test_a_range_is_the_stored_frames_across_segments(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    write_stream(directory, 40, segment_max_bytes=400)
    assert len(list_segments(directory)) >= 5
    found = read_range(directory, 1, **UNLIMITED)
    assert list(found.frames) == stored_frames(directory)
    assert (found.first_seq, found.next_seq, found.head) == (1, 41, 40)
    assert (found.missing_before, found.damage, found.resume_seq) == (None, None, None)
    for batch in (1, 3, 7):
        ranges = list(pull(directory, 1, max_records=batch, max_bytes=1 << 20))
        assert [frame for found in ranges for frame in found.frames] == stored_frames(directory)
        assert all(len(found.frames) <= batch and found.head == 40 for found in ranges)


def test_limits_stop_a_range_but_one_record_always_fits(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    write_stream(directory, 20)
    size = len(stored_frames(directory)[0])
    assert seqs(read_range(directory, 4, max_records=5, max_bytes=1 << 20)) == [4, 5, 6, 7, 8]
    assert seqs(read_range(directory, 4, max_records=100, max_bytes=size * 5 // 2)) == [4, 5]
    assert seqs(read_range(directory, 4, max_records=100, max_bytes=1)) == [4]
    beyond = read_range(directory, 21, **UNLIMITED)
    assert (beyond.frames, beyond.first_seq, beyond.next_seq, beyond.head, beyond.damage) == ((), 21, 21, 20, None)
    with pytest.raises(LocalProtocolError):
        read_range(directory, 0, **UNLIMITED)


def test_a_record_larger_than_the_byte_limit_and_the_read_ahead_comes_whole(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    with open_writer(directory) as writer:
        writer.append(Tick(n=0))
        writer.append(Tick(n=1, note="x" * (3 << 20)))
        writer.append(Tick(n=2))
    found = read_range(directory, 2, max_records=10, max_bytes=1000)
    assert seqs(found) == [2] and len(found.frames[0]) > 3 << 20
    assert list(read_range(directory, 1, **UNLIMITED).frames) == stored_frames(directory)


def test_a_seq_deep_in_a_large_segment_is_found_without_reading_it(
    tmp_path: Path, counted_reads: Callable[[], int]
) -> None:
    directory = tmp_path / "s"
    write_stream(directory, 30_000)
    [(_, segment)] = list_segments(directory)
    before = counted_reads()
    found = read_range(directory, 23_456, max_records=10, max_bytes=1 << 20)
    assert seqs(found) == list(range(23_456, 23_466))
    assert found.head == 30_000
    assert counted_reads() - before < segment.stat().st_size // 4
    before = counted_reads()
    assert stream_head(directory) == 30_000
    assert counted_reads() - before <= 64 << 10


def test_earlier_segments_are_not_read(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    write_stream(directory, 40, segment_max_bytes=400)
    segments = list_segments(directory)
    for _, path in segments[:3]:  # garbage that would be damage if it were read
        path.write_bytes(MAGIC + b"\xff" * 300)
    start = segments[3][0]
    found = read_range(directory, start + 1, **UNLIMITED)
    assert seqs(found) == list(range(start + 1, 41)) and found.damage is None


def test_records_removed_by_retention_are_reported_missing(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    write_stream(directory, 40, segment_max_bytes=400)
    segments = list_segments(directory)
    for _, path in segments[:2]:
        path.unlink()
    oldest = segments[2][0]
    found = read_range(directory, 1, max_records=3, max_bytes=1 << 20)
    assert found.missing_before == (1, oldest - 1)
    assert (found.first_seq, seqs(found), found.next_seq) == (oldest, [oldest, oldest + 1, oldest + 2], oldest + 3)
    assert read_range(directory, oldest, **UNLIMITED).missing_before is None


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def frame_starts(path: Path) -> dict[int, int]:
    """seq → offset of each frame of a clean segment."""
    data, offset, starts = path.read_bytes(), len(MAGIC), {}
    while offset < len(data):
        record, end = decode_frame(data, offset)
        assert isinstance(record, Record)
        starts[record.seq] = offset
        offset = end
    return starts


def test_a_corrupt_frame_ends_the_range_and_says_where_to_go_on(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    write_stream(directory, 40, segment_max_bytes=400)
    _, older = list_segments(directory)[2]
    starts = frame_starts(older)
    bad = sorted(starts)[1]
    flip(older, starts[bad] + 20)
    found = read_range(directory, 1, **UNLIMITED)
    assert seqs(found) == list(range(1, bad)) and found.next_seq == bad
    assert found.damage is not None and found.damage.kind is ProblemKind.BAD_CHECKSUM
    assert (found.damage.segment, found.damage.offset, found.damage.is_tail) == (older, starts[bad], False)
    assert (found.damage.end_offset, found.resume_seq) == (starts[bad + 1], bad + 1)
    at_it = read_range(directory, bad, **UNLIMITED)
    assert (at_it.frames, at_it.next_seq, at_it.resume_seq) == ((), bad, bad + 1)
    after = read_range(directory, bad + 1, **UNLIMITED)
    assert seqs(after) == list(range(bad + 1, 41)) and after.damage is None


def test_damage_that_lost_no_record_is_reported_once(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    write_stream(directory, 10)
    [(_, segment)] = list_segments(directory)
    starts = frame_starts(segment)
    data = segment.read_bytes()
    segment.write_bytes(data[: starts[6]] + b"\x00" * 50 + data[starts[6] :])
    found = read_range(directory, 1, **UNLIMITED)
    assert seqs(found) == [1, 2, 3, 4, 5] and found.resume_seq == 6 == found.next_seq
    assert found.damage is not None and found.damage.offset == starts[6]
    again = read_range(directory, 6, **UNLIMITED)
    assert seqs(again) == [6, 7, 8, 9, 10] and again.damage is None


def test_damage_followed_by_a_record_larger_than_a_probe_window(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    with open_writer(directory) as writer:
        for n in range(5):
            writer.append(Tick(n=n, note="x" * (200_000 if n == 3 else 10)))
    [(_, segment)] = list_segments(directory)
    starts = frame_starts(segment)
    flip(segment, starts[3] + 1)  # the checksum of the big 3: the resync must cross it to find 4
    found = read_range(directory, 2, **UNLIMITED)
    assert (seqs(found), found.resume_seq) == ([2], 4)
    flip(segment, starts[3] + 1)
    flip(segment, starts[2] + 1)  # now 2 is bad and the big 3, which no probe window holds, follows it
    found = read_range(directory, 1, **UNLIMITED)
    assert (seqs(found), found.resume_seq) == ([1], 3)


def test_a_missing_segment_is_a_hole_with_where_to_go_on(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    write_stream(directory, 40, segment_max_bytes=400)
    segments = list_segments(directory)
    segments[2][1].unlink()
    found = read_range(directory, 1, **UNLIMITED)
    assert seqs(found) == list(range(1, segments[2][0]))
    assert found.damage is not None and found.damage.kind is ProblemKind.OUT_OF_SEQUENCE
    assert found.resume_seq == segments[3][0]
    assert found.head == 40


def test_a_torn_end_of_an_older_segment_is_damage(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    write_stream(directory, 40, segment_max_bytes=400)
    segments = list_segments(directory)
    older = segments[1][1]
    older.write_bytes(older.read_bytes()[:-3])
    found = read_range(directory, 1, **UNLIMITED)
    last = segments[2][0] - 1
    assert seqs(found) == list(range(1, last))
    assert found.damage is not None and found.damage.kind is ProblemKind.TRUNCATED
    assert found.resume_seq == last + 1


def test_the_live_tail_ends_a_range_without_damage(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    write_stream(directory, 12, segment_max_bytes=400)
    _, newest = list_segments(directory)[-1]
    last = stored_frames(directory)[-1]
    with newest.open("ab") as file:
        file.write(last[: len(last) // 2])  # a writer half way through its next append
    found = read_range(directory, 1, **UNLIMITED)
    assert seqs(found) == list(range(1, 13))
    assert (found.damage, found.resume_seq, found.head) == (None, None, 12)
    assert stream_heads(tmp_path) == {"s": 12}


def test_heads_of_every_stream_including_empty_and_torn_ones(tmp_path: Path) -> None:
    write_stream(tmp_path / "a", 50, segment_max_bytes=400)
    write_stream(tmp_path / "b", 3)
    (tmp_path / "c").mkdir()
    write_stream(tmp_path / "d", 7)
    (tmp_path / "d" / segment_name(8)).write_bytes(MAGIC)  # rotated, nothing written yet
    write_stream(tmp_path / "e", 9)
    _, newest = list_segments(tmp_path / "e")[-1]
    with newest.open("ab") as file:
        file.write(b"\x00" * (300 << 10))  # a long zero-filled tail, as a crash can leave
    write_stream(tmp_path / "f", 2, note="y" * (100 << 10))  # records larger than the first look at the tail
    assert stream_heads(tmp_path) == {"a": 50, "b": 3, "c": 0, "d": 7, "e": 9, "f": 2}
    assert read_range(tmp_path / "d", 8, **UNLIMITED).head == 7
    assert read_range(tmp_path / "c", 1, **UNLIMITED) == RangeRead(frames=(), first_seq=1, next_seq=1, head=0)


def test_reading_while_a_writer_appends_and_rotates(tmp_path: Path) -> None:
    """A range taken between appends ends at a record boundary; pulling on reaches every record in order."""
    directory = tmp_path / "s"
    pulled: list[bytes] = []
    next_seq = 1
    with open_writer(directory, segment_max_bytes=600) as writer:
        for n in range(60):
            writer.append(Tick(n=n))
            if n % 7 == 0:
                found = read_range(directory, next_seq, max_records=4, max_bytes=1 << 20)
                assert found.damage is None and found.head == n + 1
                pulled += found.frames
                next_seq = found.next_seq
    pulled += read_range(directory, next_seq, **UNLIMITED).frames
    assert pulled == stored_frames(directory)
    assert [record.seq for record in read_clean(directory)] == list(range(1, 61))


def test_every_start_is_found_in_segments_large_enough_to_bisect(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    write_stream(directory, 20_000, segment_max_bytes=600 << 10)
    firsts = [first for first, _ in list_segments(directory)]
    assert len(firsts) >= 3
    starts = {1, 20_000, *firsts, *(first - 1 for first in firsts[1:]), *range(1, 20_001, 997)}
    for start in sorted(starts):
        found = read_range(directory, start, max_records=3, max_bytes=1 << 20)
        assert seqs(found) == list(range(start, min(start + 3, 20_001))), start
        assert (found.damage, found.head) == (None, 20_000)
