"""A peer link's heartbeat, liveness, clock offset and resync plan, on a fake clock."""

from __future__ import annotations

from ffo.rpc.clocksync import ClockFilter, sample
from ffo.rpc.link import PeerLink, Wanted, rewound, wanted
from ffo.rpc.wire import Pong

S = 1_000_000_000
MS = 1_000_000


def test_offset_and_delay_follow_the_ntp_formulas() -> None:
    # their clock is 500 ms ahead; 2 ms each way; 1 ms to answer
    t1 = 10 * S
    t2 = t1 + 2 * MS + 500 * MS
    t3 = t2 + 1 * MS
    t4 = t1 + 5 * MS
    found = sample(t1, t2, t3, t4)
    assert found.offset_ns == 500 * MS
    assert found.delay_ns == 4 * MS


def test_the_filter_keeps_the_sample_with_the_shortest_round_trip() -> None:
    clock = ClockFilter(size=4)
    assert clock.estimate is None
    clock.add(0, 10 * MS, 10 * MS, 2 * MS)  # symmetric, 2 ms round trip: offset 9 ms
    clock.add(0, 30 * MS, 30 * MS, 40 * MS)  # queued on the way back: 40 ms round trip, offset 10 ms
    assert clock.estimate is not None and clock.estimate.delay_ns == 2 * MS
    assert clock.estimate.offset_ns == 9 * MS
    for _ in range(4):  # the good sample ages out
        clock.add(0, 30 * MS, 30 * MS, 40 * MS)
    assert clock.estimate.delay_ns == 40 * MS


def _pong(request_id: int, t1: int, heads: dict[str, dict[str, int]] | None = None) -> Pong:
    return Pong(id=request_id, node="b", t1=t1, t2=t1 + MS, t3=t1 + MS, instances=(), heads=heads or {})


def test_a_link_comes_up_on_the_first_pong_and_goes_down_after_three_silent_heartbeats() -> None:
    link = PeerLink(name="b", endpoint="tcp://192.0.2.2:7000", heartbeat_ns=S, liveness=3)
    assert link.ping_due(0) and not link.ping_due(S // 2) and link.ping_due(S)
    change = link.on_pong(_pong(1, 0), 2 * MS, now_ns=S + 2 * MS)
    assert change is not None and change.up and change.sample is not None
    assert link.on_pong(_pong(2, 0), 2 * MS, now_ns=2 * S) is None  # already up
    assert link.check(5 * S, started_ns=0) is None  # silent for exactly the bound: still up
    down = link.check(5 * S + 1, started_ns=0)
    assert down is not None and not down.up and down.silent_ns == 3 * S + 1
    assert link.check(6 * S, started_ns=0) is None  # reported once
    assert link.clock.estimate is None  # old samples describe a link that went away


def test_the_offset_is_logged_when_first_known_and_then_only_when_it_moves() -> None:
    link = PeerLink(name="b", endpoint="e")
    link.on_pong(Pong(id=1, node="b", t1=0, t2=100 * MS, t3=100 * MS, instances=(), heads={}), 0, now_ns=0)
    first = link.offset_to_log()
    assert first is not None and first.offset_ns == 100 * MS
    link.on_pong(Pong(id=2, node="b", t1=0, t2=100 * MS + MS // 2, t3=100 * MS + MS // 2, instances=(), heads={}), 0, 0)
    assert link.offset_to_log() is None  # moved by 0.5 ms: noise
    link.clock.clear()
    link.on_pong(Pong(id=3, node="b", t1=0, t2=250 * MS, t3=250 * MS, instances=(), heads={}), 0, now_ns=0)
    stepped = link.offset_to_log()
    assert stepped is not None and stepped.offset_ns == 250 * MS


def test_resync_wants_what_is_offered_beyond_what_is_held_but_never_this_nodes_own_streams() -> None:
    offered = {"a": {"vrrp": 50}, "b": {"vrrp": 10, "vip": 4, "kernel": 2}, "c": {"rpc": 7}}
    held = {"b": {"vrrp": 10, "vip": 1}}
    assert wanted(offered, held, own_node="a") == [
        Wanted(node="b", stream="kernel", from_seq=1, upto=2),
        Wanted(node="b", stream="vip", from_seq=2, upto=4),
        Wanted(node="c", stream="rpc", from_seq=1, upto=7),
    ]
    assert wanted(offered, held, own_node="a", busy=frozenset({("b", "kernel"), ("b", "vip")})) == [
        Wanted(node="c", stream="rpc", from_seq=1, upto=7)
    ]
    assert wanted({"b": {"vrrp": 3}}, {"b": {"vrrp": 9}}, own_node="a") == []


def test_a_peer_offering_fewer_of_its_own_records_than_are_held_has_rewound_its_log() -> None:
    offered = {"b": {"vrrp": 3, "vip": 9}, "c": {"vrrp": 1}}
    held = {"b": {"vrrp": 40, "vip": 9}, "c": {"vrrp": 5}}
    assert rewound(offered, held, peer="b") == {"vrrp": (40, 3)}  # c's streams are b's replicas: not its word
    assert rewound(offered, {}, peer="b") == {}
