"""Serving a stream to peers: its head, and its stored frames from a seq, in bounded batches.

Resync (DESIGN "Peer resync") pulls other nodes' records per stream from a seq, Clone-style: a peer asks for
``from_seq``, gets the frames exactly as they are on disk (checksum and all, so the receiver verifies them end
to end) up to a record and byte limit, and asks again from `RangeRead.next_seq`. This module reads those
ranges from a stream directory, its own or a replica's: both use the same segment format.

Cost does not grow with the log. The segment holding ``from_seq`` is found by the names (the first seq of
each, binary search), earlier segments are never opened, and inside a large segment the offset is bisected
with small probe reads (records of one segment have consecutive seqs, so seq grows with offset). Reading
then goes forward through a bounded buffer (`ffo.eventlog.segment_file`), never the whole segment; the head
of a stream is found from the tail of its newest segment alone.

Nothing missing is papered over. Records removed by retention before ``from_seq`` come back as
`RangeRead.missing_before`; a corrupt frame, a seq that does not follow, or segments whose names leave a
hole stop the range before them and come back as `RangeRead.damage` with the seq to continue from
(`RangeRead.resume_seq`), so the caller records the hole it skips. The end of the newest segment is the
live edge: a frame the writer is still appending there (or tore in a crash, which its next start cuts off)
simply ends the range, as in `ffo.eventlog.reader`.

A frame is served when its checksum verifies and its seq is the one due; its body is decoded whole only when
something is unusual (the receiver decodes every frame it stores).
"""

from __future__ import annotations

import bisect
import os
from pathlib import Path
from typing import Final

import attrs

from ffo.errors import LocalProtocolError
from ffo.eventlog.frame import (
    MAGIC,
    FrameProblem,
    ProblemKind,
    decode_frame,
    find_frame,
    plan_segment_end,
    verify_frames,
)
from ffo.eventlog.reader import Corruption, list_segments, list_streams
from ffo.eventlog.record import Record
from ffo.eventlog.segment_file import SegmentFile

__all__ = ["RangeRead", "read_range", "stream_head", "stream_heads"]

_TAIL_BYTES: Final = 4 << 10
"""The first look at the tail of a newest segment for its head."""
_BISECT_TO: Final = 16 << 10
"""Bisection stops when the start is known to lie within this many bytes (a couple of hundred typical
records, read past by the fast path); a segment no larger is read from its start."""
_LIST_ATTEMPTS: Final = 8


@attrs.frozen(kw_only=True)
class RangeRead:
    """Stored frames of one stream for seqs `first_seq` .. `next_seq` - 1, and what stopped the range."""

    frames: tuple[bytes, ...]
    """Complete frames, byte for byte as stored, in seq order without gaps."""
    first_seq: int
    """The seq the range starts at: ``from_seq``, or the oldest stored seq when `missing_before` is set."""
    next_seq: int
    """The seq to ask for next: `first_seq` + the number of frames."""
    head: int
    """The stream's last seq when it was read (0: no record yet)."""
    missing_before: tuple[int, int] | None = None
    """(first, last) seqs asked for that are no longer stored (retention removed them): a gap to record."""
    damage: Corruption | None = None
    """What stopped the range before the end of the stream: a corrupt frame, a seq that does not follow, or a
    hole between segments; the range holds every good frame before it."""
    resume_seq: int | None = None
    """With `damage`: the seq of the first readable record after it. Seqs `next_seq` .. `resume_seq` - 1 are
    lost at this source (none, if the damage held no record); ask again from `resume_seq`."""


def stream_heads(events_dir: Path) -> dict[str, int]:
    """The last stored seq of every stream under a node's events directory (0 for a stream with no record)."""
    return {path.name: stream_head(path) for path in list_streams(events_dir)}


def stream_head(stream_dir: Path) -> int:
    """The last stored seq of one stream (0: none), read from the tail of its newest segment only."""
    for _ in range(_LIST_ATTEMPTS):
        segments = list_segments(stream_dir)
        if not segments:
            return 0
        first, path = segments[-1]
        try:
            return _segment_head(path, first)
        except FileNotFoundError:  # replaced since it was listed: list again
            continue
    return 0


