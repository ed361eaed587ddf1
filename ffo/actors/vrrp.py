"""The VRRP actor: raw sockets, a timerfd, the event log and the bus around the node's VRRP core.

Everything this actor decides is in `ffo.vrrp.node.VrrpNode` (sans-IO); this module only moves data between it
and the world, and carries out its actions in order:

- `Append` → the actor's event stream (`<state_dir>/events/vrrp`), before anything the step implies is done
  (write-ahead). A transition's record id becomes the `cause` of the VIP requests that follow it.
- `Send` → the raw socket of the instance's interface and family (`ffo.net.VrrpSocket`).
- `VipCommand` → a `VipRequest` on ``cmd.vip`` for the VIP actor (queued, published by a task of the group).

Timers: one timerfd, armed at the core's next deadline (absolute CLOCK_MONOTONIC) after every batch of
actions, and watched by the loop with `add_reader`. Its callback steps the core at once, in the same loop
iteration that woke up: no task switch between the kernel's wake-up and the advertisement on the wire (the
failover benchmark showed ~0.9 ms from timer to wire when a task and `asyncio.wait` sat in between). The
instant the callback ran is the `fired_ns` of the timer input, so the lateness is in every timer record and in
`ffo status`. Timers that fall due while the callback works (many routers whose deadlines are close) are
served by the same callback, at most `TIMER_ROUNDS` times over, rather than by another trip through the
timerfd and the loop; being served at one instant, their next deadlines coincide, so the routers of a node
drift into step with each other and wake it once per interval rather than once per router.

Costs at scale (200 routers at 10 ms, tools/bench_scale.py): received datagrams come in batches (every one
queued, up to `VrrpSocket.max_batch`, per wake-up), sends go from bytes built once (`VrrpNode`), steady
steps skip the machine (`ffo.vrrp.steady`), and a status report asked for by several transitions in a row is
built once.

Options (the kernel passes them): ``config``, the path of the node's config file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from ffo.actors.base import Actor
from ffo.bus.codec import encode as encode_envelope
from ffo.bus.convert import prepare
from ffo.config import InstanceSettings, NodeConfig, load_config
from ffo.eventlog.committer import run_group_commit
from ffo.eventlog.frame import FrameEncoder
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.record import fields_of
from ffo.eventlog.writer import EventWriter
from ffo.net.linkwatch import LinkChange, LinkWatch
from ffo.net.receive import Received, Rejected
from ffo.net.vrrpsock import BatchHandler, VrrpSocket
from ffo.timing.timerfd import TimerFd
from ffo.vrrp.effects import AcquireVips, ReleaseVips
from ffo.vrrp.node import Action, Append, Send, VipCommand, VrrpNode
from ffo.vrrp.packet import Family, IPAddress
from ffo.vrrp.record import InputApplied, InstanceConfigured, PeriodicRun, TransitionMade
from ffo.vrrp.rehearsal import rehearse
from ffo.vrrp.requests import VIP_COMMAND_TOPIC, GoodbyePacket, VipAction, VipRequest
from ffo.vrrp.status import STATUS_TOPIC, VrrpStatus

VRRP_STREAM: Final = "vrrp"
STATUS_INTERVAL_S: Final = 1.0
STATUS_NOW: Final = None
"""In the outbox: publish a status report (built when it is published, not on the failover path)."""
STATUS_SLICE: Final = 10
"""Instances summarised between two turns of the event loop when a status report is built."""
TIMER_ROUNDS: Final = 4
"""How many times one timerfd wake-up serves timers that fell due meanwhile before it lets the loop run."""


def _one_of_each_kind(instances: Sequence[InstanceSettings]) -> list[InstanceSettings]:
    """The first instance of each combination of settings that takes its own code path."""
    kinds: dict[tuple[object, ...], InstanceSettings] = {}
    for settings in instances:
        kind = (
            settings.family,
            settings.version,
            settings.priority == 255,
            bool(settings.unicast_peers),
            settings.checksum_ipv4_pseudo_header,
            settings.use_vmac,
        )
        kinds.setdefault(kind, settings)
    return list(kinds.values())


class InterfaceNotReadyError(RuntimeError):
    """An instance's interface has no address of its family yet: the actor cannot advertise from it."""


