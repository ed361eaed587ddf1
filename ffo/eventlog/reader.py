"""Reading streams back: every record in order, and every piece of damage reported where it is.

Nothing is skipped silently. Damage comes out of the iterators as a `Corruption` item, in place, naming the
segment file and the byte range that could not be read; reading then resynchronises at the next frame whose
checksum verifies (`ffo.eventlog.frame.find_frame`) and goes on. A seq that does not follow the previous
one (records lost to that damage, a missing segment) is reported the same way.

The end of the newest segment is special: a writer may be in the middle of appending there (or crashed
there, before its next start truncates the torn record), so damage reaching the end of the newest segment
is a tail (``is_tail=True``), not mid-file corruption.

Reading never needs the writer: the files are the log. `follow` polls them for `ffo events --follow`.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import attrs

from ffo.eventlog.frame import (
    MAGIC,
    FrameProblem,
    ProblemKind,
    decode_frame,
    find_frame,
    header_problem,
    parse_segment_name,
    verify_frames,
)
from ffo.eventlog.record import Record

__all__ = [
    "Corruption",
    "follow",
    "list_segments",
    "list_streams",
    "read_merged",
    "read_stream",
]


@attrs.frozen(kw_only=True)
class Corruption:
    """Bytes of a segment that hold no readable record, or a break in the stream's seqs."""

    segment: Path
    offset: int
    """Where the damage starts (for OUT_OF_SEQUENCE: where the record after the break starts)."""
    end_offset: int
    """Where reading resumed: the next frame that verifies, or the end of the file."""
    kind: ProblemKind
    reason: str
    is_tail: bool
    """The damage reaches the end of the stream's newest segment: a torn last write, or one in progress."""

    def describe(self) -> str:
        """One line for people, naming the file and the byte range."""
        where = "torn tail" if self.is_tail else "corrupt"
        span = f"bytes {self.offset}..{self.end_offset}" if self.end_offset > self.offset else f"byte {self.offset}"
        return f"{self.segment}: {where} at {span} ({self.end_offset - self.offset} bytes): {self.reason}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """The segments of a stream as (first seq, path), oldest first; other files are not segments."""
    try:
        names = [(parse_segment_name(entry.name), entry) for entry in directory.iterdir()]
    except FileNotFoundError:
        return []
    return sorted((seq, path) for seq, path in names if seq is not None)


def list_streams(events_dir: Path) -> list[Path]:
    """The stream directories under a node's events directory, by name."""
    try:
        return sorted(entry for entry in events_dir.iterdir() if entry.is_dir())
    except FileNotFoundError:
        return []


@attrs.define
class _Position:
    """How far reading a stream has got: the seq due next, and the offset after the last item in the current
    segment (where `follow` resumes)."""

    expected: int | None = None
    skip_through: int = 0
    """Records up to this seq are read past, not yielded (reading from a seq)."""
    offset: int = 0


def _scan(
    path: Path, data: bytes, *, base: int, is_last: bool, position: _Position, wait_at_tail: bool = False
) -> Iterator[Record | Corruption]:
    """The records and damage in a segment's bytes from file offset `base` (at 0, the header is checked).

    One loop does the frames and the seq checks: reading is the hot path of `ffo events` and of replay. With
    `wait_at_tail`, a tail is neither reported nor read past (`follow` waits for the writer to finish it).
    """
    offset = 0
    if base == 0:
        problem = header_problem(data)
        if problem is not None:
            end = min(len(data), len(MAGIC))
            if wait_at_tail and end == len(data):
                return
            yield _damage(path, 0, end, problem, is_tail=is_last and end == len(data))
        offset = len(MAGIC)
    size = len(data)
    while offset < size:
        item, after = decode_frame(data, offset)
        if type(item) is Record:
            seq = item.seq
            position.offset = base + after
            if seq > position.skip_through:
                expected = position.expected
                if expected is not None and seq != expected:
                    yield _break(path, base + offset, expected, seq)
                position.expected = seq + 1
                yield item
            offset = after
            continue
        assert isinstance(item, FrameProblem)
        resume = after if after > offset else find_frame(data, offset + 1)
        if wait_at_tail and resume == size:
            return
        position.offset = base + resume
        yield _damage(path, base + offset, base + resume, item, is_tail=is_last and resume == size)
        offset = resume


def _damage(path: Path, offset: int, end: int, problem: FrameProblem, *, is_tail: bool) -> Corruption:
    return Corruption(
        segment=path, offset=offset, end_offset=end, kind=problem.kind, reason=problem.detail, is_tail=is_tail
    )


def read_stream(directory: Path, *, from_seq: int = 1) -> Iterator[Record | Corruption]:
    """Every record of one stream with seq ≥ `from_seq`, in seq order across its segments, and the damage.

    Segments wholly before `from_seq` (by their names) are not read at all.
    """
    segments = _from(list_segments(directory), from_seq)
    position = _Position(skip_through=from_seq - 1)
    for index, (_, path) in enumerate(segments):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # deleted by retention since it was listed: not damage
            continue
        yield from _scan(path, data, base=0, is_last=index == len(segments) - 1, position=position)


