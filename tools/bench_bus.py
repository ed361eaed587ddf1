"""Latency and throughput of the node bus, through the kernel's proxy exactly as actors use it.

    .venv/bin/python tools/bench_bus.py [--setups inproc/tasks,ipc/processes,tcp/processes]
        [--paths raw,unbatched,default] [--round-trips 500] [--messages 10000] [--repeat 1]

Every figure goes through `BusProxy` (libzmq's XSUB/XPUB proxy in a thread of this process: the kernel's part,
with the kernel's own client subscribed to `sys.`) over inproc, ipc (sockets in a temporary directory) or tcp
(127.0.0.1, ephemeral ports). Clients are placed as the kernel places actors:

- `tasks`: each client is a task of this process's loop, sharing the proxy's context (single-process mode,
  the only placement inproc allows);
- `processes`: each client is a child process (`--worker`) with its own context and loop (one process per
  actor, the default over ipc). It joins the bus, announces `ActorReady`, plays its role, prints JSON.

Paths, measured in the same run and interleaved (the machine is noisy; compare within a run):

- `raw`: the reference of BENCHMARKS.md rerun here: plain zmq.asyncio PUB/SUB sockets through the same proxy,
  one awaited `recv_multipart` per message, a packed (seq, stamp) body padded to a Heartbeat's size, no codec;
- `unbatched`: `BusClient(receive_batch=1)`, the codec and one awaited receive per message (the receive path
  before batching);
- `default`: `BusClient` as actors get it: codec, batched receives.

Measurements:

- latency: `ping` publishes a Heartbeat and waits for `echo`'s answer, one exchange in flight. Round trip =
  from before publishing to after the answer is decoded. One-way = the receiver's `time.monotonic_ns()` after
  decoding minus the sender's stamp (the envelope's `mono`, taken by `publish` just before encoding; one host,
  one CLOCK_MONOTONIC), both directions pooled.
- throughput: `blast` publishes `--messages` Heartbeats, yielding to its loop every `--burst`; each of 1 or 3
  `count` receivers decodes until the last one or until `--idle` s of silence. Rate per receiver = messages
  decoded / time from its first to its last. PUB/SUB drops what exceeds a high-water mark (1000 messages per
  pipe) rather than block a fast publisher: `lost` says how many never arrived.

Ratios: `x raw` against the same run's raw path; `x ref` against the midpoint of the BENCHMARKS.md figures
(round trip 250-310 / 290-370 / 320-390 µs for inproc / ipc / tcp, 18-29k msgs/s per receiver). For
latency below 1 is faster; for rates above 1 is faster.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import statistics
import struct
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import attrs
import zmq
import zmq.asyncio
from benchlib import rate

from ffo.actors.base import READY_TOPIC, command_topic
from ffo.bus.codec import decode, encode
from ffo.bus.messages import ActorReady, Heartbeat, Stop
from ffo.bus.transport import BusClient, BusEndpoints, BusProxy, Transport, bind_addresses

REPO = Path(__file__).resolve().parents[1]
REFERENCE_RTT_US = {Transport.INPROC: (250, 310), Transport.IPC: (290, 370), Transport.TCP: (320, 390)}
REFERENCE_RATE = (18_000, 29_000)
PATHS = ("raw", "unbatched", "default")
WARMUP = 50  # round trips not counted: first connections, first page faults
STOP = -1  # the `seq` a port returns for a command (a Stop from the kernel)
TOPICS = {"echo": ("bench.ping",), "ping": ("bench.pong",), "blast": (), "count": ("bench.data",)}
SELF_ENDING = {"ping", "count"}  # the others (echo, blast) play until the kernel tells them to Stop
RAW = struct.Struct("!qq")  # seq, monotonic ns


@attrs.frozen(kw_only=True)
class Role:
    kind: str  # echo | ping | blast | count
    name: str


@attrs.frozen(kw_only=True)
class Options:
    path: str
    round_trips: int
    messages: int
    burst: int
    idle: float


# --- ports: what a role sends and receives through, the bus client or raw sockets ---


class Port(Protocol):
    async def join(self) -> None: ...
    async def announce(self) -> None: ...
    async def send(self, topic: str, seq: int) -> None: ...
    async def recv(self) -> tuple[int, int]:
        """(seq, the sender's monotonic stamp), or (STOP, 0) for a command."""
        ...

    def close(self) -> None: ...


class BusPort:
    """Heartbeats through `BusClient` and the codec: what actors do."""

    def __init__(self, client: BusClient, name: str) -> None:
        self.client, self.name, self.pid = client, name, os.getpid()

    async def join(self) -> None:
        await self.client.join()

    async def announce(self) -> None:
        await self.client.publish(READY_TOPIC, ActorReady(actor=self.name, pid=self.pid, incarnation=1))

    async def send(self, topic: str, seq: int) -> None:
        await self.client.publish(topic, Heartbeat(actor=self.name, pid=self.pid, seq=seq, loop_lag_ns=0))

    async def recv(self) -> tuple[int, int]:
        envelope = await self.client.receive()
        message = envelope.message
        return (message.seq if isinstance(message, Heartbeat) else STOP), envelope.mono

    def close(self) -> None:
        self.client.close()


class RawPort:
    """The reference: plain zmq.asyncio sockets on the same proxy, no codec, one awaited receive per message."""

    def __init__(self, context: zmq.asyncio.Context, endpoints: BusEndpoints, name: str, topics: Iterable[str]):
        self.name = name
        self._pub, self._sub = context.socket(zmq.PUB), context.socket(zmq.SUB)
        for sock in (self._pub, self._sub):
            sock.linger = 0
        self._sub.connect(endpoints.subscribe)
        self._pub.connect(endpoints.publish)
        self._hello = f"hello.bench/{name}".encode()
        for topic in (*topics, self._hello.decode()):
            self._sub.setsockopt_string(zmq.SUBSCRIBE, topic)
        # As large as an encoded Heartbeat, so that both paths move the same bytes.
        self._padding = bytes(len(heartbeat_frames()[1]) - RAW.size)

    async def join(self) -> None:  # BusClient.join's handshake, in raw frames
        for _ in range(2000):
            await self._pub.send_multipart([self._hello, b""])
            if await self._sub.poll(10):
                while await self._sub.poll(0):
                    if (await self._sub.recv_multipart())[0] == self._hello:
                        return
        raise TimeoutError(f"{self.name} could not join the node bus")

    async def announce(self) -> None:
        ready = ActorReady(actor=self.name, pid=os.getpid(), incarnation=1)
        frames = encode(READY_TOPIC, ready, id=secrets.token_hex(4), src=self.name, ts=time.time_ns(), mono=0)
        await self._pub.send_multipart(frames)

    async def send(self, topic: str, seq: int) -> None:
        await self._pub.send_multipart([topic.encode(), RAW.pack(seq, time.monotonic_ns()) + self._padding])

    async def recv(self) -> tuple[int, int]:
        topic, body = await self._sub.recv_multipart()
        if topic.startswith(b"cmd."):
            return STOP, 0
        seq, stamp = RAW.unpack_from(body)
        return seq, stamp

    def close(self) -> None:
        self._pub.close(linger=0)
        self._sub.close(linger=0)


def make_port(context: zmq.asyncio.Context, endpoints: BusEndpoints, role: Role, path: str) -> Port:
    topics = (*TOPICS[role.kind], command_topic(role.name))
    if path == "raw":
        return RawPort(context, endpoints, role.name, topics)
    src = f"bench/{role.name}"
    if path == "unbatched":
        return BusPort(BusClient(context, endpoints, src=src, topics=topics, receive_batch=1), role.name)
    return BusPort(BusClient(context, endpoints, src=src, topics=topics), role.name)  # as BusClient defaults


def heartbeat_frames() -> list[bytes]:
    heartbeat = Heartbeat(actor="blast", pid=4242, seq=12345, loop_lag_ns=0)
    return encode("bench.data", heartbeat, id="bench/blast:1a2b3c:12345", src="bench/blast", ts=time.time_ns(), mono=1)


# --- the roles: the same coroutines in a task of this process or in a child process ---


async def play(role: Role, port: Port, options: Options) -> dict[str, Any]:
    if role.kind == "echo":
        return await echo(port)
    if role.kind == "ping":
        return await ping(port, options.round_trips)
    if role.kind == "blast":
        return await blast(port, options)
    return await count(port, options)


async def echo(port: Port) -> dict[str, Any]:
    one_way: list[int] = []
    while True:
        seq, stamp = await port.recv()
        if seq == STOP:
            return {"one_way_ns": one_way[WARMUP:]}
        one_way.append(time.monotonic_ns() - stamp)
        await port.send("bench.pong", seq)


async def ping(port: Port, round_trips: int) -> dict[str, Any]:
    one_way: list[int] = []
    round_trip: list[int] = []
    lost = 0
    for seq in range(round_trips + WARMUP):
        start = time.monotonic_ns()
        await port.send("bench.ping", seq)
        try:
            async with asyncio.timeout(1.0):
                while (answer := await port.recv())[0] != seq:
                    pass
        except TimeoutError:
            lost += 1
            continue
        now = time.monotonic_ns()
        if seq >= WARMUP:
            round_trip.append(now - start)
            one_way.append(now - answer[1])
    return {"one_way_ns": one_way, "round_trip_ns": round_trip, "lost": lost}


async def blast(port: Port, options: Options) -> dict[str, Any]:
    start = time.monotonic_ns()
    for seq in range(1, options.messages + 1):
        await port.send("bench.data", seq)
        if seq % options.burst == 0:
            await asyncio.sleep(0)
    sent_per_s = options.messages / ((time.monotonic_ns() - start) / 1e9)
    while (await port.recv())[0] != STOP:  # stay on the bus: closing a socket drops what it has not sent yet
        pass
    return {"sent_per_s": sent_per_s}


async def count(port: Port, options: Options) -> dict[str, Any]:
    received = first = last = 0
    loop = asyncio.get_running_loop()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(60.0) as silence:
            while True:
                seq, _ = await port.recv()
                last = time.monotonic_ns()
                if not received:
                    first = last
                received += 1
                if received % 256 == 1:  # rescheduling costs; an idle limit a few hundred messages late is fine
                    silence.reschedule(loop.time() + options.idle)
                if seq == options.messages:
                    break
    return {"received": received, "seconds": (last - first) / 1e9}


# --- placements: the kernel starts each phase once the previous one is on the bus, then stops what is left ---

Results = dict[str, dict[str, Any]]


async def in_tasks(
    kernel: BusClient, context: zmq.asyncio.Context, endpoints: BusEndpoints, phases: list[list[Role]], options: Options
) -> Results:
    ports: list[Port] = []
    tasks: dict[Role, asyncio.Task[dict[str, Any]]] = {}
    try:
        for phase in phases:
            for role in phase:
                port = make_port(context, endpoints, role, options.path)
                ports.append(port)
                await port.join()
                tasks[role] = asyncio.create_task(play(role, port, options))
        await stop_the_rest(kernel, tasks)
        return {role.name: task.result() for role, task in tasks.items()}
    finally:
        for task in tasks.values():
            task.cancel()
        for port in ports:
            port.close()


async def in_processes(
    kernel: BusClient, endpoints: BusEndpoints, phases: list[list[Role]], options: Options
) -> Results:
    children: dict[Role, asyncio.subprocess.Process] = {}
    try:
        for phase in phases:
            started = {role: await spawn(role, endpoints, options) for role in phase}
            children.update(started)
            await wait_ready(kernel, {(role.name, child.pid) for role, child in started.items()})
        outputs = {role: asyncio.create_task(child.communicate()) for role, child in children.items()}
        await stop_the_rest(kernel, outputs)
        results: Results = {}
        for role, output in outputs.items():
            if children[role].returncode != 0:
                raise RuntimeError(f"worker {role.name} exited with status {children[role].returncode}")
            results[role.name] = json.loads(output.result()[0])
        return results
    finally:
        for child in children.values():
            if child.returncode is None:
                child.kill()  # only our own children, through their Process handles
                await child.wait()


async def stop_the_rest(kernel: BusClient, running: dict[Role, asyncio.Task[Any]]) -> None:
    """Wait for the roles that end by themselves, then Stop the others over the bus, as the kernel does."""
    await asyncio.wait_for(asyncio.gather(*(t for r, t in running.items() if r.kind in SELF_ENDING)), 120)
    for role, task in running.items():
        while not task.done():
            await kernel.publish(command_topic(role.name), Stop(actor=role.name, reason="bench over"))
            await asyncio.wait((task,), timeout=0.2)


async def spawn(role: Role, endpoints: BusEndpoints, options: Options) -> asyncio.subprocess.Process:
    argv = [sys.executable, __file__, "--worker", role.kind, "--name", role.name, "--paths", options.path]
    argv += ["--publish", endpoints.publish, "--subscribe", endpoints.subscribe]
    argv += ["--round-trips", str(options.round_trips), "--messages", str(options.messages)]
    argv += ["--burst", str(options.burst), "--idle", str(options.idle)]
    # The caller's PYTHONPATH first (to bench another checkout of ffo), then this one.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (os.environ.get("PYTHONPATH"), str(REPO))))}
    return await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, env=env
    )


