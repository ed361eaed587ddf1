"""How long a SIGKILLed actor is gone under a real Kernel, and where that time goes.

    .venv/bin/python tools/bench_restart.py [--actors 3] [--kills 20] [--backoff-ms 100] [--startup-runs 7]

A `Kernel` runs in this process (one process per actor, ipc bus) with `--actors` echo actors from
tests/actors/support.py. The first one is SIGKILLed `--kills` times; each time the next kill waits until the
kernel has the new incarnation ready and its first heartbeat is in. The policy is the default one except that
crashes are forgotten at once (`budget_window_ns=1`), so that every restart waits the initial backoff and the
restart budget never stops the node. Each restart is broken down with the kernel's own timestamps and with
what a probe on the bus hears:

- exit seen: the kill until the kernel's `process.wait()` returned (asyncio's child watcher);
- backoff: until the kernel spawned the new process (`SupervisionPolicy.backoff_initial_ns`);
- spawn to hello: until the probe heard the child's first `Hello` (its envelope stamp): fork/exec, interpreter
  start-up, imports, the zmq context and sockets (and the first join attempts, which the slow joiner loses);
- hello to ready sent: the rest of the join handshake and `setup()`, until the child stamped `ActorReady`;
- ready delivery: until the kernel had decoded that `ActorReady` (its `ready_ns`).

"spawn to ready" (the kernel's `ready_after_ms`) is the figure to compare with the ~330 ms measured before.
Variants: the environment as inherited and, when it sets PYTHONDONTWRITEBYTECODE (this sandbox does, so a
checkout's modules are compiled from source at each start), with a bytecode cache (PYTHONPYCACHEPREFIX), as
an installed package has. Then, outside the kernel: fresh interpreters timed round-robin (`--startup-runs`
each; CPU time is the steadier figure on a shared VM), `python -X importtime` of what an actor process
imports, what compiling ffo's modules costs, and `BusClient.join` from a fresh process.

To bench another checkout of ffo, put it first in PYTHONPATH and run from outside this one: `python -m` and
`python -c` put the working directory first on sys.path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import attrs
import zmq
import zmq.asyncio

from ffo.actors.kernel import ActorSpec, ActorState, Kernel, Supervised, SupervisionPolicy
from ffo.bus.messages import ActorReady, Hello
from ffo.bus.transport import BusClient, BusProxy, Transport, bind_addresses

REPO = Path(__file__).resolve().parents[1]
ECHO = "tests.actors.support:EchoActor"
ACTOR_IMPORTS = "import ffo.actors.host, tests.actors.support"  # what `python -m ffo.actors.host` loads first
REFERENCE_READY_MS = 330
MS = 1_000_000


@attrs.frozen(kw_only=True)
class Restart:
    """One kill and the new incarnation's way back, in monotonic ns (one host clock for all processes)."""

    killed: int
    exit_seen: int
    spawned: int
    first_hello: int
    ready_sent: int
    ready_seen: int


STAGES: dict[str, Callable[[Restart], int]] = {
    "exit seen": lambda r: r.exit_seen - r.killed,
    "backoff": lambda r: r.spawned - r.exit_seen,
    "spawn to hello": lambda r: r.first_hello - r.spawned,
    "hello to ready sent": lambda r: r.ready_sent - r.first_hello,
    "ready delivery": lambda r: r.ready_seen - r.ready_sent,
    "spawn to ready": lambda r: r.ready_seen - r.spawned,
    "kill to ready": lambda r: r.ready_seen - r.killed,
}