def _segment_head(path: Path, first_seq: int) -> int:
    """The seq of the last good record of a newest segment (`first_seq` - 1 if it holds none).

    Looks at the last 4 KiB first, resynchronising on the first frame that verifies there, and only at more
    when no record ends in it (huge records, a long torn tail); the last resort reads the whole segment.
    """
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        window = _TAIL_BYTES
        while size - window > len(MAGIC):
            tail = os.pread(file.fileno(), window, size - window)
            found = find_frame(tail, 0)
            last = verify_frames(tail, found).last if found < len(tail) else None
            record = decode_frame(tail, last)[0] if last is not None else None
            if isinstance(record, Record) and record.seq >= first_seq:
                return record.seq
            window *= 4
        data = os.pread(file.fileno(), size, 0)
    return plan_segment_end(data, first_seq).next_seq - 1


def read_range(stream_dir: Path, from_seq: int, *, max_records: int, max_bytes: int) -> RangeRead:
    """The stored frames of the stream in `stream_dir` from `from_seq`: at most `max_records` of them and
    `max_bytes` in all, but always at least one when one is due (up to the 16 MiB frame bound)."""
    if from_seq < 1 or max_records < 1 or max_bytes < 1:
        raise LocalProtocolError(f"read_range from {from_seq}, {max_records} records, {max_bytes} bytes")
    for _ in range(_LIST_ATTEMPTS):
        try:
            return _RangeReader(list_segments(stream_dir), from_seq, max_records, max_bytes).read()
        except FileNotFoundError:  # retention deleted a segment between listing and opening: list again
            continue
    return _RangeReader(list_segments(stream_dir), from_seq, max_records, max_bytes).read()


@attrs.define
class _Damage:
    offset: int
    end_offset: int
    problem: FrameProblem


