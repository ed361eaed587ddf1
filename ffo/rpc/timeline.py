"""The cluster's merged timeline: this node's streams and every replica, on one clock.

Each node stamps its records with its own wall clock. To put them on one timeline, a peer's timestamps are
moved by the clock offset this node measured to it (the last `rpc.clock_offset` or `rpc.peer_up` in its own
``rpc`` stream): a record the peer stamped at T happened at about T - offset on this node's clock, within half
the round trip. A node this one never had a direct link to (its history came through another peer) has no
measured offset: its records are shown on their own clock and the header says so.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from pathlib import Path

import attrs

from ffo.eventlog.reader import Corruption, read_merged, read_stream
from ffo.eventlog.record import Record

REPLICA_DIR = "replica"
OFFSET_TYPES = ("rpc.clock_offset", "rpc.peer_up")


@attrs.frozen(kw_only=True)
class Offset:
    """How far `node`'s wall clock was ahead of this node's, as last measured; None: never measured."""

    node: str
    offset_ns: int | None
    rtt_ns: int | None = None
    measured_ts_ns: int | None = None


@attrs.frozen(kw_only=True)
class Placed:
    """A record with its time on this node's clock."""

    record: Record
    time_ns: int
    offset_ns: int


def clock_offsets(events_dir: Path) -> dict[str, Offset]:
    """The last offset measured to each peer, from this node's ``rpc`` stream."""
    found: dict[str, Offset] = {}
    stream = events_dir / "rpc"
    if not stream.is_dir():
        return found
    for item in read_stream(stream):
        if isinstance(item, Corruption) or item.type not in OFFSET_TYPES:
            continue
        peer, offset, rtt = item.fields.get("peer"), item.fields.get("offset_ns"), item.fields.get("rtt_ns")
        if isinstance(peer, str) and isinstance(offset, int):
            found[peer] = Offset(
                node=peer, offset_ns=offset, rtt_ns=rtt if isinstance(rtt, int) else None, measured_ts_ns=item.ts_ns
            )
    return found


def replica_nodes(state_dir: Path) -> list[str]:
    root = state_dir / REPLICA_DIR
    if not root.is_dir():
        return []
    return sorted(path.name for path in root.iterdir() if path.is_dir())


def cluster_timeline(events_dir: Path, offsets: dict[str, Offset]) -> Iterator[Placed | Corruption]:
    """Every record of this node and of every replica under `<state_dir>/replica`, merged on this node's clock.

    Each node's records come in their own order (by monotonic time within the node); the nodes are merged by
    corrected wall time. Damage is passed through where it is met.
    """
    sources = [_placed(read_merged(events_dir), 0)]
    for node in replica_nodes(events_dir.parent):
        known = offsets.get(node)
        shift = known.offset_ns if known is not None and known.offset_ns is not None else 0
        sources.append(_placed(read_merged(events_dir.parent / REPLICA_DIR / node), shift))
    for _, item in heapq.merge(*sources, key=lambda pair: pair[0]):
        yield item


def _placed(items: Iterator[Record | Corruption], offset_ns: int) -> Iterator[tuple[int, Placed | Corruption]]:
    last = 0
    for item in items:
        if isinstance(item, Corruption):
            yield last, item
            continue
        last = item.ts_ns - offset_ns
        yield last, Placed(record=item, time_ns=last, offset_ns=offset_ns)
