"""Bus messages to ZeroMQ frames and back: the envelope (`ffo.bus.envelope`) around a registered message.

`encode` is for our own messages: anything it cannot send is our bug (`EncodeError`, `NotAMessageError`).
`decode` is for whatever arrives: it raises nothing but `DecodeError`, whose `reason` is counted by the
receiver, which then drops the message and goes on (STYLE conventions 8 and 9). It checks, in order:

1. two frames (topic, body), within the size bounds, the topic UTF-8 (``bad_frames``);
2. the body is msgpack: strict, no ext types, str map keys only, no pickle (``not_msgpack``);
3. the envelope map has exactly its keys with their types (``bad_envelope``);
4. the type name is registered here (``unknown_type``);
5. the version is not newer than ours, and upcasters reach it when older (``unknown_version``);
6. the fields make the message class, strictly: no unknown key, no wrong type (``bad_fields``).

There is no check of the topic against the type: topics are routing keys chosen by the sender (``hello.<src>``,
``cmd.<actor>``), not a function of the type.
"""

from __future__ import annotations

import enum
import reprlib
from collections.abc import Sequence
from typing import Final

import msgpack  # type: ignore[import-untyped, unused-ignore]  # msgpack ships no stubs

from ffo.bus.convert import ConversionError, structure, unstructure
from ffo.bus.envelope import ENVELOPE_KEYS, Envelope
from ffo.bus.messages import UnknownTypeError, UnknownVersionError, registration, registration_of, upcast
from ffo.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["MAX_BODY_BYTES", "MAX_TOPIC_BYTES", "DecodeError", "DecodeReason", "EncodeError", "decode", "encode"]

MAX_TOPIC_BYTES: Final = 1024
MAX_BODY_BYTES: Final = 1 << 20
"""A bus message is small (a heartbeat is ~120 bytes); this bounds what a bad peer can make us allocate."""

_KEYS: Final = frozenset(ENVELOPE_KEYS)
_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60


class DecodeReason(enum.Enum):
    """Why a received message was dropped; the value names its counter."""

    BAD_FRAMES = "bad_frames"
    """Not two frames, a frame too large or not bytes, or a topic that is not UTF-8."""
    NOT_MSGPACK = "not_msgpack"
    """The body is not one complete, strict msgpack value."""
    BAD_ENVELOPE = "bad_envelope"
    """The body is msgpack but not an envelope map with exactly the expected keys and types."""
    UNKNOWN_TYPE = "unknown_type"
    """No message class is registered under its type name here."""
    UNKNOWN_VERSION = "unknown_version"
    """Newer than the class here, or older than its upcasters reach."""
    BAD_FIELDS = "bad_fields"
    """The fields do not make the message class (missing, unknown, wrong type, refused by a validator)."""


class DecodeError(RemoteProtocolError):
    """A received bus message that must be dropped: `reason`, `detail`, and its `type_name` when that is one
    registered here (so that counting by type cannot be flooded with made-up names)."""

    def __init__(self, reason: DecodeReason, detail: str, type_name: str | None = None) -> None:
        super().__init__(reason, detail, type_name)
        self.reason = reason
        self.detail = detail
        self.type_name = type_name

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


class EncodeError(LocalProtocolError, ValueError):
    """Our own message cannot go on the wire (a field does not match its annotation, a bound is exceeded)."""


def encode(
    topic: str,
    message: object,
    *,
    id: str,
    src: str,
    ts: int,
    mono: int,
    cause: str | None = None,
) -> list[bytes]:
    """The two frames of `message` (a registered message) published under `topic`."""
    kind = registration_of(type(message))
    if not (
        type(id) is str
        and type(src) is str
        and type(ts) is int
        and type(mono) is int
        and (cause is None or type(cause) is str)
    ):
        raise EncodeError(f"{kind.name}: bad envelope: id={id!r} src={src!r} ts={ts!r} mono={mono!r} cause={cause!r}")
    try:
        fields = unstructure(message)
    except ConversionError as error:
        raise EncodeError(f"{kind.name}: {error}") from None
    envelope = {
        "type": kind.name,
        "v": kind.version,
        "id": id,
        "src": src,
        "ts": ts,
        "mono": mono,
        "cause": cause,
        "body": fields,
    }
    try:
        packed: bytes = msgpack.packb(envelope)
        frames = [topic.encode(), packed]
    except (ValueError, TypeError, OverflowError) as error:  # a surrogate in the topic; ts beyond 64 bits
        raise EncodeError(f"{kind.name}: {error}") from None
    if len(frames[0]) > MAX_TOPIC_BYTES or len(frames[1]) > MAX_BODY_BYTES:
        raise EncodeError(f"{kind.name}: {len(frames[0])}-byte topic, {len(frames[1])}-byte body: too large")
    return frames


