"""Real daemons linked over CurveZMQ on loopback: resync, catch-up after a stop, the cluster view, the clock
offset, peers going down, and a stranger's key refused."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.auth

from ffo.cli.events import parse_time
from ffo.rpc.wire import ErrorReply, Ping, Pong, decode_reply, encode
from tests.rpc.support import RpcNode, ffo, free_port, records, wait_for

SKEW_MS = 2500.0


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ffo-r-"))  # short: ipc:// paths are limited to ~107 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pair(root: Path) -> Iterator[tuple[RpcNode, RpcNode]]:
    a = RpcNode(name="a", root=root, port=free_port())
    b = RpcNode(name="b", root=root, port=free_port(), skew=f"{SKEW_MS:.0f}ms")
    for node in (a, b):
        node.keygen()
    a.write_config([b])
    b.write_config([a])
    try:
        yield a, b
    finally:
        for node in (a, b):
            node.stop()


def replica_matches(holder: RpcNode, source: RpcNode) -> bool:
    """The holder's replica of `source` has every record `source` has written, identical field for field."""
    mine = records(holder.state_dir / "replica" / source.name) if (holder.state_dir / "replica").is_dir() else {}
    theirs = records(source.state_dir / "events")
    return bool(theirs) and all(mine.get(stream) == rows for stream, rows in theirs.items())


