"""The bytes of a segment file: its header, each record's frame, and finding frames again after damage (pure).

A segment is ``MAGIC`` (8 bytes, which also versions everything below) followed by frames::

    u32le crc32(length ‖ body) | u32le length | body

`body` is one strict msgpack array (no ext types, str as UTF-8, bytes as bin) of the record's nine parts in
this order: ``[node, stream, type, v, seq, ts, mono, cause, fields]``. Why so:

- **Torn and corrupt frames are detected.** A crash can leave the last frame cut short (its `length` runs
  past the end: TRUNCATED); a bit flip anywhere makes the checksum fail. The checksum covers the length too,
  and the two are contiguous, so one `zlib.crc32` call checks both.
- **Garbage lengths are refused, not allocated:** a length above `MAX_BODY_BYTES` is BAD_LENGTH.
- **Resynchronisation is cheap.** After damage, a reader looks for the next offset where a frame verifies.
  Every body starts with the same byte, ``0x99`` (a 9-element msgpack array), so candidates are found with
  `bytes.find` at C speed and only those pay for a checksum; zero-filled blocks (which a file system can leave
  after a crash) are skipped in one call.
- **A positional array, not a map** (the bus envelope is a map): the nine key names would be a third of a
  typical record, and the format is versioned by `MAGIC`, so a new layout is a new magic.
- **Every frame is self-contained:** node and stream are in each record (not only in a segment header), so
  a record found by resynchronisation, or copied alone, still says whose it is.

Pure: it works on `bytes` the caller read; no files here.
"""

from __future__ import annotations

import enum
import re
import struct
import zlib
from typing import Final

import attrs
import msgpack  # type: ignore[import-untyped, unused-ignore]  # msgpack ships no stubs

from ffo.eventlog.record import Record, RecordEncodeError

__all__ = [
    "FRAME_HEAD_BYTES",
    "MAGIC",
    "MAX_BODY_BYTES",
    "FrameEncoder",
    "FrameProblem",
    "FrameScan",
    "ProblemKind",
    "SegmentEnd",
    "check_frame",
    "decode_frame",
    "encode_frame",
    "find_frame",
    "header_problem",
    "parse_segment_name",
    "plan_segment_end",
    "segment_name",
    "verify_frames",
]

MAGIC: Final = b"FFOLOG1\n"
"""The first 8 bytes of every segment: the format and its version."""
FRAME_HEAD_BYTES: Final = 8
MAX_BODY_BYTES: Final = 16 << 20
"""A record is small (a transition is ~150 bytes); anything longer is damage, not a record."""

_HEAD: Final = struct.Struct("<II")  # crc, length
_U32: Final = struct.Struct("<I")
_ARRAY_OF_9: Final = 0x99
_SYNC: Final = bytes([_ARRAY_OF_9])
_PARTS: Final = 9
_SEGMENT: Final = re.compile(r"(\d{20})\.log")
_new: Final = object.__new__
_set: Final = object.__setattr__


class ProblemKind(enum.Enum):
    """What is wrong with the bytes at an offset; the value names a counter."""

    TRUNCATED = "truncated"
    """The frame runs past the end of the data: a torn write, or a writer still writing."""
    BAD_LENGTH = "bad_length"
    """The length is 0 or above `MAX_BODY_BYTES`: not a frame."""
    BAD_CHECKSUM = "bad_checksum"
    """The checksum does not match the bytes (or the body does not start as one): damaged."""
    BAD_BODY = "bad_body"
    """The checksum matches but the body is not a record: written wrong, or by another format."""
    BAD_HEADER = "bad_header"
    """The segment does not start with `MAGIC`."""
    OUT_OF_SEQUENCE = "out_of_sequence"
    """Not about bytes but the stream: a record's seq is not the previous one's plus one (records were lost
    to damage, a segment is missing, or two writers wrote one stream)."""


@attrs.frozen(kw_only=True)
class FrameProblem:
    """Why no record could be read at an offset."""

    kind: ProblemKind
    detail: str


