"""The frame format (pure): round trips, and every cut or flipped bit detected, never read as a record."""

from __future__ import annotations

import struct
import zlib

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ffo.eventlog.frame import (
    FRAME_HEAD_BYTES,
    MAGIC,
    MAX_BODY_BYTES,
    FrameEncoder,
    FrameProblem,
    ProblemKind,
    check_frame,
    decode_frame,
    encode_frame,
    find_frame,
    header_problem,
    parse_segment_name,
    segment_name,
    verify_frames,
)
from ffo.eventlog.record import Record, RecordEncodeError


def record(seq: int = 7, **change: object) -> Record:
    fields: dict[str, object] = {"instance": "vi1", "priority": 100, "addresses": ["192.0.2.1"], "raw": b"\x00\x01"}
    parts: dict[str, object] = {
        "node": "lb1",
        "stream": "vrrp",
        "seq": seq,
        "ts_ns": 1_767_225_600_123_456_789,
        "mono_ns": 42_000_000_001,
        "type": "vrrp.transition_made",
        "version": 1,
        "cause": "vrrp:6",
        "fields": fields,
    }
    return Record(**{**parts, **change})  # type: ignore[arg-type]


def framed(body: bytes) -> bytes:
    """A frame around any body, with a checksum that verifies."""
    counted = struct.pack("<I", len(body)) + body
    return struct.pack("<I", zlib.crc32(counted)) + counted


def test_a_record_round_trips() -> None:
    original = record()
    frame = encode_frame(original)
    assert decode_frame(frame, 0) == (original, len(frame))


def test_decoding_at_an_offset_returns_the_next_offset() -> None:
    first, second = encode_frame(record(1)), encode_frame(record(2, cause=None))
    data = MAGIC + first + second
    one, after = decode_frame(data, len(MAGIC))
    two, end = decode_frame(data, after)
    assert (one, two, end) == (record(1), record(2, cause=None), len(data))


scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20) | st.binary(max_size=20)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)


@settings(max_examples=40)
@given(
    fields=st.dictionaries(st.text(max_size=10), values, max_size=6),
    seq=st.integers(1, 2**63 - 1),
    cause=st.none() | st.text(max_size=30),
)
def test_any_msgpack_native_fields_round_trip(fields: dict[str, object], seq: int, cause: str | None) -> None:
    original = record(seq, fields=fields, cause=cause)
    frame = encode_frame(original)
    assert decode_frame(frame, 0) == (original, len(frame))


def test_the_encoder_reuses_packed_parts_without_mixing_types() -> None:
    encoder = FrameEncoder("lb1", "vrrp")
    a = encoder.encode("a.b", 1, seq=1, ts_ns=2, mono_ns=3, cause=None, fields={})
    b = encoder.encode("a.c", 2, seq=2, ts_ns=2, mono_ns=3, cause=None, fields={})
    assert decode_frame(a, 0)[0] == record(1, ts_ns=2, mono_ns=3, type="a.b", version=1, cause=None, fields={})
    assert decode_frame(b, 0)[0] == record(2, ts_ns=2, mono_ns=3, type="a.c", version=2, cause=None, fields={})


@pytest.mark.parametrize(
    "change",
    [{"fields": {"when": object()}}, {"cause": 5}, {"seq": "1"}, {"fields": {"big": b"x" * (MAX_BODY_BYTES + 1)}}],
)
def test_what_cannot_be_stored_is_an_encode_error(change: dict[str, object]) -> None:
    with pytest.raises(RecordEncodeError):
        encode_frame(record(**change))  # type: ignore[arg-type]


def test_every_cut_of_a_frame_is_truncated() -> None:
    frame = encode_frame(record())
    for cut in range(len(frame)):
        problem, after = decode_frame(frame[:cut] if cut else b"", 0)
        assert isinstance(problem, FrameProblem)
        assert (problem.kind, after) == (ProblemKind.TRUNCATED, 0)