def decode(frames: Sequence[bytes | bytearray | memoryview]) -> Envelope:
    """The envelope and message in `frames`, as received; raises only `DecodeError`."""
    topic, body = _frames(frames)
    try:
        # msgpack ≥ 1.0's defaults are the strict ones (raw=False: str must be UTF-8; strict_map_key=True: map
        # keys str or bytes; every length bounded by the body's); each keyword argument costs ~0.3 µs, so only
        # the one that differs is passed: no ext types, not even timestamps.
        top: object = msgpack.unpackb(body, max_ext_len=0)
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as error:
        raise DecodeError(DecodeReason.NOT_MSGPACK, f"{type(error).__name__}: {error}") from None
    type_name, version, fields, header = _envelope(top)
    try:
        kind = registration(type_name)
        if version != kind.version:
            fields = upcast(type_name, version, fields)
        message: object = structure(fields, kind.cls)
    except UnknownTypeError as error:
        raise DecodeError(DecodeReason.UNKNOWN_TYPE, str(error)) from None
    except UnknownVersionError as error:
        raise DecodeError(DecodeReason.UNKNOWN_VERSION, str(error), type_name) from None
    except ConversionError as error:
        raise DecodeError(DecodeReason.BAD_FIELDS, f"{type_name} v{version}: {error}", type_name) from None
    except RecursionError:
        raise DecodeError(DecodeReason.BAD_FIELDS, f"{type_name} v{version}: nested too deeply", type_name) from None
    message_id, src, ts, mono, cause = header
    return Envelope(
        topic=topic, type=type_name, v=version, id=message_id, src=src, ts=ts, mono=mono, cause=cause, message=message
    )


def _frames(frames: Sequence[bytes | bytearray | memoryview]) -> tuple[str, bytes]:
    if len(frames) != 2:
        raise DecodeError(DecodeReason.BAD_FRAMES, f"{len(frames)} frames, expected 2 (topic, body)")
    topic, body = _bytes(frames[0], MAX_TOPIC_BYTES), _bytes(frames[1], MAX_BODY_BYTES)
    try:
        return topic.decode(), body
    except UnicodeDecodeError:
        raise DecodeError(DecodeReason.BAD_FRAMES, f"topic {_short.repr(topic)} is not UTF-8") from None


def _bytes(frame: object, limit: int) -> bytes:
    """`frame` (bytes, or any buffer: a zmq.Frame, a memoryview) as bytes, if it is at most `limit` long."""
    if type(frame) is bytes:
        size = len(frame)
    else:
        try:
            view = memoryview(frame)  # type: ignore[arg-type]  # anything: a TypeError is the answer
        except TypeError:
            raise DecodeError(DecodeReason.BAD_FRAMES, f"a frame is a {type(frame).__name__}, not bytes") from None
        size = view.nbytes
    if size > limit:
        raise DecodeError(DecodeReason.BAD_FRAMES, f"a {size}-byte frame; at most {limit} bytes here")
    return frame if type(frame) is bytes else view.tobytes()


_Header = tuple[str, str, int, int, str | None]  # id, src, ts, mono, cause


def _envelope(top: object) -> tuple[str, int, dict[str, object], _Header]:
    """The type name, version, fields and the rest of an envelope map, every key's type checked."""
    if type(top) is not dict:
        raise DecodeError(DecodeReason.BAD_ENVELOPE, f"the body is a {type(top).__name__}, not a map")
    if top.keys() != _KEYS:
        missing = ", ".join(sorted(_KEYS - top.keys()))
        unknown = ", ".join(sorted(_short.repr(key) for key in top.keys() - _KEYS))
        detail = "; ".join(
            part for part in (missing and f"missing {missing}", unknown and f"unknown {unknown}") if part
        )
        raise DecodeError(DecodeReason.BAD_ENVELOPE, f"envelope keys: {detail}")
    type_name, version, fields, cause = top["type"], top["v"], top["body"], top["cause"]
    problem = None
    if type(type_name) is not str:
        problem = "type"
    elif type(version) is not int:
        problem = "v"
    elif type(fields) is not dict:
        problem = "body"
    elif cause is not None and type(cause) is not str:
        problem = "cause"
    else:
        for key in ("id", "src"):
            if type(top[key]) is not str:
                problem = key
        for key in ("ts", "mono"):
            if type(top[key]) is not int:
                problem = key
    if problem is not None:
        value = top[problem]
        detail = f"{problem!r} is a {type(value).__name__} {_short.repr(value)}"
        raise DecodeError(DecodeReason.BAD_ENVELOPE, detail)
    return type_name, version, fields, (top["id"], top["src"], top["ts"], top["mono"], cause)