async def wait_ready(kernel: BusClient, expected: set[tuple[str, int]], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while expected:
            message = (await kernel.receive()).message
            if isinstance(message, ActorReady):
                expected.discard((message.actor, message.pid))


async def worker(args: argparse.Namespace) -> None:
    role = Role(kind=args.worker, name=args.name)
    options = options_from(args, args.paths)
    context = zmq.asyncio.Context()
    try:
        port = make_port(context, BusEndpoints(publish=args.publish, subscribe=args.subscribe), role, options.path)
        await port.join()
        await port.announce()
        print(json.dumps(await play(role, port, options)))
        port.close()
    finally:
        context.destroy(linger=0)


def options_from(args: argparse.Namespace, path: str) -> Options:
    return Options(path=path, round_trips=args.round_trips, messages=args.messages, burst=args.burst, idle=args.idle)


# --- one node bus per setup ---


@contextlib.asynccontextmanager
async def node_bus(transport: Transport) -> AsyncIterator[tuple[zmq.asyncio.Context, BusEndpoints, BusClient]]:
    """The kernel's part: the proxy and its own client (subscribed to `sys.`), as `Kernel.run` sets them up."""
    run_dir = Path(tempfile.mkdtemp(prefix="ffo-bb-"))
    context = zmq.asyncio.Context()
    proxy = BusProxy(zmq.Context.shadow(context.underlying), bind_addresses(transport, "bench", run_dir))
    try:
        endpoints = proxy.start()
        kernel = BusClient(context, endpoints, src="bench/kernel", topics=("sys.",))
        await kernel.join()
        yield context, endpoints, kernel
        kernel.close()
    finally:
        proxy.stop()
        context.destroy(linger=0)
        proxy.join()
        shutil.rmtree(run_dir, ignore_errors=True)


@attrs.frozen
class Setup:
    transport: Transport
    placement: str  # tasks | processes


async def measure(setup: Setup, options: Options) -> tuple[Results, dict[int, Results]]:
    """(latency results, throughput results by number of receivers) on a fresh node bus."""
    throughput: dict[int, Results] = {}
    async with node_bus(setup.transport) as (context, endpoints, kernel):

        async def run(phases: list[list[Role]]) -> Results:
            if setup.placement == "tasks":
                return await in_tasks(kernel, context, endpoints, phases, options)
            return await in_processes(kernel, endpoints, phases, options)

        latency = await run([[Role(kind="echo", name="echo")], [Role(kind="ping", name="ping")]])
        for receivers in (1, 3):
            counters = [Role(kind="count", name=f"count{i}") for i in range(receivers)]
            throughput[receivers] = await run([counters, [Role(kind="blast", name="blast")]])
    return latency, throughput


# --- the report ---


@attrs.define
class Pooled:
    """One setup and path, pooled over the repeats."""

    one_way: list[int] = attrs.field(factory=list)
    round_trip: list[int] = attrs.field(factory=list)
    lost_round_trips: int = 0
    rates: dict[int, list[float]] = attrs.field(factory=lambda: defaultdict(list))  # receivers -> per receiver
    sent: dict[int, list[float]] = attrs.field(factory=lambda: defaultdict(list))
    lost: dict[int, int] = attrs.field(factory=lambda: defaultdict(int))
    expected: dict[int, int] = attrs.field(factory=lambda: defaultdict(int))

    def add(self, latency: Results, throughput: dict[int, Results], messages: int) -> None:
        self.one_way += latency["ping"]["one_way_ns"] + latency["echo"]["one_way_ns"]
        self.round_trip += latency["ping"]["round_trip_ns"]
        self.lost_round_trips += latency["ping"]["lost"]
        for receivers, results in throughput.items():
            counted = [results[f"count{i}"] for i in range(receivers)]
            self.rates[receivers] += [c["received"] / c["seconds"] for c in counted if c["seconds"] > 0]
            self.sent[receivers].append(results["blast"]["sent_per_s"])
            self.lost[receivers] += receivers * messages - sum(c["received"] for c in counted)
            self.expected[receivers] += receivers * messages


def us(samples: list[int], q: int) -> float:
    """The q-th percentile of `samples` (ns), in µs."""
    if len(samples) < 2:
        return float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] / 1e3