def _from(segments: list[tuple[int, Path]], from_seq: int) -> list[tuple[int, Path]]:
    """The segments that may hold seqs ≥ `from_seq`: from the last one starting at or before it."""
    start = 0
    for index, (first, _) in enumerate(segments):
        if first <= from_seq:
            start = index
    return segments[start:]


def _break(path: Path, offset: int, expected: int, seq: int) -> Corruption:
    if seq > expected:
        reason = f"seq {seq} where {expected} was due: {seq - expected} records missing"
    else:
        reason = f"seq {seq} where {expected} was due: out of order or repeated"
    return Corruption(
        segment=path, offset=offset, end_offset=offset, kind=ProblemKind.OUT_OF_SEQUENCE, reason=reason, is_tail=False
    )


_Key = tuple[int, str, int, int]


def _keyed(stream: str, items: Iterable[Record | Corruption]) -> Iterator[tuple[_Key, Record | Corruption]]:
    """Items with their merge key; damage sorts right after the record before it in its stream."""
    mono, seq = -1, 0
    for item in items:
        if type(item) is Record:
            mono, seq = item.mono_ns, item.seq
            yield (mono, stream, seq, 0), item
        else:
            yield (mono, stream, seq, 1), item


def read_merged(events_dir: Path) -> Iterator[Record | Corruption]:
    """Every stream of a node merged into one timeline by (mono_ns, stream, seq).

    The monotonic clock restarts at boot, so a node's timeline across a reboot interleaves the boots; each
    stream is still read in seq order, and the merge is exact within one boot.
    """
    streams = [_keyed(path.name, read_stream(path)) for path in list_streams(events_dir)]
    for _, item in heapq.merge(*streams, key=lambda pair: pair[0]):
        yield item


# -- follow ---------------------------------------------------------------------------------------------------


@attrs.define
class _Cursor:
    """Where following one stream has got to: a segment (by its first seq) and a position in it."""

    directory: Path
    first_seq: int | None = None
    """The segment being read; None before the first one exists."""
    position: _Position = attrs.field(factory=_Position)


def follow(
    events_dir: Path,
    *,
    poll_interval_s: float = 0.2,
    from_start: bool = False,
    after: Mapping[str, int] | None = None,
) -> Iterator[Record | Corruption]:
    """New records of every stream as they are written, forever; the caller stops iterating to stop.

    Where it starts is fixed when this is called, not at the first `next`: at the current end of each stream
    (or at its start with `from_start`; right after seq N for the streams named in `after`, which lets a
    caller that has just read the log with `read_merged` continue without missing or repeating a record).
    Streams created later are read from their start. Each poll's records are merged by (mono_ns, stream, seq)
    (so a first poll `from_start` holds the whole log in memory: for a long log, `read_merged` then `after`);
    a torn frame at the end of the newest segment is waited for, not reported, until a newer segment shows
    that the writer moved on.
    """
    seen = dict(after or {})
    cursors = {path.name: _start(path, from_start, seen.get(path.name)) for path in list_streams(events_dir)}
    return _follow(events_dir, cursors, poll_interval_s)


def _start(directory: Path, from_start: bool, after: int | None) -> _Cursor:
    segments = list_segments(directory)
    if after is not None:
        segments = _from(segments, after + 1)
        return _Cursor(directory, segments[0][0] if segments else None, _Position(skip_through=after))
    if from_start or not segments:
        return _Cursor(directory, segments[0][0] if segments else None)
    first, path = segments[-1]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    return _Cursor(directory, first, _Position(offset=verify_frames(data, len(MAGIC)).end if data else 0))


def _follow(events_dir: Path, cursors: dict[str, _Cursor], poll_interval_s: float) -> Iterator[Record | Corruption]:
    while True:
        for path in list_streams(events_dir):
            if path.name not in cursors:
                cursors[path.name] = _Cursor(path)
        batch = [(key, item) for name, cursor in cursors.items() for key, item in _keyed(name, _poll(cursor))]
        if not batch:
            time.sleep(poll_interval_s)
            continue
        batch.sort(key=lambda pair: pair[0])
        for _, item in batch:
            yield item


def _poll(cursor: _Cursor) -> Iterator[Record | Corruption]:
    """What was appended to the cursor's stream since the last poll, moving on to newer segments."""
    while True:
        segments = list_segments(cursor.directory)
        if not segments:
            return
        current = [(first, path) for first, path in segments if first == cursor.first_seq]
        if not current:  # not started, or deleted by retention: the oldest segment after it
            later = [(first, path) for first, path in segments if cursor.first_seq is None or first > cursor.first_seq]
            if not later:
                return
            cursor.first_seq, cursor.position.offset = later[0][0], 0
            current = later[:1]
        first, path = current[0]
        newer = segments[-1][0] != first
        yield from _read_new(cursor, path, final=newer)
        if not newer:
            return
        cursor.first_seq = next(seq for seq, _ in segments if seq > first)
        cursor.position.offset = 0


def _read_new(cursor: _Cursor, path: Path, *, final: bool) -> Iterator[Record | Corruption]:
    """Records of `path` after the cursor; a damaged end is reported only once the segment is `final`."""
    base = cursor.position.offset
    try:
        with path.open("rb") as file:
            file.seek(base)
            data = file.read()
    except FileNotFoundError:
        return
    yield from _scan(path, data, base=base, is_last=not final, position=cursor.position, wait_at_tail=not final)