class Probe:
    """The bench's seat on the bus: the victim's hellos and every ActorReady, with their senders' stamps."""

    def __init__(self, context: zmq.asyncio.Context, kernel: Kernel, victim: str) -> None:
        assert kernel.endpoints is not None
        self.bus = BusClient(context, kernel.endpoints, src="bench/probe", topics=(f"hello.{kernel.node}/", "sys."))
        self.victim_src = f"{kernel.node}/{victim}"
        self.hellos: list[int] = []
        self.readies: dict[int, int] = {}  # pid -> stamp

    async def listen(self) -> None:
        while True:
            envelope = await self.bus.receive()
            if isinstance(envelope.message, Hello) and envelope.src == self.victim_src:
                self.hellos.append(envelope.mono)
            elif isinstance(envelope.message, ActorReady):
                self.readies[envelope.message.pid] = envelope.mono


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.002)  # only paces the next kill; the figures are the kernel's own stamps
    except TimeoutError:
        raise TimeoutError(f"no {what} within {timeout:.0f} s") from None


async def measure(args: argparse.Namespace) -> list[Restart]:
    run_dir = Path(tempfile.mkdtemp(prefix="ffo-br-"))
    specs = tuple(ActorSpec(name=f"a{i}", factory=ECHO) for i in range(args.actors))
    policy = SupervisionPolicy(backoff_initial_ns=args.backoff_ms * MS, budget_window_ns=1)
    kernel = Kernel(node="bench", specs=specs, run_dir=run_dir, policy=policy)
    running = asyncio.create_task(kernel.run())
    context = zmq.asyncio.Context()
    restarts: list[Restart] = []
    try:
        await wait_until(lambda: kernel.ready.is_set() or running.done(), "the kernel")
        victim = kernel.actors["a0"]
        probe = Probe(context, kernel, "a0")
        await probe.bus.join()
        async with asyncio.TaskGroup() as group:
            listening = group.create_task(probe.listen())
            await wait_until(lambda: all(a.state is ActorState.READY for a in kernel.actors.values()), "all ready")
            for _ in range(args.kills):
                restarts.append(await kill_and_wait(victim, probe))
            listening.cancel()
        probe.bus.close()
    finally:
        kernel.request_shutdown("bench over")
        await asyncio.wait_for(running, 60)
        context.destroy(linger=0)
        shutil.rmtree(run_dir, ignore_errors=True)
    return restarts


async def kill_and_wait(victim: Supervised, probe: Probe) -> Restart:
    assert victim.pid is not None
    incarnation, pid = victim.incarnation, victim.pid
    killed = time.monotonic_ns()
    os.kill(pid, signal.SIGKILL)  # an actor process our kernel started
    await wait_until(
        lambda: (
            victim.incarnation > incarnation
            and victim.state is ActorState.READY
            and victim.last_heartbeat_ns > (victim.ready_ns or 0)
            and victim.pid in probe.readies  # the probe hears it a moment after the kernel
        ),
        "the new incarnation",
    )
    assert victim.exited_ns is not None and victim.ready_ns is not None and victim.pid is not None
    return Restart(
        killed=killed,
        exit_seen=victim.exited_ns,
        spawned=victim.started_ns,
        first_hello=min(stamp for stamp in probe.hellos if stamp > killed),
        ready_sent=probe.readies[victim.pid],
        ready_seen=victim.ready_ns,
    )


# --- start-up outside the kernel ---


@contextlib.contextmanager
def environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """`os.environ` with `changes` (None removes), restored after: what the kernel's children inherit."""
    saved = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


STAMP = "import time; print(time.monotonic_ns(), time.process_time_ns())"


def startup_ms(options: list[str], code: str, changes: Mapping[str, str | None]) -> tuple[float, float]:
    """(wall ms, CPU ms) from before starting `python OPTIONS -c CODE` until CODE has run: start-up and imports,
    not the interpreter's exit. CPU time depends less on what else the machine does: the steadier figure."""
    with environment(changes):
        start = time.monotonic_ns()
        command = [sys.executable, *options, "-c", f"{code}\n{STAMP}"]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    done, cpu = map(int, output.split())
    return (done - start) / MS, cpu / MS