def latency_lines(pooled: dict[tuple[Setup, str], Pooled]) -> Iterator[str]:
    yield "| transport | placement | path | samples | one-way p50 | one-way p99 | RTT p50 | RTT p99 | x raw | x ref |"
    yield "|---|---|---|---|---|---|---|---|---|---|"
    for (setup, path), row in pooled.items():
        rtt50 = us(row.round_trip, 50)
        raw = pooled.get((setup, "raw"))
        low, high = REFERENCE_RTT_US[setup.transport]
        cells = [setup.transport.value, setup.placement, path, str(len(row.round_trip))]
        cells += [f"{us(row.one_way, q):.0f}" for q in (50, 99)] + [f"{us(row.round_trip, q):.0f}" for q in (50, 99)]
        cells += [f"{rtt50 / us(raw.round_trip, 50):.2f}" if raw else "-", f"{rtt50 / ((low + high) / 2):.2f}"]
        yield "| " + " | ".join(cells) + " |" + (f" {row.lost_round_trips} lost" if row.lost_round_trips else "")


def throughput_lines(pooled: dict[tuple[Setup, str], Pooled]) -> Iterator[str]:
    yield "| transport | placement | path | receivers | sent/s | per receiver/s | min | lost | x raw | x ref |"
    yield "|---|---|---|---|---|---|---|---|---|---|"
    for receivers in (1, 3):
        for (setup, path), row in pooled.items():
            mean = statistics.mean(row.rates[receivers]) if row.rates[receivers] else float("nan")
            raw = pooled.get((setup, "raw"))
            ratio = f"{mean / statistics.mean(raw.rates[receivers]):.2f}" if raw and raw.rates[receivers] else "-"
            lost, expected = row.lost[receivers], row.expected[receivers]
            cells = [setup.transport.value, setup.placement, path, str(receivers)]
            sent = statistics.mean(row.sent[receivers])
            cells += [f"{sent:,.0f}", f"{mean:,.0f}", f"{min(row.rates[receivers]):,.0f}"]
            cells += [f"{lost} ({100 * lost / expected:.1f} %)", ratio, f"{mean / statistics.mean(REFERENCE_RATE):.2f}"]
            yield "| " + " | ".join(cells) + " |"


