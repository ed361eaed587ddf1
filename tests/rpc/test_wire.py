"""The RPC wire format: round trips, and every kind of garbage refused with its reason, never raised past."""

from __future__ import annotations

import msgpack
import pytest

from ffo.rpc.wire import (
    MAX_REQUEST_BYTES,
    ErrorReply,
    EventsReply,
    EventsRequest,
    Ping,
    Pong,
    ReplayGuard,
    WireError,
    WireProblem,
    decode_reply,
    decode_request,
    encode,
)
from ffo.vrrp.status import InstanceStatus

INSTANCE = InstanceStatus(
    name="web",
    vrid=51,
    family="IPv4",
    state="MASTER",
    priority=200,
    effective_priority=200,
    master="192.0.2.1",
    vips=("192.0.2.100/24",),
    timer_lateness_ms={"p50": 0.2, "p99": 0.4, "max": 1.5},
    counters={"adverts_sent": 10},
)


def test_requests_and_replies_round_trip() -> None:
    requests = [
        Ping(session=2**64 - 1, id=1, t1=1_700_000_000_000_000_000),
        EventsRequest(session=7, id=2, node="b", stream="vrrp", from_seq=1, max_records=100, max_bytes=65536),
    ]
    for request in requests:
        assert decode_request(encode(request)) == request
    replies = [
        Pong(id=1, node="b", t1=1, t2=2, t3=3, instances=(INSTANCE,), heads={"b": {"vrrp": 3}, "c": {"vip": 9}}),
        EventsReply(id=2, node="b", stream="vrrp", frames=(b"\x00" * 12, b"\x01"), first_seq=4, next_seq=6, head=9),
        EventsReply(id=4, node="b", stream="vrrp", frames=(), first_seq=9, next_seq=9, head=9, missing_reason="x"),
        ErrorReply(id=3, problem="replayed", detail="again"),
    ]
    for reply in replies:
        assert decode_reply(encode(reply)) == reply


def _problem(body: bytes, *, request: bool = True) -> WireProblem:
    with pytest.raises(WireError) as caught:
        (decode_request if request else decode_reply)(body)
    return caught.value.problem


def _pack(fields: object) -> bytes:
    packed: bytes = msgpack.packb(fields)
    return packed


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"\xc1", WireProblem.UNDECODABLE),
        (b"", WireProblem.UNDECODABLE),
        (_pack([1, 2]), WireProblem.NOT_A_MAP),
        (_pack({"op": "reboot", "id": 1, "session": 1}), WireProblem.UNKNOWN_OP),
        (_pack({"op": "ping", "id": -1, "session": 1, "t1": 0}), WireProblem.BAD_FIELD),
        (_pack({"op": "ping", "id": 1, "session": 1, "t1": "now"}), WireProblem.BAD_FIELD),
        (_pack({"op": "ping", "id": True, "session": 1, "t1": 0}), WireProblem.BAD_FIELD),
        (b"\x80" + b"\x00" * MAX_REQUEST_BYTES, WireProblem.OVERSIZED),
    ],
)
def test_bad_requests_are_refused_with_their_reason(body: bytes, problem: WireProblem) -> None:
    assert _problem(body) is problem


@pytest.mark.parametrize(
    "changes",
    [
        {"node": "../etc"},
        {"node": ""},
        {"stream": "a/b"},
        {"stream": ".."},
        {"from_seq": 0},
        {"max_records": 0},
        {"max_records": 10**9},
        {"max_bytes": 2**40},
    ],
)
def test_an_events_request_that_could_escape_the_log_or_ask_too_much_is_refused(changes: dict[str, object]) -> None:
    fields = {"op": "events", "session": 1, "id": 1, "node": "b", "stream": "vrrp", "from_seq": 1}
    fields |= {"max_records": 10, "max_bytes": 1000} | changes
    assert _problem(_pack(fields)) is WireProblem.BAD_FIELD


def test_a_pong_with_a_malformed_instance_or_heads_is_refused() -> None:
    good = {"op": "pong", "id": 1, "node": "b", "t1": 1, "t2": 2, "t3": 3, "instances": [], "heads": {}}
    assert isinstance(decode_reply(_pack(good)), Pong)
    assert _problem(_pack(good | {"instances": [{"vrid": 1}]}), request=False) is WireProblem.BAD_FIELD
    assert _problem(_pack(good | {"heads": {"b": {"vrrp": -1}}}), request=False) is WireProblem.BAD_FIELD
    assert _problem(_pack(good | {"heads": {"../x": {}}}), request=False) is WireProblem.BAD_FIELD
    reply = {"op": "events_reply", "id": 1, "node": "b", "stream": "s", "first_seq": 1, "next_seq": 1, "head": 0}
    assert _problem(_pack(reply | {"frames": ["text"]}), request=False) is WireProblem.BAD_FIELD


def test_the_replay_guard_refuses_repeats_and_earlier_sessions() -> None:
    guard = ReplayGuard()
    guard.check("b", session=10, request_id=1)
    guard.check("b", session=10, request_id=2)
    for again in (2, 1):
        with pytest.raises(WireError) as caught:
            guard.check("b", session=10, request_id=again)
        assert caught.value.problem is WireProblem.REPLAYED
    guard.check("c", session=10, request_id=1)  # another peer has its own numbering
    guard.check("b", session=99, request_id=1)  # b restarted: a new session starts over
    with pytest.raises(WireError):
        guard.check("b", session=10, request_id=3)  # ... and its old session is closed
    guard.check("b", session=99, request_id=2)
