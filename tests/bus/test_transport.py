"""The node bus over inproc, ipc and tcp: round trips through the proxy, and garbage that is dropped."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
import zmq
import zmq.asyncio

from ffo.bus.envelope import Envelope
from ffo.bus.messages import Heartbeat, Stop
from ffo.bus.transport import DEFAULT_RECEIVE_BATCH, BusClient, BusEndpoints, BusProxy, Transport, bind_addresses


@pytest_asyncio.fixture(params=list(Transport), ids=lambda t: t.value)
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[tuple[zmq.asyncio.Context, BusEndpoints]]:
    run_dir = Path(tempfile.mkdtemp(prefix="ffo-b-"))
    context = zmq.asyncio.Context()
    proxy = BusProxy(zmq.Context.shadow(context.underlying), bind_addresses(request.param, "t", run_dir))
    endpoints = proxy.start()
    yield context, endpoints
    proxy.stop()
    context.destroy(linger=0)
    proxy.join()
    shutil.rmtree(run_dir, ignore_errors=True)


async def _resend_until_received(send: Callable[[], Awaitable[str]], receiver: BusClient) -> Envelope:
    async with asyncio.timeout(20):
        while True:
            sent = await send()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    while True:
                        envelope = await receiver.receive()
                        if envelope.id == sent:
                            return envelope


@pytest.mark.asyncio
async def test_round_trip_keeps_envelope_and_cause(bus: tuple[zmq.asyncio.Context, BusEndpoints]) -> None:
    context, endpoints = bus
    alice = BusClient(context, endpoints, src="n/alice", topics=("cmd.alice",))
    bob = BusClient(context, endpoints, src="n/bob", topics=("sys.",))
    await alice.join()
    await bob.join()
    # Each join proves the joiner's own subscriptions reached the proxy; the proxy forwards bob's to alice's
    # publisher a moment later, and a PUB drops what nobody has subscribed to yet: resend until one arrives.
    heartbeat = Heartbeat(actor="alice", pid=1, seq=7, loop_lag_ns=5)
    envelope = await _resend_until_received(lambda: alice.publish("sys.heartbeat", heartbeat), bob)
    assert envelope.message == heartbeat
    assert envelope.topic == "sys.heartbeat" and envelope.src == "n/alice"
    assert envelope.ts > 0 and envelope.mono > 0
    stop = Stop(actor="alice", reason="test")
    reply = await _resend_until_received(lambda: bob.publish("cmd.alice", stop, cause=envelope.id), alice)
    assert reply.cause == envelope.id and reply.message == stop
    alice.close()
    bob.close()


@pytest.mark.asyncio
async def test_garbage_is_counted_and_dropped(bus: tuple[zmq.asyncio.Context, BusEndpoints]) -> None:
    context, endpoints = bus
    receiver = BusClient(context, endpoints, src="n/rx", topics=("sys.",))
    sender = BusClient(context, endpoints, src="n/tx", topics=())
    await receiver.join()
    await sender.join()
    raw = context.socket(zmq.PUB)
    raw.linger = 0
    raw.connect(endpoints.publish)
    # The raw socket is a slow joiner too: keep sending garbage until the receiver has counted some.
    async with asyncio.timeout(20):
        while not sum(receiver.rejected.values()):
            await raw.send_multipart([b"sys.junk", b"\xc1not msgpack"])
            await raw.send_multipart([b"sys.one-frame"])
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.01):
                    await receiver.receive()
    await sender.publish("sys.heartbeat", Heartbeat(actor="tx", pid=2, seq=1, loop_lag_ns=0))
    while True:
        envelope = await receiver.receive()
        if isinstance(envelope.message, Heartbeat):
            break
    assert sum(receiver.rejected.values()) >= 1
    raw.close()
    receiver.close()
    sender.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("receive_batch", [1, 3, DEFAULT_RECEIVE_BATCH])
async def test_a_burst_arrives_whole_and_in_order(
    bus: tuple[zmq.asyncio.Context, BusEndpoints], receive_batch: int
) -> None:
    """Batched receives (several messages per wait) keep every message, in order, with garbage dropped."""
    context, endpoints = bus
    receiver = BusClient(context, endpoints, src="n/rx", topics=("sys.",), receive_batch=receive_batch)
    sender = BusClient(context, endpoints, src="n/tx", topics=())
    await receiver.join()
    await sender.join()
    raw = context.socket(zmq.PUB)
    raw.linger = 0
    raw.connect(endpoints.publish)
    # A raw socket is a slow joiner: garbage until the receiver has counted some (a poll is not enough: what
    # wakes it may be a late hello), then the burst with more garbage in the middle.
    async with asyncio.timeout(20):
        while not receiver.rejected["not_msgpack"]:
            await raw.send_multipart([b"sys.junk", b"\xc1not msgpack"])
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.01):
                    await receiver.receive()
    counted = receiver.rejected["not_msgpack"]
    count = 200  # well under the high-water marks (1000 per pipe): nothing may be dropped
    for seq in range(1, count + 1):
        await sender.publish("sys.heartbeat", Heartbeat(actor="tx", pid=2, seq=seq, loop_lag_ns=0))
        if seq == count // 2:
            await raw.send_multipart([b"sys.junk", b"\xc1not msgpack"])
    seqs: list[int] = []
    async with asyncio.timeout(20):
        while len(seqs) < count:
            message = (await receiver.receive()).message
            if isinstance(message, Heartbeat):
                seqs.append(message.seq)
    assert seqs == list(range(1, count + 1))
    # The garbage came through another pipe: it may arrive after the burst, but it is counted, not delivered.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            while receiver.rejected["not_msgpack"] == counted:
                await receiver.receive()
    assert receiver.rejected["not_msgpack"] > counted
    raw.close()
    receiver.close()
    sender.close()


def test_receive_batch_must_be_positive() -> None:
    context = zmq.asyncio.Context()
    try:
        endpoints = BusEndpoints(publish="inproc://unused-in", subscribe="inproc://unused-out")
        with pytest.raises(ValueError, match="receive_batch"):
            BusClient(context, endpoints, src="n/x", topics=(), receive_batch=0)
    finally:
        context.destroy(linger=0)