def parse_setups(text: str) -> list[Setup]:
    setups = []
    for item in text.split(","):
        transport, _, placement = item.partition("/")
        setup = Setup(Transport(transport), placement or "tasks")
        if setup.placement not in ("tasks", "processes"):
            raise SystemExit(f"{item}: the placement is tasks or processes")
        if setup == Setup(Transport.INPROC, "processes"):
            raise SystemExit("inproc reaches no other process: inproc/tasks only")
        setups.append(setup)
    return setups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setups", default="inproc/tasks,ipc/processes,tcp/processes", help="transport/placement,...")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"among {', '.join(PATHS)}")
    parser.add_argument("--round-trips", type=int, default=500, help="measured ping-pong exchanges per run")
    parser.add_argument("--messages", type=int, default=10_000, help="messages blasted per throughput run")
    parser.add_argument("--burst", type=int, default=16, help="the publisher yields to its loop every N sends")
    parser.add_argument("--idle", type=float, default=0.3, help="a receiver gives up after this much silence (s)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per setup and path, interleaved and pooled")
    parser.add_argument("--worker", choices=sorted(TOPICS), help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--publish", help=argparse.SUPPRESS)
    parser.add_argument("--subscribe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args))
        return
    started = time.monotonic()
    paths = args.paths.split(",")
    if not set(paths) <= set(PATHS):
        raise SystemExit(f"--paths: among {', '.join(PATHS)}")
    frames = heartbeat_frames()
    decodes = rate(lambda: decode(frames), 0.2, 3)
    print(f"# {platform.node()}: Linux {platform.release()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    checkout = Path(decode.__code__.co_filename).parents[2]
    print(f"# pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}, ffo from {checkout}")
    print(f"# a Heartbeat is {sum(map(len, frames))} bytes; decoding one alone: {decodes:,.0f}/s")
    pooled: dict[tuple[Setup, str], Pooled] = {}
    for setup in parse_setups(args.setups):
        for _ in range(args.repeat):
            for path in paths:  # interleaved, so that a noisy minute hits every path alike
                latency, throughput = asyncio.run(measure(setup, options_from(args, path)))
                pooled.setdefault((setup, path), Pooled()).add(latency, throughput, args.messages)
    print("\n## latency, µs (one exchange in flight)\n")
    print("\n".join(latency_lines(pooled)))
    print(f"\n## throughput, {args.messages:,} Heartbeats blasted per run\n")
    print("\n".join(throughput_lines(pooled)))
    print(f"\n# {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
