"""The node bus on ZeroMQ: an XSUB/XPUB proxy owned by the kernel, and the client every actor uses.

Topology: every actor PUB-connects to the proxy's XSUB side and SUB-connects to its XPUB side, so actors never
need to know each other's addresses and any process may restart alone. The proxy is libzmq's own
`zmq.proxy_steerable`, run in a thread: its loop is C and releases the GIL, so forwarding costs the kernel's
Python nothing. The same code runs over `inproc://` (one process, one shared context), `ipc://` (sockets under
the node's run directory) and `tcp://` (loopback here; between nodes it is the RPC actor's job).

PUB/SUB drops what is sent before a subscription reaches the publisher (the "slow joiner"): `BusClient.join`
publishes a `Hello` with a fresh nonce until it hears its own hello back through the proxy, which proves that
both its directions are live before the actor says it is ready.

Receiving in batches (tools/bench_bus.py): an awaited `recv_multipart` of zmq.asyncio costs a Future, a
callback and three or four `getsockopt(EVENTS)` per message, about as much as decoding it. `BusClient` therefore
takes what the socket already holds with plain non-blocking receives on a synchronous shadow of the same
socket (up to `receive_batch` at a time) and awaits only when it holds nothing. Publishing goes through the
shadow too: a PUB socket never blocks (past its high-water mark it drops), so the Future would only be
overhead. Neither changes when the loop is yielded to: a zmq.asyncio call that can complete at once does not
yield either.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import secrets
import threading
from collections import Counter, deque
from collections.abc import Iterable
from pathlib import Path

import attrs
import zmq
import zmq.asyncio

from ffo.bus.codec import DecodeError, decode, encode
from ffo.bus.envelope import Envelope
from ffo.bus.messages import Hello
from ffo.clock import Clock, SystemClock

log = logging.getLogger("ffo.bus")
DEFAULT_RECEIVE_BATCH = 64
"""Messages a `BusClient` takes from its socket at once; a bus message is ~200 bytes, so 64 are ~13 KB."""


class Transport(enum.Enum):
    INPROC = "inproc"
    IPC = "ipc"
    TCP = "tcp"


@attrs.frozen(kw_only=True)
class BusEndpoints:
    """Where actors connect: `publish` is the proxy's XSUB side, `subscribe` its XPUB side."""

    publish: str
    subscribe: str


def bind_addresses(transport: Transport, node: str, run_dir: Path) -> BusEndpoints:
    """The addresses the proxy binds (tcp ports are chosen by the kernel at bind time)."""
    if transport is Transport.INPROC:
        return BusEndpoints(publish=f"inproc://ffo-{node}-bus-in", subscribe=f"inproc://ffo-{node}-bus-out")
    if transport is Transport.IPC:
        return BusEndpoints(publish=f"ipc://{run_dir}/bus-in.sock", subscribe=f"ipc://{run_dir}/bus-out.sock")
    return BusEndpoints(publish="tcp://127.0.0.1:*", subscribe="tcp://127.0.0.1:*")


