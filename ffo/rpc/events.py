"""What the RPC actor logs in its stream (``rpc``) and publishes: peer links, clock offsets, resync (pure).

These answer the postmortem questions about the cluster itself: was the peer reachable when it happened, how
far apart were the clocks (so the merged timeline can be trusted), did this node see all of the other nodes'
history, and where is history missing. `ffo events --cluster` takes each peer's last logged clock offset from
here.
"""

from __future__ import annotations

import attrs

from ffo.bus.messages import message
from ffo.eventlog.describe import Described, describer
from ffo.vrrp.status import InstanceStatus
from ffo.vrrp.timers import format_ns

__all__ = [
    "CLUSTER_TOPIC",
    "ClockOffsetMeasured",
    "ClusterStatus",
    "PeerLinkDown",
    "PeerLinkUp",
    "PeerRefused",
    "PeerStatus",
    "ResyncCaughtUp",
    "ResyncGap",
]

CLUSTER_TOPIC = "sys.cluster"


@message("rpc.peer_up", version=1)
@attrs.frozen(kw_only=True)
class PeerLinkUp:
    """The first answer from `peer` since start or since its link was marked down."""

    peer: str
    endpoint: str
    rtt_ns: int
    offset_ns: int


@message("rpc.peer_down", version=1)
@attrs.frozen(kw_only=True)
class PeerLinkDown:
    """`peer` has not answered for `silent_ns` (the heartbeat bound): its link is down."""

    peer: str
    endpoint: str
    silent_ns: int


@message("rpc.clock_offset", version=1)
@attrs.frozen(kw_only=True)
class ClockOffsetMeasured:
    """`peer`'s wall clock is `offset_ns` ahead of this node's (negative: behind), within ± `rtt_ns` / 2.

    Logged when the link comes up and then when the estimate moves by more than the larger of 1 ms and half
    the round trip, so a steady offset costs nothing and a clock step is on the record.
    """

    peer: str
    offset_ns: int
    rtt_ns: int


@message("rpc.resync_gap", version=1)
@attrs.frozen(kw_only=True)
class ResyncGap:
    """Records `first_seq`..`last_seq` of `node`'s `stream` cannot be had from `peer`: they are missing here."""

    peer: str
    node: str
    stream: str
    first_seq: int
    last_seq: int
    reason: str


@message("rpc.resync_caught_up", version=1)
@attrs.frozen(kw_only=True)
class ResyncCaughtUp:
    """This node holds everything `peer` offered when its link came up: `records` fetched in `took_ns`."""

    peer: str
    records: int
    took_ns: int


@message("rpc.peer_refused", version=1)
@attrs.frozen(kw_only=True)
class PeerRefused:
    """A connection with a CURVE key that is not any configured peer's was refused (first time per key)."""

    key: str
    address: str


@attrs.frozen(kw_only=True)
class PeerStatus:
    """One peer as the RPC actor sees it, for `ffo status --cluster`."""

    name: str
    endpoint: str
    reachable: bool
    rtt_ms: float | None
    clock_offset_ms: float | None
    instances: tuple[InstanceStatus, ...]
    """The peer's instances as it last reported them (kept while it is unreachable, marked so)."""
    last_heard_ms: float | None
    """How long ago the peer last answered; None if it never has."""


@message("rpc.cluster_status", version=1)
@attrs.frozen(kw_only=True)
class ClusterStatus:
    """The RPC actor's view of its peers, published on `sys.cluster` for the kernel's control socket."""

    node: str
    peers: tuple[PeerStatus, ...]
    counters: dict[str, int]


def _signed(ns: int) -> str:
    return f"{'+' if ns >= 0 else '-'}{format_ns(abs(ns))}"


@describer(PeerLinkUp)
def _describe_up(event: PeerLinkUp) -> Described:
    return Described(
        instance=None,
        summary=f"link to {event.peer} ({event.endpoint}) up, rtt {format_ns(event.rtt_ns)}, "
        f"clock offset {_signed(event.offset_ns)}",
    )


@describer(PeerLinkDown)
def _describe_down(event: PeerLinkDown) -> Described:
    return Described(
        instance=None, summary=f"link to {event.peer} ({event.endpoint}) down: silent for {format_ns(event.silent_ns)}"
    )


@describer(ClockOffsetMeasured)
def _describe_offset(event: ClockOffsetMeasured) -> Described:
    return Described(
        instance=None,
        summary=f"{event.peer}'s clock is {_signed(event.offset_ns)} from ours (± {format_ns(event.rtt_ns // 2)})",
    )


@describer(ResyncGap)
def _describe_gap(event: ResyncGap) -> Described:
    return Described(
        instance=None,
        summary=f"GAP: {event.node}/{event.stream} records {event.first_seq}..{event.last_seq} are missing "
        f"(from {event.peer}: {event.reason})",
    )


@describer(ResyncCaughtUp)
def _describe_caught_up(event: ResyncCaughtUp) -> Described:
    return Described(
        instance=None,
        summary=f"caught up with {event.peer}: {event.records} records in {format_ns(event.took_ns)}",
    )


@describer(PeerRefused)
def _describe_refused(event: PeerRefused) -> Described:
    return Described(instance=None, summary=f"refused a connection from {event.address}: unknown key {event.key}")