def test_every_flipped_bit_is_detected() -> None:
    frame = encode_frame(record())
    for bit in range(len(frame) * 8):
        damaged = bytearray(frame)
        damaged[bit // 8] ^= 1 << (bit % 8)
        problem, _ = decode_frame(bytes(damaged), 0)
        assert isinstance(problem, FrameProblem), f"bit {bit}"
        assert problem.kind in {ProblemKind.BAD_CHECKSUM, ProblemKind.BAD_LENGTH, ProblemKind.TRUNCATED}


@pytest.mark.parametrize("length", [0, MAX_BODY_BYTES + 1, 2**32 - 1])
def test_a_garbage_length_is_refused_before_anything_is_read(length: int) -> None:
    data = struct.pack("<II", 0, length) + b"\x99" * 32
    problem = check_frame(data, 0)
    assert isinstance(problem, FrameProblem)
    assert problem.kind is ProblemKind.BAD_LENGTH


def test_a_verified_frame_that_is_not_a_record_is_bad_body_and_skipped_whole() -> None:
    not_msgpack = framed(b"\x99\xc1")
    wrong_shape = framed(msgpack.packb([1, 2, 3, 4, 5, 6, 7, 8, 9]))
    for frame in (not_msgpack, wrong_shape):
        problem, after = decode_frame(frame + encode_frame(record()), 0)
        assert isinstance(problem, FrameProblem)
        assert (problem.kind, after) == (ProblemKind.BAD_BODY, len(frame))


def test_find_frame_crosses_garbage_and_zeros_to_the_next_good_frame() -> None:
    good = encode_frame(record())
    data = b"\x99" * 50 + bytes(10_000) + good[:20] + good
    assert find_frame(data, 0) == len(data) - len(good)
    assert find_frame(data, len(data) - len(good) + 1) == len(data)
    assert find_frame(b"", 0) == 0


def test_verify_frames_finds_the_good_end_and_the_damage_between() -> None:
    frames = [encode_frame(record(seq)) for seq in range(1, 5)]
    damaged = bytearray(b"".join(frames))
    damaged[len(frames[0]) + 20] ^= 0xFF  # inside the second frame
    data = MAGIC + bytes(damaged) + frames[0][:10]  # and a torn tail
    scan = verify_frames(data, len(MAGIC))
    second = len(MAGIC) + len(frames[0])
    assert scan.first == len(MAGIC)
    assert scan.last == len(data) - 10 - len(frames[3])
    assert scan.end == len(data) - 10
    assert scan.tail is not None and scan.tail.kind is ProblemKind.TRUNCATED
    assert [(start, end, problem.kind) for start, end, problem in scan.damaged] == [
        (second, second + len(frames[1]), ProblemKind.BAD_CHECKSUM)
    ]


@given(st.binary(max_size=300), st.integers(0, 300))
def test_decoding_garbage_never_raises(data: bytes, offset: int) -> None:
    item, after = decode_frame(data, min(offset, len(data)))
    assert isinstance(item, (Record, FrameProblem))
    assert after >= min(offset, len(data))
    assert find_frame(data, 0) <= len(data)


def test_segment_headers() -> None:
    assert header_problem(MAGIC + b"...") is None
    torn = header_problem(MAGIC[:3])
    assert torn is not None and torn.kind is ProblemKind.TRUNCATED
    assert header_problem(b"") is not None
    other = header_problem(b"NOTALOG\n")
    assert other is not None and other.kind is ProblemKind.BAD_HEADER
    assert FRAME_HEAD_BYTES == len(MAGIC) == 8


def test_segment_names_sort_as_seqs() -> None:
    assert segment_name(1) == "00000000000000000001.log"
    assert parse_segment_name(segment_name(2**63)) == 2**63
    assert sorted([segment_name(10), segment_name(9)]) == [segment_name(9), segment_name(10)]
    for other in ("1.log", "00000000000000000001.log.tmp", "x.log", ".lock"):
        assert parse_segment_name(other) is None


def test_verify_frames_trusts_an_intact_chain_only_if_its_last_frame_verifies() -> None:
    frames = [encode_frame(record(seq)) for seq in range(1, 5)]
    data = MAGIC + b"".join(frames)
    last = len(data) - len(frames[-1])
    intact = verify_frames(data, len(MAGIC))
    assert (intact.first, intact.last, intact.end, intact.tail, intact.damaged) == (
        len(MAGIC),
        last,
        len(data),
        None,
        (),
    )
    flipped = bytearray(data)
    flipped[last + 30] ^= 0x01
    scan = verify_frames(bytes(flipped), len(MAGIC))
    assert scan.end == last and scan.tail is not None and scan.tail.kind is ProblemKind.BAD_CHECKSUM
    empty = verify_frames(MAGIC, len(MAGIC))
    assert (empty.first, empty.last, empty.end, empty.tail) == (None, None, len(MAGIC), None)
