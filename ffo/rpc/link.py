"""One peer link's state, sans-IO: heartbeats, up/down, clock offset, and what to pull from the peer.

Paranoid-Pirate style: a ping every `heartbeat_ns`; *any* answer from the peer is a sign of life; after
`liveness` heartbeats without one the link is down. A ping is sent whether or not the previous was answered
(DEALER sockets with ZMQ_IMMEDIATE drop what cannot go out, so nothing queues up for a dead peer), and the
liveness check runs on our monotonic clock, never the wall clock, which can jump.

The link only marks a peer reachable or not. It never decides anything about VRRP mastership.

Resync follows the ZeroMQ guide's Clone pattern turned around: each pong carries the peer's stream heads
(its snapshot of sequence numbers), and the node pulls the numbered records it lacks, one bounded batch at a
time per link, until its heads reach the ones offered.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ffo.rpc.clocksync import ClockFilter, ClockSample
from ffo.rpc.wire import Pong
from ffo.vrrp.status import InstanceStatus

Heads = Mapping[str, Mapping[str, int]]
"""node → stream → last seq held."""


@attrs.frozen(kw_only=True)
class Wanted:
    """The next range to ask a peer for."""

    node: str
    stream: str
    from_seq: int
    upto: int
    """The peer's head for the stream when it offered it."""


def wanted(
    offered: Heads, held: Heads, *, own_node: str, busy: frozenset[tuple[str, str]] = frozenset()
) -> list[Wanted]:
    """What `offered` has beyond `held`, stream by stream, in a stable order (node, stream).

    The node's own streams are never pulled: its own files are the authority for them. `busy` streams (being
    fetched from another peer) are left out, so two peers never send the same records at once.
    """
    result = []
    for node in sorted(offered):
        if node == own_node:
            continue
        mine = held.get(node, {})
        for stream in sorted(offered[node]):
            head = offered[node][stream]
            have = mine.get(stream, 0)
            if head > have and (node, stream) not in busy:
                result.append(Wanted(node=node, stream=stream, from_seq=have + 1, upto=head))
    return result


def rewound(offered: Heads, held: Heads, *, peer: str) -> dict[str, tuple[int, int]]:
    """The peer's own streams that it offers *fewer* records of than this node holds: stream → (held, offered).

    A node's own files are the authority for its streams, so this means its log was reset or restored from an
    older copy: its new records reuse seqs this node already holds, and resync would take them as duplicates.
    Said loudly, never merged silently.
    """
    theirs, mine = offered.get(peer, {}), held.get(peer, {})
    return {stream: (mine[stream], head) for stream, head in sorted(theirs.items()) if mine.get(stream, 0) > head}


@attrs.frozen(kw_only=True)
class LinkChange:
    """The link went up or down at `now_ns` (monotonic)."""

    up: bool
    silent_ns: int = 0
    sample: ClockSample | None = None


@attrs.define(kw_only=True)
class PeerLink:
    name: str
    endpoint: str
    heartbeat_ns: int = 1_000_000_000
    liveness: int = 3
    up: bool = False
    last_heard_ns: int | None = None
    """Monotonic time of the last answer; None before the first."""
    next_ping_ns: int = 0
    clock: ClockFilter = attrs.field(factory=ClockFilter)
    offered: dict[str, dict[str, int]] = attrs.field(factory=dict)
    """The peer's heads from its last pong."""
    instances: tuple[InstanceStatus, ...] = ()
    """The peer's VRRP instances from its last pong."""
    logged_offset: ClockSample | None = None
    """The estimate last written to the event log."""

    @property
    def silence_bound_ns(self) -> int:
        """No answer for this long and the link is down."""
        return self.liveness * self.heartbeat_ns

    def ping_due(self, now_ns: int) -> bool:
        if now_ns < self.next_ping_ns:
            return False
        self.next_ping_ns = now_ns + self.heartbeat_ns
        return True

    def heard(self, now_ns: int) -> LinkChange | None:
        """Any answer: the peer lives. Returns the change when the link comes up."""
        self.last_heard_ns = now_ns
        if self.up:
            return None
        self.up = True
        return LinkChange(up=True)

    def on_pong(self, pong: Pong, t4_wall_ns: int, now_ns: int) -> LinkChange | None:
        change = self.heard(now_ns)
        new = self.clock.add(pong.t1, pong.t2, pong.t3, t4_wall_ns)
        self.offered = {node: dict(streams) for node, streams in pong.heads.items()}
        self.instances = pong.instances
        return change if change is None else attrs.evolve(change, sample=new)

    def check(self, now_ns: int, started_ns: int) -> LinkChange | None:
        """Mark the link down when the peer has been silent past the bound (counted from start if never heard)."""
        if not self.up:
            return None
        since = self.last_heard_ns if self.last_heard_ns is not None else started_ns
        silent = now_ns - since
        if silent <= self.silence_bound_ns:
            return None
        self.up = False
        self.clock.clear()
        self.logged_offset = None
        return LinkChange(up=False, silent_ns=silent)

    def offset_to_log(self) -> ClockSample | None:
        """The estimate, when it has moved enough since the last one logged to be worth a record."""
        estimate = self.clock.estimate
        if estimate is None:
            return None
        last = self.logged_offset
        if last is not None:
            threshold = max(1_000_000, estimate.delay_ns // 2)
            if abs(estimate.offset_ns - last.offset_ns) <= threshold:
                return None
        self.logged_offset = estimate
        return estimate