def startup_lines(runs: int, cached: Mapping[str, str | None]) -> Iterator[str]:
    frozen_off, frozen_on = ["-X", "frozen_modules=off"], ["-X", "frozen_modules=on"]
    rows: list[tuple[str, list[str], str, Mapping[str, str | None]]] = [
        ("interpreter, no site (-S)", ["-S"], "", {}),
        ("interpreter + site (venv .pth files)", [], "", {}),
        ("  with -X frozen_modules=off", frozen_off, "", {}),
        ("  with -X frozen_modules=on", frozen_on, "", {}),
        ("import asyncio", [], "import asyncio", {}),
        ("import zmq.asyncio", [], "import zmq.asyncio", {}),
        ("actor imports, environment as inherited", [], ACTOR_IMPORTS, {}),
        ("actor imports, bytecode cache", [], ACTOR_IMPORTS, cached),
        ("  with -X frozen_modules=on", frozen_on, ACTOR_IMPORTS, cached),
    ]
    walls: list[list[float]] = [[] for _ in rows]
    cpus: list[list[float]] = [[] for _ in rows]
    for _ in range(runs):  # round-robin, so that a noisy second hits every row alike
        for index, (_, options, code, changes) in enumerate(rows):
            wall, cpu = startup_ms(options, code, changes)
            walls[index].append(wall)
            cpus[index].append(cpu)
    yield f"| fresh interpreter, start until imports done ({runs} runs each) | wall p50 ms | wall min ms | CPU p50 ms |"
    yield "|---|---|---|---|"
    for (label, _, _, _), row_walls, row_cpus in zip(rows, walls, cpus, strict=True):
        wall_p50, wall_min, cpu_p50 = statistics.median(row_walls), min(row_walls), statistics.median(row_cpus)
        yield f"| {label} | {wall_p50:.0f} | {wall_min:.0f} | {cpu_p50:.0f} |"


COMPILE_COST = f"""
import sys, time
{ACTOR_IMPORTS}
sources = [m.__file__ for n, m in sys.modules.items() if n.split(".")[0] in ("ffo", "tests") and m.__file__]
best = float("inf")
for _ in range(3):
    start = time.perf_counter()
    for source in sources:
        compile(open(source).read(), source, "exec")
    best = min(best, time.perf_counter() - start)
print(len(sources), round(best * 1e3))
"""


def compile_line() -> str:
    """What running without bytecode (PYTHONDONTWRITEBYTECODE=1 and no __pycache__) costs each start."""
    output = subprocess.run([sys.executable, "-c", COMPILE_COST], check=True, capture_output=True, text=True).stdout
    count, ms = output.split()
    return f"compiling the {count} ffo and test modules an actor imports from source: {ms} ms (best of 3)"


JOIN_COST = """
import asyncio, sys, time, zmq.asyncio
from ffo.bus.transport import BusClient, BusEndpoints

async def join() -> None:
    context = zmq.asyncio.Context()
    start = time.monotonic_ns()
    client = BusClient(context, BusEndpoints(publish=sys.argv[1], subscribe=sys.argv[2]), src="n/j", topics=())
    await client.join()
    print((time.monotonic_ns() - start) / 1e6)
    client.close()
    context.destroy(linger=0)

asyncio.run(join())
"""


def join_line(runs: int) -> str:
    """`BusClient.join` in a fresh process (new context, sockets, slow joiner), as an actor's start does it."""
    run_dir = Path(tempfile.mkdtemp(prefix="ffo-bj-"))
    context = zmq.Context()
    proxy = BusProxy(context, bind_addresses(Transport.IPC, "j", run_dir))
    try:
        endpoints = proxy.start()
        command = [sys.executable, "-c", JOIN_COST, endpoints.publish, endpoints.subscribe]
        times = [float(subprocess.run(command, check=True, capture_output=True, text=True).stdout) for _ in range(runs)]
    finally:
        proxy.stop()
        context.term()
        proxy.join()
        shutil.rmtree(run_dir, ignore_errors=True)
    p50, most = statistics.median(times), max(times)
    return f"joining the bus from a fresh process (BusClient.join, ipc): p50 {p50:.1f} ms, max {most:.1f} ms"


