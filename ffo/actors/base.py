"""The actor: one sub-module of a node (VRRP, VIP, RPC, ...) with its own sockets and its own tasks.

Lifecycle, the same in a process of its own and as a task of the kernel's process:

1. join the node bus (`BusClient.join`: a hello that comes back proves both directions work);
2. `setup()`, then announce `ActorReady` on `sys.ready`;
3. run, under one `asyncio.TaskGroup`, the heartbeat task (`sys.heartbeat`, every `heartbeat_interval`,
   carrying how late the loop woke up), the receive loop (dispatching to `handle`) and `main()`;
4. stop on a `Stop` command addressed to it (topic `cmd.<name>`) or on `request_stop()` (SIGTERM in a
   child process): announce `ActorStopping`, cancel the group, run `teardown()`, close the sockets.

No task outlives the group: there are no fire-and-forget tasks. Exceptions are not caught here; the boundary
that catches `Exception` is the process host (`ffo.actors.host`) or the kernel's task supervisor.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs
import zmq.asyncio

from ffo.bus.envelope import Envelope
from ffo.bus.messages import ActorReady, ActorStopping, Heartbeat, Stop
from ffo.bus.transport import BusClient, BusEndpoints
from ffo.clock import Clock, SystemClock

HEARTBEAT_TOPIC = "sys.heartbeat"
READY_TOPIC = "sys.ready"
STOPPING_TOPIC = "sys.stopping"


def command_topic(actor: str) -> str:
    return f"cmd.{actor}"


@attrs.frozen(kw_only=True)
class ActorContext:
    """Everything an actor needs from its host: names, the bus, the clock and its settings."""

    node: str
    name: str
    endpoints: BusEndpoints
    zmq_context: zmq.asyncio.Context
    heartbeat_interval_ns: int = 500_000_000
    incarnation: int = 1
    options: Mapping[str, Any] = attrs.field(factory=dict)
    clock: Clock = attrs.field(factory=SystemClock)
    after_setup: Callable[[], None] | None = None
    """Called once `setup` is done, before the actor is ready and its tasks start: the process host freezes the
    start-up heap and applies SCHED_FIFO there, so that neither pauses a running timer."""


class _StopRequestedError(Exception):
    """Raised inside the task group to end it; never escapes `Actor.run`."""


class Actor:
    """Base class. Subclasses set `subscriptions` and override `setup`, `handle`, `main`, `teardown`."""

    subscriptions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, context: ActorContext) -> None:
        self.context = context
        self.name = context.name
        self.log = logging.getLogger(f"ffo.actor.{context.name}")
        self.bus = BusClient(
            context.zmq_context,
            context.endpoints,
            src=f"{context.node}/{context.name}",
            topics=(*self.subscriptions, command_topic(context.name)),
            clock=context.clock,
        )
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self.ready = asyncio.Event()

    # --- what subclasses override ---

    async def setup(self) -> None:
        """Open what the actor owns (sockets, files) before it says it is ready."""

    async def handle(self, envelope: Envelope) -> None:
        """One message from a subscribed topic."""

    async def main(self) -> None:
        """Work the actor does on its own schedule; by default it only reacts to messages."""
        await asyncio.Event().wait()

    async def teardown(self) -> None:
        """Release what `setup` opened; runs on every stop, also after a failure."""

    # --- lifecycle ---

    def request_stop(self, reason: str) -> None:
        self._stop_reason = reason
        self._stop.set()

    async def run(self) -> None:
        try:
            await self.bus.join()
            await self.setup()
            if self.context.after_setup is not None:
                self.context.after_setup()
            await self.bus.publish(
                READY_TOPIC, ActorReady(actor=self.name, pid=os.getpid(), incarnation=self.context.incarnation)
            )
            self.ready.set()
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._heartbeats(), name=f"{self.name}-heartbeat")
                    group.create_task(self._receive(), name=f"{self.name}-receive")
                    group.create_task(self.main(), name=f"{self.name}-main")
                    group.create_task(self._wait_stop(), name=f"{self.name}-stop")
            except* _StopRequestedError:
                pass
            await self.bus.publish(STOPPING_TOPIC, ActorStopping(actor=self.name, reason=self._stop_reason))
        finally:
            try:
                await self.teardown()
            finally:
                self.bus.close()

    async def _wait_stop(self) -> None:
        await self._stop.wait()
        raise _StopRequestedError

    async def _receive(self) -> None:
        while True:
            envelope = await self.bus.receive()
            message = envelope.message
            if isinstance(message, Stop) and message.actor == self.name:
                self.request_stop(message.reason)
                continue
            await self.handle(envelope)

    async def _heartbeats(self) -> None:
        interval = self.context.heartbeat_interval_ns
        clock = self.context.clock
        seq = 0
        deadline = clock.monotonic_ns()
        while True:
            woke = clock.monotonic_ns()
            seq += 1
            heartbeat = Heartbeat(actor=self.name, pid=os.getpid(), seq=seq, loop_lag_ns=max(0, woke - deadline))
            await self.bus.publish(HEARTBEAT_TOPIC, heartbeat)
            deadline = woke + interval
            await asyncio.sleep(interval / 1e9)