class FrameEncoder:
    """Frames for one stream, through one reused `msgpack.Packer` (half the cost of ``msgpack.packb``, which
    builds a packer per call). Not thread-safe: the writer calls it under its lock."""

    __slots__ = ("_node", "_pack", "_stream")

    def __init__(self, node: str, stream: str) -> None:
        if type(node) is not str or type(stream) is not str:
            raise RecordEncodeError(f"node {node!r} and stream {stream!r} must be str")
        self._node = node
        self._stream = stream
        self._pack = msgpack.Packer(datetime=False).pack  # resets itself when packing fails

    def encode(
        self, type_name: str, version: int, *, seq: int, ts_ns: int, mono_ns: int, cause: str | None, fields: object
    ) -> bytes:
        """The frame of one record; `RecordEncodeError` if its parts cannot be stored."""
        if not (
            type(type_name) is str
            and type(version) is int
            and type(seq) is int
            and type(ts_ns) is int
            and type(mono_ns) is int
            and (cause is None or type(cause) is str)
            and type(fields) is dict
        ):
            parts = f"type {type_name!r} v{version!r} seq {seq!r} ts {ts_ns!r} mono {mono_ns!r} cause {cause!r}"
            raise RecordEncodeError(f"{parts}, fields a {type(fields).__name__}: the wrong types")
        try:
            body: bytes = self._pack([self._node, self._stream, type_name, version, seq, ts_ns, mono_ns, cause, fields])
        except (TypeError, ValueError, OverflowError) as error:
            raise RecordEncodeError(f"{type_name}: fields cannot be stored: {error}") from None
        if len(body) > MAX_BODY_BYTES:
            raise RecordEncodeError(f"{type_name}: a {len(body)}-byte record; at most {MAX_BODY_BYTES}")
        counted = _U32.pack(len(body)) + body
        return _U32.pack(zlib.crc32(counted)) + counted


def encode_frame(record: Record) -> bytes:
    """The frame of `record` (a one-off; a writer keeps a `FrameEncoder`)."""
    return FrameEncoder(record.node, record.stream).encode(
        record.type,
        record.version,
        seq=record.seq,
        ts_ns=record.ts_ns,
        mono_ns=record.mono_ns,
        cause=record.cause,
        fields=record.fields,
    )


def check_frame(data: bytes, offset: int) -> FrameProblem | int:
    """The end offset of the frame at `offset` if its length and checksum verify, else the problem.

    Cheaper than `decode_frame` (no msgpack): enough to find where the good frames end.
    """
    if offset + FRAME_HEAD_BYTES > len(data):
        return FrameProblem(kind=ProblemKind.TRUNCATED, detail=f"{len(data) - offset} bytes, not a frame header")
    crc, length = _HEAD.unpack_from(data, offset)
    if length == 0 or length > MAX_BODY_BYTES:
        return FrameProblem(kind=ProblemKind.BAD_LENGTH, detail=f"length {length}")
    end: int = offset + FRAME_HEAD_BYTES + length
    if end > len(data):
        detail = f"a {length}-byte body, {len(data) - offset - FRAME_HEAD_BYTES} bytes left"
        return FrameProblem(kind=ProblemKind.TRUNCATED, detail=detail)
    if data[offset + FRAME_HEAD_BYTES] != _ARRAY_OF_9 or zlib.crc32(data[offset + 4 : end]) != crc:
        return FrameProblem(kind=ProblemKind.BAD_CHECKSUM, detail=f"a {length}-byte frame fails its checksum")
    return end