def import_lines(cached: Mapping[str, str | None], top: int = 12) -> Iterator[str]:
    with environment(cached):
        stderr = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", ACTOR_IMPORTS], check=True, capture_output=True, text=True
        ).stderr
    found = []
    for match in re.finditer(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", stderr):
        own, cumulative, indent, name = match.groups()
        if len(indent) <= 3:  # the actor's imports and theirs: a readable depth
            found.append((int(cumulative), int(own), len(indent) // 2, name))
    yield f"| `-X importtime` of `{ACTOR_IMPORTS}` (depth <= 1) | cumulative ms | own ms |"
    yield "|---|---|---|"
    for cumulative, own, depth, name in sorted(found, reverse=True)[:top]:
        yield f"| {'  ' * depth}{name} | {cumulative / 1e3:.1f} | {own / 1e3:.1f} |"


# --- the report ---


def stage_lines(results: dict[str, list[Restart]]) -> Iterator[str]:
    yield "| variant | stage | p50 ms | p99 ms | max ms |"
    yield "|---|---|---|---|---|"
    for label, restarts in results.items():
        for stage, of in STAGES.items():
            values = [of(restart) / MS for restart in restarts]
            p50 = statistics.median(values)
            p99 = statistics.quantiles(values, n=100, method="inclusive")[98] if len(values) > 1 else values[0]
            yield f"| {label} | {stage} | {p50:.1f} | {p99:.1f} | {max(values):.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actors", type=int, default=3, help="actor processes under the kernel")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of the first actor")
    default_backoff = SupervisionPolicy().backoff_initial_ns // MS
    parser.add_argument("--backoff-ms", type=int, default=default_backoff, help="the kernel's initial backoff")
    parser.add_argument("--startup-runs", type=int, default=7, help="runs per start-up figure (best kept)")
    args = parser.parse_args()
    started = time.monotonic()
    logging.getLogger("ffo").setLevel(logging.ERROR)  # every kill is a kernel warning: expected here
    # The caller's PYTHONPATH first (to bench another checkout of ffo), then this one's (for the test actors);
    # the actors log errors only.
    path = os.pathsep.join(filter(None, (os.environ.get("PYTHONPATH"), str(REPO))))
    quiet: dict[str, str | None] = {"PYTHONPATH": path, "FFO_LOG_LEVEL": "ERROR"}
    cache = tempfile.mkdtemp(prefix="ffo-pyc-")
    cached: dict[str, str | None] = {"PYTHONPYCACHEPREFIX": cache, "PYTHONDONTWRITEBYTECODE": None}
    inherited = "PYTHONDONTWRITEBYTECODE=1" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "as inherited"
    variants: dict[str, dict[str, str | None]] = {inherited: {}}
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        variants["bytecode cache"] = cached
    print(f"# {platform.node()}: Linux {platform.release()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"# {args.actors} actor processes, {args.kills} SIGKILLs of one, backoff {args.backoff_ms} ms, ipc bus")
    try:
        with environment({**quiet, **cached}):  # fill the cache once, as an install would
            subprocess.run([sys.executable, "-c", ACTOR_IMPORTS], check=True)
        results = {}
        for label, changes in variants.items():
            with environment({**quiet, **changes}):
                results[label] = asyncio.run(measure(args))
        print("\n" + "\n".join(stage_lines(results)))
        for label, restarts in results.items():
            ready = statistics.median(STAGES["spawn to ready"](restart) / MS for restart in restarts)
            print(
                f"\n{label}: spawn to ready p50 {ready:.0f} ms = {ready / REFERENCE_READY_MS:.2f} x the ~330 ms figure"
            )
        with environment(quiet):
            print("\n" + "\n".join(startup_lines(args.startup_runs, cached)))
            print("\n" + "\n".join(import_lines(cached)))
            print("\n" + compile_line())
            print(join_line(args.startup_runs))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"\n# {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
