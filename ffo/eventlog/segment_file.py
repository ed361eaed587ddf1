"""Reading one segment file in bounded pieces: frames at an offset, runs of clean frames, resynchronising after
damage, and probing for the seq near an offset. What `ffo.eventlog.ranges` serves is read through this.

The reader (`ffo.eventlog.reader`) reads a whole segment at once, which suits a scan from the start; a peer
asking for a thousand records from the middle of a 64 MiB segment needs a few small reads instead. Files are
read with ``pread``, not mapped: a writer truncating a torn tail at its restart must never be able to fault a
reader (SIGBUS). The size is fixed when the file is opened: what the writer appends later is for the next read.

Two speeds, as in `ffo.eventlog.frame`. `clean_run` is the hot path of resync: it takes frames while each
one's checksum verifies and its seq is the one due, read from the body's first bytes by `_seq_of` without
decoding the rest, and stops at anything unusual. `decode_at` is the slow path for that one frame, with the
full decode and the exact reason (`decode_frame`).
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import Final

from ffo.eventlog.frame import FRAME_HEAD_BYTES, MAX_BODY_BYTES, FrameProblem, check_frame, decode_frame, find_frame
from ffo.eventlog.record import Record

__all__ = ["SegmentFile"]

_READ_AHEAD: Final = 1 << 20
"""At most this many bytes are read at once going forward: many small frames per system call, and the
buffer's bound (a frame larger than this is read alone). The first read is a probe window and each next one
doubles, so a small range costs a small read."""
_PROBE_BYTES: Final = 4 << 10
"""The first read going forward and the first try of a bisection probe: a few dozen typical records."""
_WINDOW_BYTES: Final = 64 << 10
"""A resynchronisation window, and the largest bisection probe."""
_HEAD: Final = struct.Struct("<II")  # crc, length
_LENGTH: Final = struct.Struct("<I")
_ARRAY_OF_9: Final = 0x99
_BODY_START: Final = bytes([_ARRAY_OF_9])
"""Every frame body starts with this byte (a 9-element msgpack array; see `ffo.eventlog.frame`)."""


class SegmentFile:
    """One open segment (its descriptor and its size when opened), read through a bounded buffer."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self._buffer = b""
        self._view = memoryview(self._buffer)
        self._base = 0
        self._read_ahead = _PROBE_BYTES

    def _cover(self, offset: int, length: int) -> None:
        """Make the buffer hold `length` bytes from `offset` (fewer at the end of the file)."""
        end = min(offset + length, self.size)
        if self._base <= offset and end <= self._base + len(self._buffer):
            return
        self._base = offset
        self._buffer = os.pread(self.fd, min(max(end - offset, self._read_ahead), self.size - offset), offset)
        self._view = memoryview(self._buffer)
        self._read_ahead = min(2 * self._read_ahead, _READ_AHEAD)

    def clean_run(self, offset: int, expected: int, limit: int, *, skip_before: bool) -> tuple[list[bytes], int, int]:
        """Frames from `offset` whose checksums verify and whose seqs are `expected`, `expected` + 1...: at most
        `limit` of them, and only as far as the buffer reaches. With `skip_before`, records with a lower seq
        in front of them are read past. Returns the frames, the offset after the last frame read, and the seq
        of that frame (-1 if none). Anything else stops the run: the caller looks at it with `decode_at`."""
        self._cover(offset, FRAME_HEAD_BYTES)
        buffer, view, base = self._buffer, self._view, self._base
        position, size, last = offset - base, len(buffer), -1
        frames: list[bytes] = []
        unpack, crc32 = _HEAD.unpack_from, zlib.crc32
        while len(frames) < limit and position + FRAME_HEAD_BYTES <= size:
            crc, length = unpack(buffer, position)
            end = position + FRAME_HEAD_BYTES + length
            if end > size or not 0 < length <= MAX_BODY_BYTES or buffer[position + FRAME_HEAD_BYTES] != _ARRAY_OF_9:
                break
            if crc32(view[position + 4 : end]) != crc:
                break
            seq = _seq_of(buffer, position + FRAME_HEAD_BYTES + 1, end)
            if seq != expected:
                if skip_before and not frames and seq is not None and seq < expected:
                    position, last = end, seq
                    continue
                break
            frames.append(buffer[position:end])
            position, last, expected = end, seq, expected + 1
        return frames, base + position, last

    def decode_at(self, offset: int) -> tuple[Record | FrameProblem, int]:
        """`decode_frame` at a file offset (the buffer is moved to hold the whole frame): the record and the
        offset after it, or the problem and where to look next (`offset` itself: use `next_frame`)."""
        self._cover(offset, FRAME_HEAD_BYTES)
        relative = offset - self._base
        if relative + FRAME_HEAD_BYTES <= len(self._buffer):
            length = _LENGTH.unpack_from(self._buffer, relative + 4)[0]
            if 0 < length <= MAX_BODY_BYTES:
                self._cover(offset, FRAME_HEAD_BYTES + length)
                relative = offset - self._base
        item, after = decode_frame(self._buffer, relative)
        return item, self._base + after

    def frame(self, offset: int, end: int) -> bytes:
        """The bytes of the frame `decode_at(offset)` just read."""
        return self._buffer[offset - self._base : end - self._base]

    def next_frame(self, start: int) -> int:
        """The first offset at or after `start` where a frame verifies, or `size`: `find_frame` through
        windows, plus an exact check of candidates whose frame runs past a window's end."""
        position = start
        while position < self.size:
            window = os.pread(self.fd, min(_WINDOW_BYTES, self.size - position), position)
            found = find_frame(window, 0)
            if found < len(window):
                return position + found
            straddling = self._straddling(window, position)
            if straddling is not None:
                return straddling
            if position + len(window) >= self.size or len(window) <= FRAME_HEAD_BYTES:
                return self.size
            position += len(window) - FRAME_HEAD_BYTES  # a frame head cut at the window's end is in the next
        return self.size

    def _straddling(self, window: bytes, position: int) -> int | None:
        index = window.find(_BODY_START, FRAME_HEAD_BYTES)
        while index >= 0:
            start = index - FRAME_HEAD_BYTES
            length = _LENGTH.unpack_from(window, start + 4)[0]
            end = start + FRAME_HEAD_BYTES + length
            if 0 < length <= MAX_BODY_BYTES and end > len(window) and position + end <= self.size:
                candidate = os.pread(self.fd, FRAME_HEAD_BYTES + length, position + start)
                if check_frame(candidate, 0) == len(candidate):
                    return position + start
            index = window.find(_BODY_START, index + 1)
        return None

    def probe(self, offset: int, first_seq: int, end_seq: int | None) -> tuple[int, int] | None:
        """(offset, seq) of the first record that verifies at or after `offset`, if its seq fits the segment
        (`first_seq` up to `end_seq`, exclusive); for bisection. A few KiB are read, more only while no whole
        record is in them (large records), up to 64 KiB."""
        window_bytes = _PROBE_BYTES
        while True:
            window = os.pread(self.fd, min(window_bytes, self.size - offset), offset)
            found = find_frame(window, 0)
            if found < len(window):
                break
            if window_bytes >= _WINDOW_BYTES or offset + len(window) >= self.size:
                return None
            window_bytes *= 4
        record = decode_frame(window, found)[0]
        if not isinstance(record, Record) or record.seq < first_seq or (end_seq is not None and record.seq >= end_seq):
            return None
        return offset + found, record.seq


def _seq_of(data: bytes, offset: int, end: int) -> int | None:
    """The seq of the frame body whose parts start at `offset` (after the array byte) and which ends at `end`,
    read by skipping node, stream, type (msgpack str) and version (int); None for any encoding a writer does
    not produce (the slow path then decodes the frame whole and says what is wrong)."""
    try:
        for _ in range(3):
            marker = data[offset]
            if 0xA0 <= marker <= 0xBF:
                offset += 1 + (marker & 0x1F)
            elif marker == 0xD9:
                offset += 2 + data[offset + 1]
            elif marker == 0xDA:
                offset += 3 + int.from_bytes(data[offset + 1 : offset + 3], "big")
            else:
                return None
        marker = data[offset]
        if marker < 0x80:
            offset += 1
        elif 0xCC <= marker <= 0xCF:
            offset += 1 + (1 << (marker - 0xCC))
        else:
            return None
        marker = data[offset]
        if marker < 0x80:
            return marker
        if 0xCC <= marker <= 0xCF:
            width = 1 << (marker - 0xCC)
            return int.from_bytes(data[offset + 1 : offset + 1 + width], "big") if offset + width < end else None
    except IndexError:
        return None
    return None