def test_two_nodes_link_resync_both_ways_and_measure_the_skewed_clock(pair: tuple[RpcNode, RpcNode]) -> None:
    a, b = pair
    a.start()
    b.start()
    seen = wait_for(lambda: (view := a.peer_view("b")) is not None and view["reachable"] and view, "a to reach b")
    assert abs(seen["clock_offset_ms"] - SKEW_MS) < 50, seen  # b's clock is made 2.5 s ahead
    assert seen["rtt_ms"] < 100
    back = wait_for(lambda: (view := b.peer_view("a")) is not None and view["reachable"] and view, "b to reach a")
    assert abs(back["clock_offset_ms"] + SKEW_MS) < 50, back
    assert wait_for(a.cluster, "a's cluster view")["split_brain"] == []

    wait_for(lambda: replica_matches(a, b), "a to hold b's history")
    wait_for(lambda: replica_matches(b, a), "b to hold a's history")

    # The merged timeline puts b's records on a's clock: b's node_started, stamped 2.5 s ahead, lands within
    # a moment of a's own (both daemons started together).
    done = ffo("events", "--dir", str(a.state_dir), "--cluster", "--json", "--type", "kernel.node_started")
    assert done.returncode == 0, done.stderr
    started = {row["node"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert set(started) == {"a", "b"}
    assert abs(started["b"]["clock_offset_ms"] - SKEW_MS) < 50
    gap_ms = abs(parse_time(started["b"]["time"], 0) - parse_time(started["a"]["time"], 0)) / 1e6
    recorded_gap_ms = abs(parse_time(started["b"]["recorded_time"], 0) - parse_time(started["a"]["time"], 0)) / 1e6
    assert gap_ms < 1500 < recorded_gap_ms, (gap_ms, recorded_gap_ms)
    text = ffo("events", "--dir", str(a.state_dir), "--cluster").stdout
    assert "# b: clock offset +2" in text, text[:500]


def test_a_stopped_peer_is_marked_down_and_catches_up_when_it_returns(pair: tuple[RpcNode, RpcNode]) -> None:
    a, b = pair
    a.start()
    b.start()
    wait_for(lambda: replica_matches(a, b) and replica_matches(b, a), "both replicas to be complete")
    wait_for(lambda: (view := b.peer_view("a")) is not None and view["reachable"], "b to show a reachable")
    a.stop()
    stopped = time.monotonic()
    down = wait_for(lambda: (view := b.peer_view("a")) is not None and not view["reachable"] and view, "a down")
    assert time.monotonic() - stopped < 3 * 1.0 + 5.0  # liveness 3 x 1 s heartbeat, plus polling slack
    assert down["last_heard_ms"] is not None
    # While a is away, b writes more history (its rpc stream records a's link going down) ...
    wait_for(lambda: any(row[5] == "rpc.peer_down" for row in records(b.state_dir / "events").get("rpc", [])), "b logs")
    a.start()
    # ... which a fetches when it returns, ending with identical streams on both sides.
    wait_for(lambda: replica_matches(a, b), "a to catch up with b")
    wait_for(lambda: replica_matches(b, a), "b to catch up with a's restart")
    caught_up = records(a.state_dir / "events")["rpc"]
    assert any(row[5] == "rpc.resync_caught_up" for row in caught_up)


def test_a_peer_with_an_unknown_key_is_refused_and_nothing_it_offers_is_taken(root: Path) -> None:
    a = RpcNode(name="a", root=root, port=free_port())
    b = RpcNode(name="b", root=root, port=free_port())
    mallory = RpcNode(name="mallory", root=root, port=free_port())
    for node in (a, b, mallory):
        node.keygen()
    a.write_config([b])
    # mallory claims to be b: the right name, but its own key, which a does not know
    mallory.write_config([a])
    text = mallory.config.read_text()
    mallory.config.write_text(text.replace('name = "mallory"', 'name = "b"', 1))
    try:
        a.start()
        mallory.start()
        refused = wait_for(
            lambda: any(row[5] == "rpc.peer_refused" for row in records(a.state_dir / "events").get("rpc", [])),
            "a to refuse mallory's key",
        )
        assert refused
        assert "unknown key" in ffo("events", "--dir", str(a.state_dir), "--type", "rpc.peer_refused").stdout
        view = a.peer_view("b")
        assert view is not None and not view["reachable"]
        assert not (a.state_dir / "replica" / "b").exists()
        assert not (a.state_dir / "replica" / "mallory").exists()
    finally:
        a.stop()
        mallory.stop()


def test_malformed_oversized_and_replayed_requests_are_refused_and_the_actor_keeps_serving(root: Path) -> None:
    a = RpcNode(name="a", root=root, port=free_port())
    b = RpcNode(name="b", root=root, port=free_port())
    for node in (a, b):
        node.keygen()
    a.write_config([b])
    a.start()
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    public, secret = zmq.auth.load_certificate(str(root / "keys" / "b.key_secret"))
    server_public, _ = zmq.auth.load_certificate(str(root / "keys" / "a.key"))
    sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = public, secret, server_public
    try:
        sock.connect(a.endpoint)

        def ask(body: bytes, timeout_ms: int = 10_000) -> object:
            """The reply to `body`, or None when none came (a request sent as the connection drops is lost)."""
            sock.send(body)
            return decode_reply(sock.recv()) if sock.poll(timeout_ms) else None

        wait_for(a.ready, "a's RPC actor to be ready")
        ping = Ping(session=42, id=1, t1=time.time_ns())
        assert isinstance(ask(encode(ping)), Pong)
        for garbage in (b"\xc1", msgpack.packb([1]), msgpack.packb({"op": "shutdown"}), b""):
            reply = ask(garbage)
            assert isinstance(reply, ErrorReply), reply
        replayed = ask(encode(ping))
        assert isinstance(replayed, ErrorReply) and replayed.problem == "replayed"
        # Oversized: the server socket drops it (and the connection) without reading it into memory;
        # the client reconnects and is served again.
        sock.send(b"\x00" * (1024 * 1024))
        ids = iter(range(2, 10_000))  # a fresh id on each attempt: a retry must not look like a replay
        fresh = (Ping(session=42, id=next(ids), t1=time.time_ns()) for _ in iter(int, 1))
        assert isinstance(wait_for(lambda: ask(encode(next(fresh)), 1000), "a to serve after the junk"), Pong)
        assert a.process is not None and a.process.poll() is None
    finally:
        sock.close(linger=0)
        context.term()
        a.stop()


def test_insecure_links_work_for_labs_and_say_so_at_every_start(root: Path) -> None:
    a = RpcNode(name="a", root=root, port=free_port())
    b = RpcNode(name="b", root=root, port=free_port())
    for node in (a, b):
        node.keygen()
    a.write_config([b], insecure=True)
    b.write_config([a], insecure=True)
    try:
        a.start()
        b.start()
        wait_for(lambda: replica_matches(a, b) and replica_matches(b, a), "both replicas to be complete")
        assert "NOT authenticated" in a.log_text() or "not authenticated" in a.log_text()
    finally:
        a.stop()
        b.stop()