def decode_frame(data: bytes, offset: int) -> tuple[Record | FrameProblem, int]:
    """The record at `offset` and the offset after it, or the problem there and where to look next.

    After a problem the next offset is the end of the frame when its extent is known (BAD_BODY: the checksum
    held), else `offset` itself: the caller resynchronises with `find_frame`.

    This is the reader's hot path, so it is one straight function for a good frame (the checks of
    `check_frame`, inline); any failure takes the slow path, `_problem`, which says what is wrong.
    """
    try:
        crc, length = _HEAD.unpack_from(data, offset)
        end: int = offset + FRAME_HEAD_BYTES + length
        if (
            0 < length <= MAX_BODY_BYTES
            and end <= len(data)
            and data[offset + FRAME_HEAD_BYTES] == _ARRAY_OF_9
            and zlib.crc32(data[offset + 4 : end]) == crc
        ):
            # A 0x99 body is a 9-element array, or unpackb raises: the unpacking below cannot mismatch.
            node, stream, type_name, version, seq, ts_ns, mono_ns, cause, fields = msgpack.unpackb(
                data[offset + FRAME_HEAD_BYTES : end], max_ext_len=0
            )
            if (
                type(node) is str
                and type(stream) is str
                and type(type_name) is str
                and type(version) is int
                and type(seq) is int
                and type(ts_ns) is int
                and type(mono_ns) is int
                and (cause is None or type(cause) is str)
                and type(fields) is dict
            ):
                # Record(...) with nine keyword arguments costs twice this; the parts were just checked, and
                # Record has no validators and keeps its attributes in a __dict__ (see its definition).
                record: Record = _new(Record)
                _set(record, "__dict__", {"node": node, "stream": stream, "seq": seq, "ts_ns": ts_ns,
                                          "mono_ns": mono_ns, "type": type_name, "version": version,
                                          "cause": cause, "fields": fields})  # fmt: skip
                return record, end
    except (struct.error, ValueError, TypeError, msgpack.UnpackException, RecursionError):
        pass
    return _problem(data, offset)


def _problem(data: bytes, offset: int) -> tuple[FrameProblem, int]:
    """What `decode_frame` found wrong at `offset`, and where to go on from."""
    checked = check_frame(data, offset)
    if isinstance(checked, FrameProblem):
        return checked, offset
    try:
        parts = msgpack.unpackb(data[offset + FRAME_HEAD_BYTES : checked], max_ext_len=0)
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as error:
        return FrameProblem(kind=ProblemKind.BAD_BODY, detail=f"not msgpack: {error}"), checked
    if type(parts) is not list or len(parts) != _PARTS:
        return FrameProblem(kind=ProblemKind.BAD_BODY, detail="the body is not a 9-element array"), checked
    shapes = ", ".join(type(part).__name__ for part in parts)
    return FrameProblem(kind=ProblemKind.BAD_BODY, detail=f"parts of the wrong types: {shapes}"), checked


def find_frame(data: bytes, start: int) -> int:
    """The first offset at or after `start` where a frame verifies, or ``len(data)`` if none does.

    Only offsets whose body would start with the array byte are tried (`bytes.find`), so runs of zeros or
    other garbage are crossed quickly. A frame stored inside another record's fields could be found too; that
    takes damage first and a record that embeds a log, and is reported like any resynchronisation.
    """
    position = start
    while True:
        found = data.find(_SYNC, position + FRAME_HEAD_BYTES)
        if found < 0:
            return len(data)
        candidate = found - FRAME_HEAD_BYTES
        if type(check_frame(data, candidate)) is int:
            return candidate
        position = candidate + 1


@attrs.frozen(kw_only=True)
class FrameScan:
    """Where the verified frames of a segment are, found by checksums alone (no msgpack): what recovery needs."""

    first: int | None
    """The offset of the first frame that verifies, if any."""
    last: int | None
    """The offset of the last frame that verifies, if any."""
    end: int
    """Where the verified frames end: the start of the damaged tail, or the end of the data."""
    tail: FrameProblem | None
    """What is wrong with the bytes from `end` on, if there are any."""
    damaged: tuple[tuple[int, int, FrameProblem], ...]
    """(start, end, problem) of damage with verified frames after it: kept, and left for readers to report."""


def verify_frames(data: bytes, start: int) -> FrameScan:
    """Where the good frames of `data` from `start` end, resynchronising past damage with good frames after it.

    Recovery runs this on the newest segment (up to 64 MiB) before the actor can start, so the usual case,
    an intact segment, takes a fast path (`_chain`); anything unusual is checked frame by frame.
    """
    return _chain(data, start) or _check_all(data, start)


def _chain(data: bytes, start: int) -> FrameScan | None:
    """The scan of an intact segment, found by following the lengths alone; None if they do not lead exactly
    to the end of the data, or if the first or the last frame does not verify.

    A torn or corrupt tail always fails this: its last length points past the end, or its last frame fails
    its checksum. Damage inside the chain, with good frames after it, may pass unseen, but it is no tail and
    is kept either way (the reader reports it). Lengths only, not checksums, make this about four times faster
    than checking every frame.
    """
    offset, last, size, unpack = start, start, len(data), _U32.unpack_from
    try:
        while offset < size:
            last = offset
            offset += FRAME_HEAD_BYTES + unpack(data, offset + 4)[0]
    except struct.error:  # a frame header cut short
        return None
    if offset != size or start == size:
        return None
    if type(check_frame(data, start)) is not int or type(check_frame(data, last)) is not int:
        return None
    return FrameScan(first=start, last=last, end=size, tail=None, damaged=())


