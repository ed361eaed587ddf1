"""Reading a segment in pieces: the fast path reads the seq of every encoding a writer produces, and stops at
what it does not know (a seq not due, damage) for the slow path to explain."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ffo.eventlog.frame import MAGIC, FrameEncoder, FrameProblem, ProblemKind
from ffo.eventlog.record import Record
from ffo.eventlog.segment_file import SegmentFile

names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=300)


def segment(path: Path, frames: list[bytes]) -> SegmentFile:
    path.write_bytes(MAGIC + b"".join(frames))
    fd = os.open(path, os.O_RDONLY)
    return SegmentFile(fd, os.fstat(fd).st_size)


@settings(max_examples=200, deadline=None)
@given(
    node=names,
    stream=names,
    type_name=names,
    version=st.integers(0, 2**64 - 1),
    first=st.integers(0, 2**64 - 4),
)
def test_the_fast_path_reads_every_seq_encoding(
    node: str, stream: str, type_name: str, version: int, first: int
) -> None:
    encoder = FrameEncoder(node, stream)
    frames = [
        encoder.encode(type_name, version, seq=seq, ts_ns=0, mono_ns=-1, cause=None, fields={"n": seq})
        for seq in range(first, first + 3)
    ]
    with tempfile.TemporaryDirectory() as directory:
        file = segment(Path(directory) / "s.log", frames)
        try:
            taken, end, last = file.clean_run(len(MAGIC), first, 10, skip_before=False)
            assert (taken, end, last) == (frames, file.size, first + 2)
            skipped, end, last = file.clean_run(len(MAGIC), first + 2, 10, skip_before=True)
            assert (skipped, end, last) == (frames[2:], file.size, first + 2)
        finally:
            os.close(file.fd)


def test_the_fast_path_stops_where_the_slow_path_must_look(tmp_path: Path) -> None:
    encoder = FrameEncoder("n1", "s")
    frames = [encoder.encode("t", 1, seq=seq, ts_ns=0, mono_ns=0, cause=None, fields={}) for seq in (1, 2, 4, 5)]
    damaged = bytearray(frames[3])
    damaged[-1] ^= 1
    file = segment(tmp_path / "s.log", [*frames[:3], bytes(damaged)])
    taken, end, last = file.clean_run(len(MAGIC), 1, 10, skip_before=False)
    assert (taken, last) == (frames[:2], 2)  # 4 is not due
    assert file.decode_at(end)[0] == Record(
        node="n1", stream="s", seq=4, ts_ns=0, mono_ns=0, type="t", version=1, cause=None, fields={}
    )
    after_four = end + len(frames[2])
    assert file.clean_run(after_four, 5, 10, skip_before=False)[0] == []  # a bad checksum
    problem, _ = file.decode_at(after_four)
    assert isinstance(problem, FrameProblem) and problem.kind is ProblemKind.BAD_CHECKSUM
    assert file.clean_run(len(MAGIC), 1, 1, skip_before=False)[0] == frames[:1]  # the limit
    os.close(file.fd)
