"""Recovery on open: a torn or corrupt tail of the newest segment is cut and reported, nothing before it lost."""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path

import pytest

from ffo.eventlog.frame import MAGIC, ProblemKind
from ffo.eventlog.reader import list_segments
from tests.eventlog.helpers import Tick, open_writer, read_all, read_clean

RECORDS = 6


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    """A one-segment stream of RECORDS records, and the offset where each record's frame ends."""
    directory = tmp_path_factory.mktemp("template") / "s"
    ends = []
    with open_writer(directory) as writer:
        for n in range(RECORDS):
            writer.append(Tick(n=n, note="x" * n), cause=f"s:{n}" if n else None)
            ends.append(writer.status.bytes_written + len(MAGIC))
    return directory, ends


def cut_copy(template: Path, target: Path, size: int) -> Path:
    shutil.copytree(template, target)
    [(_, segment)] = list_segments(target)
    with segment.open("r+b") as file:
        file.truncate(size)
    return segment


def check_recovered(directory: Path, segment: Path, cut: int, ends: list[int]) -> None:
    """After a cut at `cut`: exactly the complete records before it are kept, and appending continues."""
    kept = sum(1 for end in ends if end <= cut)
    good_end = ends[kept - 1] if kept else len(MAGIC)
    start = 0 if cut < len(MAGIC) else good_end  # a torn header: the whole file is rewritten
    with open_writer(directory) as writer:
        report = writer.recovery
        if cut == start == good_end:
            assert report is None, cut
        else:
            assert report is not None, cut
            assert (report.segment, report.offset, report.bytes_dropped) == (segment, start, cut - start)
        assert writer.status.next_seq == kept + 1
        assert writer.append(Tick(n=99)) == kept + 1
    records = read_clean(directory)
    assert [record.seq for record in records] == list(range(1, kept + 2))
    assert [record.fields["n"] for record in records] == [*range(kept), 99]


def test_a_cut_at_every_byte_of_the_last_record(template: tuple[Path, list[int]], tmp_path: Path) -> None:
    directory, ends = template
    for cut in range(ends[-2], ends[-1] + 1):
        target = tmp_path / f"cut{cut}"
        check_recovered(target, cut_copy(directory, target, cut), cut, ends)


def test_cuts_at_random_offsets_across_the_file(template: tuple[Path, list[int]], tmp_path: Path) -> None:
    directory, ends = template
    chance = random.Random(20261127)
    for cut in sorted({0, 1, 7, 8, *(chance.randrange(0, ends[-1]) for _ in range(40))}):
        target = tmp_path / f"cut{cut}"
        check_recovered(target, cut_copy(directory, target, cut), cut, ends)


def test_a_corrupt_tail_is_cut_and_its_reason_reported(template: tuple[Path, list[int]], tmp_path: Path) -> None:
    directory, ends = template
    target = tmp_path / "flipped"
    shutil.copytree(directory, target)
    [(_, segment)] = list_segments(target)
    data = bytearray(segment.read_bytes())
    data[ends[-2] + 12] ^= 0x10  # inside the last record's body
    segment.write_bytes(bytes(data) + b"\x00" * 100)  # and zeros after it, as a crash can leave
    with open_writer(target) as writer:
        assert writer.recovery is not None
        assert writer.recovery.kind is ProblemKind.BAD_CHECKSUM
        assert (writer.recovery.offset, writer.recovery.bytes_dropped) == (ends[-2], ends[-1] - ends[-2] + 100)
        assert writer.append(Tick(n=99)) == RECORDS
    assert [record.fields["n"] for record in read_clean(target)] == [*range(RECORDS - 1), 99]


def test_corruption_inside_the_newest_segment_is_kept_for_the_reader(
    template: tuple[Path, list[int]], tmp_path: Path
) -> None:
    """Damage followed by good records is not a tail: truncating there would throw the good records away."""
    directory, ends = template
    target = tmp_path / "middle"
    shutil.copytree(directory, target)
    [(_, segment)] = list_segments(target)
    data = bytearray(segment.read_bytes())
    data[ends[1] + 12] ^= 0x10  # the third record
    segment.write_bytes(bytes(data))
    with open_writer(target) as writer:
        assert writer.recovery is None
        assert writer.append(Tick(n=99)) == RECORDS + 1
    records, damage = read_all(target)
    assert [record.seq for record in records] == [1, 2, 4, 5, 6, 7]
    assert [(item.offset, item.kind, item.is_tail) for item in damage] == [
        (ends[1], ProblemKind.BAD_CHECKSUM, False),
        (ends[2], ProblemKind.OUT_OF_SEQUENCE, False),
    ]
    assert damage[0].end_offset == ends[2]


def test_a_stream_whose_newest_segment_lost_every_record_continues_from_its_name(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    with open_writer(directory, segment_max_bytes=200) as writer:
        for n in range(5):
            writer.append(Tick(n=n))
    first, newest = list_segments(directory)[-1]
    newest.write_bytes(newest.read_bytes()[: len(MAGIC) + 5])
    with open_writer(directory, segment_max_bytes=200) as writer:
        assert writer.recovery is not None and writer.recovery.offset == len(MAGIC)
        assert writer.append(Tick(n=99)) == first
    assert [record.seq for record in read_clean(directory)] == list(range(1, first + 1))


def test_a_damaged_header_before_good_frames_is_reported_not_cut(
    template: tuple[Path, list[int]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory, _ = template
    target = tmp_path / "header"
    shutil.copytree(directory, target)
    [(_, segment)] = list_segments(target)
    segment.write_bytes(b"FFOLOG9\n" + segment.read_bytes()[len(MAGIC) :])
    with caplog.at_level(logging.ERROR, logger="ffo.eventlog"), open_writer(target) as writer:
        assert writer.recovery is None
        assert writer.append(Tick(n=99)) == RECORDS + 1
    assert "FFOLOG9" in caplog.text
    records, damage = read_all(target)
    assert len(records) == RECORDS + 1
    assert [(item.offset, item.kind) for item in damage] == [(0, ProblemKind.BAD_HEADER)]