class _RangeReader:
    """One `read_range` call: the segments as listed, and how far the range has got."""

    def __init__(self, segments: list[tuple[int, Path]], from_seq: int, max_records: int, max_bytes: int) -> None:
        self.segments = segments
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.missing_before: tuple[int, int] | None = None
        self.start = from_seq
        if segments and from_seq < segments[0][0]:
            self.missing_before = (from_seq, segments[0][0] - 1)
            self.start = segments[0][0]
        self.expected = self.start
        self.frames: list[bytes] = []
        self.frame_bytes = 0
        self.full = False
        self.damage: Corruption | None = None
        self.resume_seq: int | None = None
        self.pending: tuple[Path, _Damage] | None = None
        """Damage seen but not yet judged: it matters only if records after it are missing or were read."""
        self.newest_head: int | None = None

    def read(self) -> RangeRead:
        if not self.segments:
            return RangeRead(frames=(), first_seq=self.start, next_seq=self.start, head=0)
        firsts = [first for first, _ in self.segments]
        index = bisect.bisect_right(firsts, self.start) - 1
        for position in range(index, len(self.segments)):
            first, path = self.segments[position]
            if position > index and not self._enter(path, first):
                break
            self._read_segment(position)
            if self.full or self.damage is not None:
                break
        if self.damage is None and self.pending is not None and self.frames:
            path, damage = self.pending  # between the last record read and the end: reported once, nothing lost
            self._stop(path, damage.offset, damage.end_offset, damage.problem, self.expected)
        return self._result()

    def _enter(self, path: Path, first: int) -> bool:
        """Whether the range goes on into the segment `first`: not across a hole in the seqs between segments."""
        if first <= self.expected:
            return True
        if self.pending is not None:
            damaged, damage = self.pending
            self._stop(damaged, damage.offset, damage.end_offset, damage.problem, first)
        else:
            reason = f"segment {path.name} starts at seq {first} where {self.expected} was due"
            self._stop(path, 0, 0, FrameProblem(kind=ProblemKind.OUT_OF_SEQUENCE, detail=reason), first)
        return False

    def _read_segment(self, position: int) -> None:
        first, path = self.segments[position]
        newest = position == len(self.segments) - 1
        end_seq = self.segments[position + 1][0] if not newest else None
        with path.open("rb") as file:
            segment = SegmentFile(file.fileno(), os.fstat(file.fileno()).st_size)
            offset, seq = len(MAGIC), first - 1
            if segment.size > _BISECT_TO and self.start > first:
                offset, seq = self._bisect(segment, first, end_seq)
            last = self._scan(path, segment, offset, newest=newest)
        if newest and not self.full and self.damage is None:
            self.newest_head = max(seq, last)

    def _bisect(self, segment: SegmentFile, first: int, end_seq: int | None) -> tuple[int, int]:
        """An offset of a record at or before `start` (and its seq), near it: the scan begins there."""
        low, low_seq, high = len(MAGIC), first - 1, segment.size
        while high - low > _BISECT_TO:
            middle = (low + high) // 2
            found = segment.probe(middle, first, end_seq)
            if found is None:  # no whole record in the probe (damage, huge records): scan from `low`
                break
            offset, seq = found
            if seq <= self.start:
                low, low_seq = offset, seq - 1
            else:
                high = middle
        return low, low_seq

    def _scan(self, path: Path, segment: SegmentFile, offset: int, *, newest: bool) -> int:
        """Collect the segment's records from `offset`; the seq of the last record seen."""
        last = -1
        while offset < segment.size:
            if len(self.frames) >= self.max_records:
                self.full = True
                return last
            if self.pending is None:
                ran_to, last = self._run(segment, offset, last)
                if self.full or ran_to >= segment.size:
                    return last
                if ran_to > offset:  # the limits are checked again before the slow path takes a frame
                    offset = ran_to
                    continue
            item, after = segment.decode_at(offset)
            if type(item) is not Record:
                assert isinstance(item, FrameProblem)
                resume = after if after > offset else segment.next_frame(offset + 1)
                if resume >= segment.size and newest:  # the live edge: a frame being written, or torn
                    return last
                if self.pending is None:
                    self.pending = (path, _Damage(offset, resume, item))
                offset = resume
                continue
            last = item.seq
            if not self._take(path, segment, item.seq, offset, after):
                return last
            offset = after
        return last

    def _run(self, segment: SegmentFile, offset: int, last: int) -> tuple[int, int]:
        """Take the clean frames due from `offset` (the fast path): where they end, and the last seq read."""
        frames, end, run_last = segment.clean_run(
            offset, self.expected, self.max_records - len(self.frames), skip_before=not self.frames
        )
        total, kept = self.frame_bytes, 0
        for frame in frames:
            if (self.frames or kept) and total + len(frame) > self.max_bytes:
                self.full = True
                break
            total, kept = total + len(frame), kept + 1
        self.frames += frames[:kept] if self.full else frames
        self.frame_bytes = total
        self.expected += kept
        return end, max(last, run_last)

    def _take(self, path: Path, segment: SegmentFile, seq: int, offset: int, after: int) -> bool:
        """Add the record at `offset` to the range if it is the one due; False when the range stops here."""
        if not self.frames and seq < self.expected:  # before the range: damage before it does not matter
            self.pending = None
            return True
        if self.pending is not None and (self.frames or seq > self.expected):
            damaged, damage = self.pending
            self._stop(damaged, damage.offset, damage.end_offset, damage.problem, max(seq, self.expected))
            return False
        self.pending = None
        if seq != self.expected:
            kind = "records missing" if seq > self.expected else "out of order or repeated"
            problem = FrameProblem(
                kind=ProblemKind.OUT_OF_SEQUENCE, detail=f"seq {seq} where {self.expected} was due: {kind}"
            )
            self._stop(path, offset, offset, problem, max(seq, self.expected))
            return False
        size = after - offset
        if self.frames and self.frame_bytes + size > self.max_bytes:
            self.full = True
            return False
        self.frames.append(segment.frame(offset, after))
        self.frame_bytes += size
        self.expected = seq + 1
        return True

    def _stop(self, path: Path, offset: int, end: int, problem: FrameProblem, resume_seq: int) -> None:
        self.damage = Corruption(
            segment=path, offset=offset, end_offset=end, kind=problem.kind, reason=problem.detail, is_tail=False
        )
        self.resume_seq = resume_seq

    def _result(self) -> RangeRead:
        newest_first, newest_path = self.segments[-1]
        if self.newest_head is not None:
            head = self.newest_head
        else:
            try:
                head = _segment_head(newest_path, newest_first)
            except FileNotFoundError:
                head = 0
        return RangeRead(
            frames=tuple(self.frames),
            first_seq=self.start,
            next_seq=self.expected,
            head=max(head, self.expected - 1),
            missing_before=self.missing_before,
            damage=self.damage,
            resume_seq=self.resume_seq,
        )