def _check_all(data: bytes, start: int) -> FrameScan:
    first = last = None
    offset = end = start
    tail = None
    damaged = []
    while offset < len(data):
        checked = check_frame(data, offset)
        if type(checked) is int:
            first = offset if first is None else first
            last, offset, end = offset, checked, checked
            continue
        assert isinstance(checked, FrameProblem)
        resume = find_frame(data, offset + 1)
        if resume == len(data):
            tail = checked
            break
        damaged.append((offset, resume, checked))
        offset = resume
    return FrameScan(first=first, last=last, end=end, tail=tail, damaged=tuple(damaged))


@attrs.frozen(kw_only=True)
class SegmentEnd:
    """How a writer continues the newest segment of its stream after a restart (planned here, pure; carried
    out by `EventWriter.open`)."""

    keep: int
    """The bytes to keep; the file is cut here if `cut` says why (0: even the header is torn, rewrite it)."""
    cut: FrameProblem | None
    """What is wrong with the bytes after `keep`, if any: the torn or corrupt tail to cut off."""
    bad_header: FrameProblem | None
    """A damaged header before readable frames: kept, and reported."""
    damaged: tuple[tuple[int, int, FrameProblem], ...]
    """Damage with good frames after it: kept (the reader reports it), so that no good record is lost."""
    next_seq: int
    first_ts_ns: int | None
    """The first record's wall clock, which starts the segment's age; None if it holds none."""


def plan_segment_end(data: bytes, first_seq: int) -> SegmentEnd:
    """Where the good records of the newest segment (named `first_seq`) end, and the seq to continue with."""
    header = header_problem(data)
    if header is not None and (header.kind is ProblemKind.TRUNCATED or len(data) <= len(MAGIC)):
        return SegmentEnd(keep=0, cut=header, bad_header=None, damaged=(), next_seq=first_seq, first_ts_ns=None)
    scan = verify_frames(data, len(MAGIC))
    first = decode_frame(data, scan.first)[0] if scan.first is not None else None
    return SegmentEnd(
        keep=scan.end,
        cut=scan.tail,
        bad_header=header,
        damaged=scan.damaged,
        next_seq=first_seq if scan.last is None else _last_seq(data, scan.last, first_seq) + 1,
        first_ts_ns=first.ts_ns if isinstance(first, Record) else None,
    )


def _last_seq(data: bytes, last: int, first_seq: int) -> int:
    """The seq of the record at `last`; if its body does not decode (a frame the checksum passes but a bug
    wrote), that of the last record before it that does, found the slow way."""
    record, _ = decode_frame(data, last)
    if isinstance(record, Record):
        return record.seq
    seq, offset = first_seq - 1, len(MAGIC)
    while offset < last:
        item, after = decode_frame(data, offset)
        if isinstance(item, Record):
            seq = item.seq
        offset = after if after > offset else find_frame(data, offset + 1)
    return seq


def header_problem(data: bytes) -> FrameProblem | None:
    """What is wrong with a segment's first bytes, if anything: TRUNCATED for a header cut short (a segment
    whose creation was torn), BAD_HEADER for different bytes."""
    head = data[: len(MAGIC)]
    if head == MAGIC:
        return None
    if MAGIC.startswith(head):
        return FrameProblem(kind=ProblemKind.TRUNCATED, detail=f"a {len(head)}-byte segment header")
    return FrameProblem(kind=ProblemKind.BAD_HEADER, detail=f"starts with {head!r}, not {MAGIC!r}")


def segment_name(first_seq: int) -> str:
    """The file name of the segment whose first record is `first_seq`: names sort as seqs do."""
    return f"{first_seq:020d}.log"


def parse_segment_name(name: str) -> int | None:
    """The first seq a segment file name stands for, or None for any other file."""
    match = _SEGMENT.fullmatch(name)
    return int(match.group(1)) if match else None