class BusProxy:
    """The node bus: XSUB (actors publish in) <-> XPUB (actors subscribe out), in a thread."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], addresses: BusEndpoints) -> None:
        self._context = context
        self._addresses = addresses
        self._control_address = f"inproc://ffo-proxy-control-{secrets.token_hex(4)}"
        self._ready = threading.Event()
        self._endpoints: BusEndpoints | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="ffo-bus-proxy", daemon=True)
        self._control: zmq.Socket[bytes] | None = None

    def start(self, timeout: float = 10.0) -> BusEndpoints:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the bus proxy did not start")
        if self._error is not None or self._endpoints is None:
            raise RuntimeError(f"the bus proxy could not bind: {self._error}")
        # Connected now, while the proxy is idle, so that TERMINATE later only has to be sent.
        self._control = self._context.socket(zmq.PAIR)
        self._control.linger = 1000
        self._control.connect(self._control_address)
        return self._endpoints

    def _serve(self) -> None:
        frontend = self._context.socket(zmq.XSUB)
        backend = self._context.socket(zmq.XPUB)
        control = self._context.socket(zmq.PAIR)
        for sock in (frontend, backend, control):
            sock.linger = 0
        try:
            frontend.bind(self._addresses.publish)
            backend.bind(self._addresses.subscribe)
            control.bind(self._control_address)
            self._endpoints = BusEndpoints(
                publish=frontend.getsockopt_string(zmq.LAST_ENDPOINT),
                subscribe=backend.getsockopt_string(zmq.LAST_ENDPOINT),
            )
        except zmq.ZMQError as error:
            self._error = error
            self._ready.set()
            for sock in (frontend, backend, control):
                sock.close()
            return
        self._ready.set()
        try:
            zmq.proxy_steerable(frontend, backend, None, control)
        except zmq.ZMQError as error:
            if error.errno != zmq.ETERM:
                log.error("bus proxy stopped: %s", error)
        finally:
            for sock in (frontend, backend, control):
                sock.close()

    def stop(self, timeout: float = 0.2) -> None:
        """Ask the proxy to end. libzmq 4.3 sometimes misses TERMINATE on the control socket, so the sure
        way out is the caller's next step: terminating the context gives the proxy ETERM and it closes its
        sockets itself (never close them from another thread: libzmq aborts). Then call `join`."""
        if self._control is not None:
            self._control.send(b"TERMINATE")
            self._control.close()
            self._control = None
        self._thread.join(timeout)

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the bus proxy did not stop within %.1f s", timeout)


class BusClient:
    """One actor's pair of sockets on the node bus, with the envelope codec and drop counters."""

    def __init__(
        self,
        context: zmq.asyncio.Context,
        endpoints: BusEndpoints,
        *,
        src: str,
        topics: Iterable[str],
        clock: Clock | None = None,
        receive_batch: int = DEFAULT_RECEIVE_BATCH,
    ) -> None:
        if receive_batch < 1:
            raise ValueError(f"receive_batch must be at least 1, not {receive_batch!r}")
        self.src = src
        self.clock = clock or SystemClock()
        self.rejected: Counter[str] = Counter()
        self._pub = context.socket(zmq.PUB)
        self._sub = context.socket(zmq.SUB)
        for sock in (self._pub, self._sub):
            sock.linger = 0
        # The same sockets without Futures, for what completes at once (see the module docstring).
        self._pub_now: zmq.Socket[bytes] = zmq.Socket.shadow(self._pub.underlying)
        self._sub_now: zmq.Socket[bytes] = zmq.Socket.shadow(self._sub.underlying)
        self._receive_batch = receive_batch
        self._received: deque[list[bytes]] = deque()  # taken from the socket, not yet decoded
        self._sub.connect(endpoints.subscribe)
        self._pub.connect(endpoints.publish)
        self._hello_topic = f"hello.{src}"
        for topic in (*topics, self._hello_topic):
            self._sub.setsockopt_string(zmq.SUBSCRIBE, topic)
        self._early: deque[Envelope] = deque()
        self._sequence = 0
        self._prefix = f"{src}:{secrets.token_hex(3)}:"

    def next_id(self) -> str:
        self._sequence += 1
        return f"{self._prefix}{self._sequence}"

    async def publish(self, topic: str, message: object, cause: str | None = None) -> str:
        """Send `message` under `topic`; returns its id, for the `cause` of what it leads to."""
        message_id = self.next_id()
        frames = encode(
            topic,
            message,
            id=message_id,
            src=self.src,
            ts=self.clock.wall_ns(),
            mono=self.clock.monotonic_ns(),
            cause=cause,
        )
        self._pub_now.send_multipart(frames, zmq.NOBLOCK)
        return message_id

    async def receive(self) -> Envelope:
        """The next message that decodes; others are counted by reason and logged, never raised."""
        if self._early:
            return self._early.popleft()
        while True:
            envelope = await self._read()
            if envelope is not None:
                return envelope

    async def _read(self) -> Envelope | None:
        if not self._received:
            await self._fill()
        frames = self._received.popleft()
        try:
            return decode(frames)
        except DecodeError as error:
            self.rejected[error.reason.value] += 1
            log.warning("%s: dropped a bus message: %s", self.src, error)
            return None

    async def _fill(self) -> None:
        """Take up to `receive_batch` messages from the socket, or wait for one if it holds none.

        No drain right after the wait: the message that woke us is handled at once (the latency path), and
        what came with it is taken by the next call. Draining after the wait as well as before it measured up
        to twice the round trip across processes (tools/bench_bus.py; either drain alone costs nothing), for a
        reason in the wake-up path that was not pinned down.
        """
        if self._receive_batch > 1:
            self._drain(self._receive_batch)
        if not self._received:
            self._received.append(await self._sub.recv_multipart())

    def _drain(self, limit: int) -> None:
        recv, received = self._sub_now.recv_multipart, self._received
        with contextlib.suppress(zmq.Again):
            for _ in range(limit):
                received.append(recv(zmq.NOBLOCK))

    async def join(self, attempt_interval: float = 0.01, attempts: int = 2000) -> None:
        """Publish hellos until one comes back through the proxy: both directions are then live.

        The first hello is nearly always lost (our subscriptions have not reached the proxy yet), so the first
        waits are short, 1 ms doubling up to `attempt_interval`: a fixed 10 ms made every join take ~13 ms
        across processes, against ~4 ms now (tools/bench_restart.py counts it in an actor's restart).
        """
        nonce = secrets.token_hex(8)
        longest_ms = max(1, int(attempt_interval * 1000))
        wait_ms = 1
        for _ in range(attempts):
            await self.publish(self._hello_topic, Hello(actor=self.src, nonce=nonce))
            if self._received or await self._sub.poll(wait_ms):
                while self._received or await self._sub.poll(0):
                    envelope = await self._read()
                    if envelope is None:
                        continue
                    if isinstance(envelope.message, Hello):
                        if envelope.message.nonce == nonce:
                            return
                    else:
                        self._early.append(envelope)  # for the actor, once it runs
            wait_ms = min(2 * wait_ms, longest_ms)
        raise TimeoutError(f"{self.src} could not join the node bus")

    def close(self) -> None:
        self._pub.close(linger=0)
        self._sub.close(linger=0)
