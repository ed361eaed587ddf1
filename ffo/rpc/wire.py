"""The RPC wire format between nodes: one msgpack map per ZeroMQ message, checked field by field.

A peer is authenticated (CurveZMQ) but still remote: everything it sends is checked here and refused with a
`WireError` naming the reason, which the actor counts and answers; nothing a peer sends can raise anything
else. Requests go from a node's DEALER to its peer's ROUTER and carry

- ``session``: a random 64-bit number the sending node draws at start, and
- ``id``: increasing within the session, so a replayed request is recognised (`ReplayGuard`) and a reply is
  matched to the request it answers.

Two requests exist: ``ping`` (heartbeat, clock offset, and the peer's status and stream heads in the reply)
and ``events`` (a range of one stream's stored frames, for resync). Frames travel exactly as stored on disk,
checksum included, so the receiver verifies them end to end.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

import attrs
import msgpack

from ffo.bus.convert import ConversionError, structure, unstructure
from ffo.vrrp.status import InstanceStatus

MAX_REQUEST_BYTES: Final = 64 * 1024
"""Requests are small maps: anything bigger is refused by the server socket itself (ZMQ_MAXMSGSIZE)."""
MAX_REPLY_BYTES: Final = 32 * 1024 * 1024
"""An events reply holds at most `MAX_BATCH_BYTES` of frames plus one record up to the 16 MiB frame bound."""
MAX_BATCH_RECORDS: Final = 10_000
MAX_BATCH_BYTES: Final = 4 * 1024 * 1024
MAX_NAME_LENGTH: Final = 64


class WireProblem(enum.Enum):
    """Why a message was refused; the value names its counter."""

    UNDECODABLE = "undecodable"
    NOT_A_MAP = "not_a_map"
    UNKNOWN_OP = "unknown_op"
    BAD_FIELD = "bad_field"
    REPLAYED = "replayed"
    OVERSIZED = "oversized"


class WireError(Exception):
    def __init__(self, problem: WireProblem, detail: str) -> None:
        self.problem = problem
        self.detail = detail
        super().__init__(f"{problem.value}: {detail}")


@attrs.frozen(kw_only=True)
class Ping:
    """Heartbeat. `t1` is the sender's wall clock when it sent it."""

    session: int
    id: int
    t1: int


@attrs.frozen(kw_only=True)
class EventsRequest:
    """Stored frames of `node`'s `stream` from `from_seq`, at most `max_records` records / `max_bytes`."""

    session: int
    id: int
    node: str
    stream: str
    from_seq: int
    max_records: int
    max_bytes: int


Request = Ping | EventsRequest


@attrs.frozen(kw_only=True)
class Pong:
    """The answer to a ping: the NTP timestamps, the answering node's status and what it can serve.

    `t2` is the answerer's wall clock when the ping arrived and `t3` when the pong left. `heads` maps node →
    stream → last stored seq, for the node's own streams and every replica it holds. `status` is the
    node's VRRP instances in `ffo status --json`'s shape (empty when its VRRP actor has not reported).
    """

    id: int
    node: str
    t1: int
    t2: int
    t3: int
    instances: tuple[InstanceStatus, ...]
    heads: dict[str, dict[str, int]]


@attrs.frozen(kw_only=True)
class EventsReply:
    """Frames for seqs `first_seq` .. `next_seq - 1`; `head` is the stream's last seq when it was read.

    `first_seq` > the requested `from_seq` means the records in between no longer exist at the source
    (`missing_reason` says why: retention removed them, or they are damaged there): a gap the receiver
    records, never hides. With no frames, `first_seq` is where the source can resume.
    """

    id: int
    node: str
    stream: str
    frames: tuple[bytes, ...]
    first_seq: int
    next_seq: int
    head: int
    missing_reason: str = ""


@attrs.frozen(kw_only=True)
class ErrorReply:
    id: int
    problem: str
    detail: str


Reply = Pong | EventsReply | ErrorReply


# -- encoding ---------------------------------------------------------------------------------------------------


def encode(message: Request | Reply) -> bytes:
    fields = attrs.asdict(message, recurse=False)
    fields["op"] = _OPS[type(message)]
    if isinstance(message, Pong):
        fields["instances"] = [unstructure(instance) for instance in message.instances]
    elif isinstance(message, EventsReply):
        fields["frames"] = list(message.frames)
    packed: bytes = msgpack.packb(fields, use_bin_type=True)
    return packed


_OPS: Final[dict[type, str]] = {
    Ping: "ping",
    EventsRequest: "events",
    Pong: "pong",
    EventsReply: "events_reply",
    ErrorReply: "error",
}


# -- decoding ---------------------------------------------------------------------------------------------------


def decode_request(body: bytes) -> Request:
    fields = _unpack(body, MAX_REQUEST_BYTES)
    op = fields.get("op")
    if op == "ping":
        return Ping(session=_u64(fields, "session"), id=_u64(fields, "id"), t1=_int(fields, "t1"))
    if op == "events":
        return EventsRequest(
            session=_u64(fields, "session"),
            id=_u64(fields, "id"),
            node=_name(fields, "node"),
            stream=_name(fields, "stream"),
            from_seq=_bounded(fields, "from_seq", 1, 2**63),
            max_records=_bounded(fields, "max_records", 1, MAX_BATCH_RECORDS),
            max_bytes=_bounded(fields, "max_bytes", 1, MAX_BATCH_BYTES),
        )
    raise WireError(WireProblem.UNKNOWN_OP, f"request op {op!r}")


