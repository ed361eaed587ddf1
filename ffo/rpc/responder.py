"""Answers peers' requests: pings (with this node's status and stream heads) and event ranges.

I/O is only file reads of the event log and the replica area; the peer's identity, the clocks and the
status come in as arguments, so every answer can be tested without a socket. Anything a peer sends that does
not check out is answered with an `ErrorReply` and counted by reason; nothing it sends raises.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import attrs
import msgpack

from ffo.eventlog.ranges import read_range, stream_heads
from ffo.rpc.replica import ReplicaStore
from ffo.rpc.wire import (
    MAX_REQUEST_BYTES,
    ErrorReply,
    EventsReply,
    EventsRequest,
    Ping,
    Pong,
    ReplayGuard,
    Reply,
    WireError,
    decode_request,
    encode,
)
from ffo.vrrp.status import InstanceStatus

HEADS_CACHE_NS = 100_000_000
"""Heads are read from disk at most this often: a burst of pings from several peers costs one scan."""


@attrs.define(kw_only=True)
class Responder:
    node: str
    events_dir: Path
    replica: ReplicaStore
    instances: Callable[[], tuple[InstanceStatus, ...]]
    """This node's VRRP instances in `ffo status --json`'s shape, as last reported."""
    guard: ReplayGuard = attrs.field(factory=ReplayGuard)
    refused: Counter[str] = attrs.field(factory=Counter)
    served_records: int = 0
    _heads: dict[str, dict[str, int]] | None = None
    _heads_at_ns: int = 0

    def answer(self, peer: str, body: bytes, *, wall_ns: Callable[[], int], now_ns: int) -> bytes:
        """The reply to one request from `peer` (its authenticated name, or its connection when insecure)."""
        t2 = wall_ns()
        try:
            request = decode_request(body)
            self.guard.check(peer, request.session, request.id)
        except WireError as error:
            self.refused[error.problem.value] += 1
            return encode(ErrorReply(id=_request_id(body), problem=error.problem.value, detail=error.detail))
        reply: Reply
        if isinstance(request, Ping):
            heads, instances = self.heads(now_ns), self.instances()
            reply = Pong(
                id=request.id, node=self.node, t1=request.t1, t2=t2, t3=wall_ns(), instances=instances, heads=heads
            )
        else:
            reply = self._events(request)
        return encode(reply)

    def heads(self, now_ns: int) -> dict[str, dict[str, int]]:
        """node → stream → last seq, for this node's own streams and every replica held."""
        if self._heads is None or now_ns - self._heads_at_ns >= HEADS_CACHE_NS:
            heads: dict[str, dict[str, int]] = {}
            own = {stream: seq for stream, seq in stream_heads(self.events_dir).items() if seq > 0}
            if own:
                heads[self.node] = own
            for (node, stream), seq in self.replica.heads().items():
                if seq > 0:
                    heads.setdefault(node, {})[stream] = seq
            self._heads, self._heads_at_ns = heads, now_ns
        return self._heads

    def _events(self, request: EventsRequest) -> Reply:
        if request.node == self.node:
            directory = self.events_dir / request.stream
        else:
            directory = self.replica.stream_dir(request.node, request.stream)
        if not directory.is_dir():
            return ErrorReply(id=request.id, problem="unknown_stream", detail=f"{request.node}/{request.stream}")
        found = read_range(directory, request.from_seq, max_records=request.max_records, max_bytes=request.max_bytes)
        self.served_records += len(found.frames)
        first_seq, reason = found.first_seq, ""
        if found.missing_before is not None:
            reason = "no longer stored at the source (retention)"
        if not found.frames and found.damage is not None and found.resume_seq is not None:
            first_seq, reason = found.resume_seq, f"damaged at the source: {found.damage.describe()}"
        return EventsReply(
            id=request.id,
            node=request.node,
            stream=request.stream,
            frames=found.frames,
            first_seq=first_seq,
            next_seq=max(found.next_seq, first_seq),
            head=found.head,
            missing_reason=reason,
        )


def _request_id(body: bytes) -> int:
    """The id to put on an error reply: the request's, if it can be read at all, so the sender can match it."""
    if len(body) > MAX_REQUEST_BYTES:
        return 0
    try:
        value = msgpack.unpackb(body, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        return 0
    request_id = value.get("id") if isinstance(value, dict) else None
    return request_id if type(request_id) is int and 0 <= request_id < 2**64 else 0