class VrrpActor(Actor):
    """Runs every `[[instance]]` of the node's config."""

    async def setup(self) -> None:
        config_path = Path(str(self.context.options["config"]))
        self.config: NodeConfig = load_config(config_path)
        self.sockets: dict[tuple[str, Family], VrrpSocket] = {}
        clock = self.context.clock
        # Never advertise from a VIP: a restarted actor may find them still on the interface.
        # Never advertise from a VIP another node may hold. An address owner's (priority 255) VIPs are its own
        # addresses, usually the primary one, which RFC 9568 §5.1.1.1 has it advertise from: they stay usable.
        self._vips = tuple(
            vip for settings in self.config.instances if settings.priority != 255 for vip in settings.vips
        )
        for settings in self.config.instances:
            key = (settings.interface, settings.family)
            if key not in self.sockets:
                self.sockets[key] = VrrpSocket.open(
                    settings.interface, settings.family, exclude=self._vips, clock=clock, node=self.config.name
                )
            if settings.unicast_peers:
                self.sockets[key].set_peers(settings.vrid, settings.unicast_peers)
        self._socket_of = {s.name: self.sockets[(s.interface, s.family)] for s in self.config.instances}
        primaries: dict[tuple[str, Family], IPAddress] = {}
        for key, sock in self.sockets.items():
            if sock.source is None:
                interface, family = key
                raise InterfaceNotReadyError(f"{interface} has no usable IPv{int(family)} address to advertise from")
            primaries[key] = sock.source
        events = self.config.events
        self.core = VrrpNode(self.config.instances, primaries, run_flush_ns=events.run_flush_interval_ns)
        self.journal = EventWriter.open(
            self.config.events_dir / VRRP_STREAM,
            node=self.config.name,
            stream=VRRP_STREAM,
            clock=clock,
            policy=LogPolicy.from_settings(self.config.events),
        )
        if self.journal.recovery is not None:
            self.log.warning("event log: %s", self.journal.recovery)
        self.links = LinkWatch({settings.interface for settings in self.config.instances}, self._link_changed)
        self._links_at_start = self.links.current()
        # Compile the converters of what a transition writes and publishes now, not during the first takeover.
        prepare(InstanceConfigured, TransitionMade, InputApplied, PeriodicRun, VipRequest, VrrpStatus)
        self._last_transition: str | None = None
        self._rehearse(primaries)
        self.timer = TimerFd()
        self._armed_ns: int | None = None
        self._outbox: asyncio.Queue[VipRequest | None] = asyncio.Queue()
        self._status_queued = False
        self._receivers: list[tuple[VrrpSocket, BatchHandler]] = []
        self._started = False

    def _rehearse(self, primaries: dict[tuple[str, Family], IPAddress]) -> None:
        """Warm the takeover path before the timers start (`ffo.vrrp.rehearsal`): a scratch node's actions go
        through the same record and bus encoding as real ones, and nowhere else (nothing is written or sent).

        One instance of each kind is enough: what warms is the code (specialised per code object, not per
        instance) and the per-type caches. All 200 instances of a large node took 6-9 s here, and under load
        past the kernel's deadline for an actor to become ready."""
        encoder = FrameEncoder(self.config.name, VRRP_STREAM)
        for action in rehearse(_one_of_each_kind(self.config.instances), primaries):
            if isinstance(action, Append):
                type_name, version, fields = fields_of(action.record)
                encoder.encode(type_name, version, seq=1, ts_ns=0, mono_ns=0, cause=None, fields=fields)
            elif isinstance(action, VipCommand):
                encode_envelope("cmd.vip", self._vip_request(action), id="rehearsal", src="", ts=0, mono=0)

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        now = self.context.clock.monotonic_ns()
        for interface, up in sorted(self._links_at_start.items()):
            if not up:
                self.log.warning("%s is down: its instances wait in Initialize until it comes up", interface)
                self._execute(self.core.interface_changed(interface, False, now))
        self._execute(self.core.start(now))
        self._started = True
        self.links.attach(loop)
        loop.add_reader(self.timer.fileno(), self._on_timer)
        self._arm()
        self._receivers = [(sock, self._receiver(*key)) for key, sock in self.sockets.items()]
        for sock, on_batch in self._receivers:
            sock.attach(loop, on_batch)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._publish_outbox(), name="vrrp-outbox")
            group.create_task(self._every_second(), name="vrrp-status")
            group.create_task(run_group_commit(self.journal, self.config.events.fsync_interval_ns))

    async def teardown(self) -> None:
        """Shutdown: a master sends priority 0 (backups take over after Skew_Time) and releases its VIPs."""
        core = getattr(self, "core", None)
        if core is not None and self._started:
            self._execute(core.shutdown(self.context.clock.monotonic_ns()))
            await self._drain_outbox()
        for sock in getattr(self, "sockets", {}).values():
            sock.detach()
            sock.close()
        links = getattr(self, "links", None)
        if links is not None:
            links.close()
        timer = getattr(self, "timer", None)
        if timer is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(timer.fileno())
            timer.close()
        journal = getattr(self, "journal", None)
        if journal is not None:
            journal.close()

    # --- inputs ---

    def _receiver(self, interface: str, family: Family) -> BatchHandler:
        core = self.core

        def on_batch(datagrams: Sequence[Received | Rejected]) -> None:
            now = self.context.clock.monotonic_ns()
            heard: list[Received] = []
            for datagram in datagrams:
                if type(datagram) is Received:
                    heard.append(datagram)
                else:
                    assert isinstance(datagram, Rejected)
                    core.rejected(interface, datagram.reason.value)
            self._execute(core.received_many(interface, family, heard, now))

        return on_batch

    def _link_changed(self, change: LinkChange) -> None:
        self.log.warning("%s went %s", change.interface, "up" if change.up else "down")
        if change.up:
            for (interface, _family), sock in self.sockets.items():
                if interface == change.interface:
                    sock.refresh_source(self._vips)
        self._execute(self.core.interface_changed(change.interface, change.up, self.context.clock.monotonic_ns()))

    def _on_timer(self) -> None:
        if not self.timer.read_expirations():
            return
        self._armed_ns = None
        # Advertisements already queued count before any timer: after a stall of this process (a collection,
        # a busy core) a Backup's Master_Down timer and its master's advertisements are due together, and the
        # master is evidently alive. Without a stall the sockets are empty and this is one read each.
        for sock, on_batch in self._receivers:
            batch = sock.drain()
            if batch:
                on_batch(batch)
        clock, core = self.context.clock, self.core
        for _ in range(TIMER_ROUNDS):
            self._execute(core.timers_due(clock.monotonic_ns()), arm=False)
            deadline = core.next_deadline()
            if deadline is None or deadline > clock.monotonic_ns():
                break
        self._arm()

    def _arm(self) -> None:
        """Point the timerfd at the core's next deadline (after every batch of actions: steps move it).

        A deadline that only moved later leaves the timerfd as it is: it wakes the actor early, `_on_timer`
        finds nothing due and arms it then. A Backup hearing its masters moves its earliest deadline at every
        packet; this makes that one early wake-up per Master_Down_Interval instead of a `timerfd_settime`
        per packet (20,000 a second at 200 routers and 10 ms).
        """
        deadline = self.core.next_deadline()
        armed = self._armed_ns
        if deadline == armed or (deadline is not None and armed is not None and armed < deadline):
            return
        self._armed_ns = deadline
        if deadline is None:
            self.timer.disarm()
        else:
            self.timer.arm_at(deadline)

    # --- actions ---

    def _execute(self, actions: Sequence[Action], *, arm: bool = True) -> None:
        transitioned = False
        socket_of = self._socket_of
        for action in actions:
            if type(action) is Send:  # by far the most frequent: first, and by exact type
                socket_of[action.instance].send_payload(action.payload, action.destination)
            elif isinstance(action, Append):
                seq = self.journal.append(action.record)
                if isinstance(action.record, TransitionMade):
                    transitioned = True
                    self._last_transition = f"{VRRP_STREAM}:{seq}" if seq is not None else None
            elif isinstance(action, VipCommand):
                self._outbox.put_nowait(self._vip_request(action))
        if transitioned and not self._status_queued:
            # Built by the publisher (sorting lateness samples can wait), once for a burst of transitions.
            self._status_queued = True
            self._outbox.put_nowait(STATUS_NOW)
        if arm and self._started:
            self._arm()

    def _vip_request(self, command: VipCommand) -> VipRequest:
        effect = command.effect
        action = (
            VipAction.ACQUIRE
            if isinstance(effect, AcquireVips)
            else VipAction.RELEASE
            if isinstance(effect, ReleaseVips)
            else VipAction.ANNOUNCE
        )
        return VipRequest(
            instance=command.instance,
            action=action,
            interface=command.interface,
            vrid=command.vrid,
            family=command.family,
            vips=tuple(f"{vip}/{prefix}" for vip, prefix in zip(effect.vips, command.prefixes, strict=True)),
            use_vmac=command.use_vmac,
            cause=self._last_transition,
            goodbye=tuple(
                GoodbyePacket(
                    interface=send.interface,
                    family=send.family,
                    source=str(send.source),
                    destination=str(send.destination),
                    payload=send.payload,
                )
                for send in command.goodbye
            ),
        )

    async def _status(self) -> VrrpStatus:
        """The report, built `STATUS_SLICE` instances at a time with the loop let run in between, so that
        timers and packets never wait for a whole report (200 instances are milliseconds of work)."""
        instances = []
        for count, runtime in enumerate(self.core.instances.values(), 1):
            instances.append(runtime.status())
            if count % STATUS_SLICE == 0:
                await asyncio.sleep(0)
        return VrrpStatus(
            node=self.config.name, pid=os.getpid(), instances=tuple(instances), counters=dict(self.core.counters)
        )

    async def _publish_outbox(self) -> None:
        while True:
            await self._publish(await self._outbox.get())

    async def _drain_outbox(self) -> None:
        while not self._outbox.empty():
            await self._publish(self._outbox.get_nowait())

    async def _publish(self, message: VipRequest | None) -> None:
        if message is STATUS_NOW:
            self._status_queued = False  # a transition from here on needs a newer report
            await self.bus.publish(STATUS_TOPIC, await self._status())
        else:
            await self.bus.publish(VIP_COMMAND_TOPIC, message, cause=message.cause)

    async def _every_second(self) -> None:
        while True:
            self._execute(self.core.flush(self.context.clock.monotonic_ns()))
            await self._publish(STATUS_NOW)
            await asyncio.sleep(STATUS_INTERVAL_S)