def decode_reply(body: bytes) -> Reply:
    fields = _unpack(body, MAX_REPLY_BYTES)
    op = fields.get("op")
    if op == "pong":
        return Pong(
            id=_u64(fields, "id"),
            node=_name(fields, "node"),
            t1=_int(fields, "t1"),
            t2=_int(fields, "t2"),
            t3=_int(fields, "t3"),
            instances=_instances(fields),
            heads=_heads(fields),
        )
    if op == "events_reply":
        return EventsReply(
            id=_u64(fields, "id"),
            node=_name(fields, "node"),
            stream=_name(fields, "stream"),
            frames=_frames(fields),
            first_seq=_bounded(fields, "first_seq", 1, 2**63),
            next_seq=_bounded(fields, "next_seq", 1, 2**63),
            head=_bounded(fields, "head", 0, 2**63),
            missing_reason=_text(fields, "missing_reason"),
        )
    if op == "error":
        return ErrorReply(id=_u64(fields, "id"), problem=_text(fields, "problem"), detail=_text(fields, "detail"))
    raise WireError(WireProblem.UNKNOWN_OP, f"reply op {op!r}")


def _unpack(body: bytes, limit: int) -> dict[str, Any]:
    if len(body) > limit:
        raise WireError(WireProblem.OVERSIZED, f"{len(body)} bytes, more than {limit}")
    try:
        value = msgpack.unpackb(body, raw=False, strict_map_key=True, max_bin_len=limit, max_str_len=limit)
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise WireError(WireProblem.UNDECODABLE, str(error) or type(error).__name__) from None
    if type(value) is not dict:
        raise WireError(WireProblem.NOT_A_MAP, f"a {type(value).__name__}")
    return value


def _bad(key: str, why: str) -> WireError:
    return WireError(WireProblem.BAD_FIELD, f"{key}: {why}")


def _int(fields: Mapping[str, Any], key: str) -> int:
    value = fields.get(key)
    if type(value) is not int:
        raise _bad(key, f"expected an integer, got {type(value).__name__}")
    return value


def _bounded(fields: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = _int(fields, key)
    if not low <= value <= high:
        raise _bad(key, f"{value} is not in {low}..{high}")
    return value


def _u64(fields: Mapping[str, Any], key: str) -> int:
    return _bounded(fields, key, 0, 2**64 - 1)


def _text(fields: Mapping[str, Any], key: str, limit: int = 4096) -> str:
    value = fields.get(key)
    if type(value) is not str or len(value) > limit:
        raise _bad(key, f"expected a string of at most {limit} characters")
    return value


def _name(fields: Mapping[str, Any], key: str) -> str:
    value = _text(fields, key, MAX_NAME_LENGTH)
    if not is_safe_name(value):
        raise _bad(key, f"{value!r} is not a node or stream name")
    return value


def is_safe_name(value: str) -> bool:
    """A node or stream name that can be a directory name: no separators, not empty, not "." or ".."."""
    return 0 < len(value) <= MAX_NAME_LENGTH and value not in (".", "..") and value.isprintable() and "/" not in value


def _frames(fields: Mapping[str, Any]) -> tuple[bytes, ...]:
    value = fields.get("frames")
    if type(value) is not list or len(value) > MAX_BATCH_RECORDS + 1:
        raise _bad("frames", "expected a list of at most one batch")
    if not all(type(frame) is bytes for frame in value):
        raise _bad("frames", "every frame must be bytes")
    return tuple(value)


def _instances(fields: Mapping[str, Any]) -> tuple[InstanceStatus, ...]:
    value = fields.get("instances")
    if type(value) is not list or len(value) > 4096:
        raise _bad("instances", "expected a list of at most 4096 instances")
    try:
        return tuple(structure(item, InstanceStatus) for item in value)
    except ConversionError as error:
        raise _bad("instances", str(error)) from None


def _heads(fields: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    value = fields.get("heads")
    if type(value) is not dict or len(value) > 1024:
        raise _bad("heads", "expected a map of nodes")
    heads: dict[str, dict[str, int]] = {}
    for node, streams in value.items():
        if type(node) is not str or not is_safe_name(node) or type(streams) is not dict or len(streams) > 1024:
            raise _bad("heads", f"node {node!r}: expected a map of streams")
        for stream, seq in streams.items():
            if type(stream) is not str or not is_safe_name(stream) or type(seq) is not int or seq < 0:
                raise _bad("heads", f"{node}/{stream!r}: expected a stream name and a seq")
        heads[node] = dict(streams)
    return heads


@attrs.define
class ReplayGuard:
    """Refuses a request whose (peer, session, id) is not newer than the last one accepted in that session.

    CurveZMQ already refuses replayed ciphertext on one connection; this covers an authenticated peer (or a
    bug) sending the same request again, and makes every accepted request's effect happen once. A new
    session (the peer restarted) starts over and closes the earlier ones: the last `sessions_kept` sessions of
    each peer are remembered, and a request of any but the newest is refused. The table is bounded by the
    configured peers.
    """

    sessions_kept: int = 8
    _last: dict[str, dict[int, int]] = attrs.field(factory=dict)

    def check(self, peer: str, session: int, request_id: int) -> None:
        sessions = self._last.setdefault(peer, {})
        last = sessions.get(session)
        if last is not None and (request_id <= last or session != next(reversed(sessions))):
            raise WireError(WireProblem.REPLAYED, f"{peer}: request {request_id} of session {session:#x} again")
        if last is None:
            # An unknown session appears only when the peer restarts: it becomes the current one.
            while len(sessions) >= self.sessions_kept:
                del sessions[next(iter(sessions))]
        sessions[session] = request_id
