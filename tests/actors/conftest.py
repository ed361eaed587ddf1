"""Fixtures for the runtime tests: a short run directory, a kernel in this loop, and a probe on its bus."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import zmq.asyncio

from ffo.actors.kernel import ActorSpec, Kernel, SupervisionPolicy
from ffo.bus.transport import BusClient, BusEndpoints, Transport
from tests.actors.support import Ping, Pong

REPO = Path(__file__).resolve().parents[2]
FAST = SupervisionPolicy(
    heartbeat_interval_ns=100_000_000,
    missed_heartbeats=5,
    backoff_initial_ns=50_000_000,
    backoff_max_ns=500_000_000,
    restart_budget=3,
    budget_window_ns=30_000_000_000,
    shutdown_deadline_ns=8_000_000_000,
)
ECHO = "tests.actors.support:EchoActor"


async def wait_for(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll `condition` until it holds; fail after a generous timeout. No fixed sleeps in the tests."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Probe:
    """The test's own seat on the node bus: pings actors and collects their pongs."""

    def __init__(self, context: zmq.asyncio.Context, endpoints: BusEndpoints) -> None:
        self.bus = BusClient(context, endpoints, src="test/probe", topics=("test.pong",))
        self.pongs: dict[str, Pong] = {}

    async def ping(self, target: str, action: str = "echo", timeout: float = 20.0) -> Pong:
        """Ping until answered (an actor that is restarting answers once it is back)."""
        loop = asyncio.get_running_loop()
        nonce = secrets.token_hex(6)
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            await self.bus.publish("test.ping", Ping(nonce=nonce, target=target, action=action))
            if action != "echo":
                return Pong(nonce=nonce, actor=target, pid=0, incarnation=0, count=0)
            try:
                async with asyncio.timeout(0.3):
                    while True:
                        envelope = await self.bus.receive()
                        if isinstance(envelope.message, Pong) and envelope.message.nonce == nonce:
                            return envelope.message
            except TimeoutError:
                continue
        raise AssertionError(f"{target} did not answer a ping within {timeout} s")


@pytest.fixture
def run_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ffo-t-"))  # short: ipc:// paths are limited to ~107 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def child_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Actor processes import the test actors from this checkout."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))


StartKernel = Callable[..., Awaitable[tuple[Kernel, Probe]]]


@pytest_asyncio.fixture
async def start_kernel(run_dir: Path, child_env: None) -> AsyncIterator[StartKernel]:
    running: list[tuple[Kernel, asyncio.Task[int], Probe]] = []

    async def start(
        specs: tuple[ActorSpec, ...],
        *,
        single_process: bool = False,
        transport: Transport | None = None,
        events_dir: Path | None = None,
    ) -> tuple[Kernel, Probe]:
        kernel = Kernel(
            node="t",
            specs=specs,
            run_dir=run_dir,
            single_process=single_process,
            transport=transport,
            policy=FAST,
            events_dir=events_dir,
        )
        task = asyncio.create_task(kernel.run())
        await wait_for(lambda: kernel.ready.is_set() or task.done(), what="the kernel")
        probe = Probe(kernel._context, kernel.endpoints)  # type: ignore[arg-type]
        await probe.bus.join()
        running.append((kernel, task, probe))
        return kernel, probe

    yield start
    for kernel, task, probe in running:
        probe.bus.close()
        kernel.request_shutdown("test over")
        if not task.done():
            await asyncio.wait_for(task, 30)
