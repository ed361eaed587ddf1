"""Actors that do real work over the bus, for the runtime's tests (not placeholders shipped in ffo/)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import ClassVar

import attrs

from ffo.actors.base import Actor
from ffo.bus.envelope import Envelope
from ffo.bus.messages import message


@message("test.ping", version=1)
@attrs.frozen(kw_only=True)
class Ping:
    nonce: str
    target: str  # an actor name, or "*"
    action: str = "echo"  # echo | crash | block


@message("test.pong", version=1)
@attrs.frozen(kw_only=True)
class Pong:
    nonce: str
    actor: str
    pid: int
    incarnation: int
    count: int


class EchoActor(Actor):
    """Answers pings; can be told to crash or to block its loop. Records its stop in `stop_log`; holds a file
    (`holding`) from setup to teardown, as a VIP actor holds addresses."""

    subscriptions: ClassVar[tuple[str, ...]] = ("test.ping",)

    async def setup(self) -> None:
        self.count = 0
        if self.context.options.get("crash_on_start"):
            raise RuntimeError("told to crash on start")
        holding = self.context.options.get("holding")
        if holding:
            Path(str(holding)).write_text(str(os.getpid()))

    async def handle(self, envelope: Envelope) -> None:
        ping = envelope.message
        if not isinstance(ping, Ping) or ping.target not in (self.name, "*"):
            return
        if ping.action == "crash":
            raise RuntimeError("told to crash")
        if ping.action == "block":
            time.sleep(3600)  # a wedged actor: its heartbeats stop
        self.count += 1
        pong = Pong(
            nonce=ping.nonce, actor=self.name, pid=os.getpid(), incarnation=self.context.incarnation, count=self.count
        )
        await self.bus.publish("test.pong", pong, cause=envelope.id)

    async def teardown(self) -> None:
        stop_log = self.context.options.get("stop_log")
        if stop_log:
            with open(str(stop_log), "a") as log:
                log.write(f"{self.name} {time.monotonic_ns()}\n")
        holding = self.context.options.get("holding")
        if holding:
            Path(str(holding)).unlink(missing_ok=True)
        delay = self.context.options.get("stop_delay_s")
        if isinstance(delay, int | float):
            await asyncio.sleep(delay)


class StatusReporter(Actor):
    """Publishes a VRRP status report as the VRRP actor does, so the kernel's `status` can be tested."""

    async def main(self) -> None:
        from ffo.vrrp.status import STATUS_TOPIC, InstanceStatus, VrrpStatus

        instance = InstanceStatus(
            name="web",
            vrid=51,
            family="IPv4",
            state="MASTER",
            priority=200,
            effective_priority=200,
            master="192.0.2.11",
            vips=("192.0.2.100/24",),
            timer_lateness_ms={"p50": 0.2, "p99": 0.4, "max": 1.5},
            counters={"adverts_sent": 3},
        )
        report = VrrpStatus(node=self.context.node, pid=os.getpid(), instances=(instance,), counters={})
        while True:
            await self.bus.publish(STATUS_TOPIC, report)
            await asyncio.sleep(0.05)
