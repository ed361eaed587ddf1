"""The VIP actor: adds and removes the VIPs the VRRP actor asks for, announces them, and covers for it.

Requests come on ``cmd.vip`` (`ffo.vrrp.requests.VipRequest`): ACQUIRE adds the instance's VIPs (on a VRRP
virtual MAC interface with `use_vmac`), ANNOUNCE starts the gratuitous ARP / unsolicited NA schedule
(keepalived's defaults: 5 at once, 5 more after 5 s), RELEASE stops it and removes them. Each result is an
event in the actor's stream (``vip.acquired`` / ``vip.released``, with the netlink and announcement times),
whose cause is the VRRP transition that asked for it, so `ffo why` can say what the node did.

Three ways the VIPs are kept right beyond the requests:

- The VRRP actor's status reports (``sys.status``, every second and after each transition) say which
  instances are master. The VIP actor reconciles against them: it takes or drops an instance's VIPs when the
  report and what it holds disagree (a lost request, a restart of either actor). At start it waits briefly
  for a report and removes every configured VIP it must not hold (ffo-tagged or configured addresses only;
  the address owner's own address is never removed).
- The VRRP actor died while master (the kernel's ``sys.exited``, seen within milliseconds): the VIP actor
  sends the priority-0 advertisements that actor handed over with its ACQUIRE, and releases the VIPs, so the
  backup takes over after Skew_Time instead of 3 x interval and the VIPs are never on two nodes.
- The VIP actor itself stops (shutdown, the kernel gone): it does the same for whatever it still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from pathlib import Path
from typing import ClassVar, Final

import attrs

from ffo.actors.base import Actor
from ffo.bus.envelope import Envelope
from ffo.bus.messages import ActorExited
from ffo.config import InstanceSettings, NodeConfig, load_config
from ffo.eventlog.committer import run_group_commit
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.writer import EventWriter
from ffo.net.announce import Announcer, AnnouncerUnavailable, run_schedule
from ffo.net.vrrpsock import VrrpSocket
from ffo.vip.events import VipsAcquired, VipsReleased
from ffo.vip.frames import announcement_frames
from ffo.vip.model import Vip, parse_vip
from ffo.vip.netlink import VipNetlink
from ffo.vip.schedule import AnnounceSettings, announcements
from ffo.vip.vmac import VmacSpec
from ffo.vrrp.packet import Family
from ffo.vrrp.requests import VipAction, VipRequest
from ffo.vrrp.status import VrrpStatus

VIP_STREAM: Final = "vip"
VRRP_ACTOR: Final = "vrrp"
FIRST_REPORT_WAIT_S: Final = 2.0
"""At start, how long to wait for the VRRP actor's status before reconciling to "hold nothing"."""


@attrs.define
class _Held:
    """What the actor holds for one instance."""

    settings: InstanceSettings
    vips: tuple[Vip, ...] = ()
    goodbye: tuple[tuple[str, Family, str, bytes], ...] = ()
    """(interface, family, destination, payload) of the priority-0 advertisements to send for a dead master."""
    announcing: asyncio.Task[None] | None = None


class VipActor(Actor):
    subscriptions: ClassVar[tuple[str, ...]] = ("sys.status", "sys.exited")

    async def setup(self) -> None:
        self.config: NodeConfig = load_config(Path(str(self.context.options["config"])))
        clock = self.context.clock
        self.netlink = await VipNetlink.open(clock=clock)
        self.journal = EventWriter.open(
            self.config.events_dir / VIP_STREAM,
            node=self.config.name,
            stream=VIP_STREAM,
            clock=clock,
            policy=LogPolicy.from_settings(self.config.events),
        )
        self.held = {settings.name: _Held(settings=settings) for settings in self.config.instances}
        self.sockets: dict[tuple[str, Family], VrrpSocket] = {}
        for settings in self.config.instances:  # ready before a takeover needs them (goodbyes)
            self._open_socket(settings)
        self.announce = AnnounceSettings()
        self._first_report = asyncio.Event()
        self._lock = asyncio.Lock()  # one netlink change at a time, in arrival order
        self._to_announce: asyncio.Queue[_Held] = asyncio.Queue()

    async def main(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(run_group_commit(self.journal, self.config.events.fsync_interval_ns))
            group.create_task(self._initial_reconcile())
            while True:  # each announcement schedule runs in this group, until its instance releases
                held = await self._to_announce.get()
                if held.vips:
                    if held.announcing is not None:
                        held.announcing.cancel()
                    held.announcing = group.create_task(self._announce(held))

    async def teardown(self) -> None:
        """Whatever is still held goes, with a goodbye for it: no VIP stays on a node whose ffo stopped."""
        if hasattr(self, "held"):
            for held in self.held.values():
                if held.vips:
                    self._say_goodbye(held)
                    await self._release(held, cause=None, why="the VIP actor is stopping")
        for sock in getattr(self, "sockets", {}).values():
            sock.close()
        if hasattr(self, "netlink"):
            self.netlink.close()
        if hasattr(self, "journal"):
            self.journal.close()

    async def handle(self, envelope: Envelope) -> None:
        message = envelope.message
        if isinstance(message, VipRequest):
            held = self.held.get(message.instance)
            if held is None:
                self.log.warning("request for unknown instance %s ignored", message.instance)
                return
            async with self._lock:
                await self._apply(held, message)
        elif isinstance(message, VrrpStatus):
            self._first_report.set()
            async with self._lock:
                await self._follow(message)
        elif isinstance(message, ActorExited) and message.actor == VRRP_ACTOR and not message.expected:
            async with self._lock:
                for held in self.held.values():
                    if held.vips:
                        name = held.settings.name
                        self.log.error("the VRRP actor %s while master of %s: speaking for it", message.how, name)
                        self._say_goodbye(held)
                        await self._release(held, cause=None, why=f"the VRRP actor {message.how}")
        # Queued requests are handed over without a trip through the loop: let the heartbeat out between them
        # (200 instances taking over at once are seconds of work, and a silent actor is killed as hung).
        await asyncio.sleep(0)

    # --- the work ---

    async def _apply(self, held: _Held, request: VipRequest) -> None:
        if request.action is VipAction.ACQUIRE:
            held.goodbye = tuple(
                (packet.interface, packet.family, packet.destination, packet.payload) for packet in request.goodbye
            )
            self._open_socket(held.settings)
            await self._acquire(held, cause=request.cause)
        elif request.action is VipAction.ANNOUNCE:
            self._start_announcing(held)
        else:
            await self._release(held, cause=request.cause, why="")

    async def _follow(self, report: VrrpStatus) -> None:
        """Make what is held agree with the VRRP actor's report (a lost request, a restart)."""
        for instance in report.instances:
            held = self.held.get(instance.name)
            if held is None:
                continue
            if instance.state == "MASTER" and not held.vips:
                self.log.warning("%s is master but its VIPs are not held: taking them", instance.name)
                await self._acquire(held, cause=None)
                self._start_announcing(held)
                await asyncio.sleep(0)  # as between requests: the heartbeat goes on
            elif instance.state != "MASTER" and held.vips:
                self.log.warning("%s is %s but its VIPs are held: releasing them", instance.name, instance.state)
                await self._release(held, cause=None, why=f"status: {instance.state}")
                await asyncio.sleep(0)

    async def _initial_reconcile(self) -> None:
        """At start: hold nothing that is not ours to hold (a previous incarnation may have left VIPs)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_report.wait(), FIRST_REPORT_WAIT_S)
        async with self._lock:
            desired = [vip for held in self.held.values() for vip in held.vips]
            claimable = [
                vip for held in self.held.values() if held.settings.priority != 255 for vip in self._vips(held.settings)
            ]
            result = await self.netlink.reconcile(desired, claimable=claimable)
            if result.removed:
                self.log.warning("start: removed VIPs left behind: %s", ", ".join(vip.text for vip in result.removed))
            for held in self.held.values():  # on the record too: `ffo events` shows the clean-up per instance
                removed = tuple(vip for vip in result.removed if vip in self._vips(held.settings))
                if removed:
                    self.journal.append(
                        VipsReleased(
                            instance=held.settings.name,
                            vips=tuple(vip.text for vip in removed),
                            interface=removed[0].interface,
                            netlink_ns=result.netlink_ns,
                        )
                    )

    async def _acquire(self, held: _Held, *, cause: str | None) -> None:
        settings = held.settings
        vips = self._vips(settings)
        if settings.priority == 255:
            # The address owner's VIPs are its own interface addresses: announced, never added or removed.
            held.vips = vips
            return
        interface = settings.interface
        if settings.use_vmac:
            spec = VmacSpec.for_instance(settings)
            link = await self.netlink.ensure_vmac(spec)
            if link.ok:
                interface = spec.name
                vips = tuple(parse_vip(interface, vip.text) for vip in vips)
        result = await self.netlink.acquire(vips)
        held.vips = result.held
        # One announcement at once, before the journal and the bus: the neighbours' caches move to this node
        # now, not after the ANNOUNCE request's round trip (the failover benchmark measured ~3 ms). The
        # ANNOUNCE request then runs the keepalived-style schedule.
        announce_ns = await self._announce_once(held)
        self.journal.append(
            VipsAcquired.from_result(
                instance=settings.name, interface=interface, result=result, announce_ns=announce_ns
            ),
            cause=cause,
        )
        for error in result.errors:
            self.log.error("%s: %s", settings.name, error.reason)

    async def _announce_once(self, held: _Held) -> int:
        """Send every VIP's frame once; how long the send took (0 when nothing could be sent)."""
        if not held.vips:
            return 0
        try:
            announcer = Announcer.open(held.vips[0].interface, clock=self.context.clock)
        except AnnouncerUnavailable as error:
            self.log.error("%s: cannot announce: %s", held.settings.name, error)
            return 0
        try:
            sent = announcer.send(await self._frames(held, announcer))
        finally:
            announcer.close()
        return sent.elapsed_ns

    async def _frames(self, held: _Held, announcer: Announcer) -> tuple[bytes, ...]:
        source = None
        if any(vip.family is Family.IPV6 for vip in held.vips):
            identity = await self.netlink.link_identity(held.vips[0].interface)
            source = identity.link_local if identity is not None else None
        return announcement_frames((vip.ip for vip in held.vips), mac=announcer.mac, source=source)

    def _start_announcing(self, held: _Held) -> None:
        self._to_announce.put_nowait(held)

    async def _announce(self, held: _Held) -> None:
        try:
            announcer = Announcer.open(held.vips[0].interface, clock=self.context.clock)
        except AnnouncerUnavailable as error:
            self.log.error("%s: cannot announce: %s", held.settings.name, error)
            return
        try:
            frames = await self._frames(held, announcer)
            schedule = announcements(self.announce, self.context.clock.monotonic_ns())
            await run_schedule(announcer, frames, schedule, clock=self.context.clock)
        finally:
            announcer.close()

    async def _release(self, held: _Held, *, cause: str | None, why: str) -> None:
        if held.announcing is not None:
            held.announcing.cancel()
            held.announcing = None
        settings = held.settings
        vips = held.vips or self._vips(settings)
        if settings.priority == 255:
            held.vips, held.goodbye = (), ()
            return
        result = await self.netlink.release(vips)
        if settings.use_vmac:
            await self.netlink.remove_vmac(VmacSpec.for_instance(settings).name)
        held.vips = ()
        held.goodbye = ()
        event = VipsReleased.from_result(instance=settings.name, interface=vips[0].interface, result=result)
        self.journal.append(event, cause=cause)
        if why:
            self.log.warning("%s: released %s (%s)", settings.name, ", ".join(vip.text for vip in vips), why)

    def _say_goodbye(self, held: _Held) -> None:
        """Send the priority-0 advertisements the VRRP actor prepared: the backup takes over in Skew_Time."""
        for interface, family, destination, payload in held.goodbye:
            sock = self.sockets.get((interface, family))
            if sock is not None:
                sock.send_payload(payload, ipaddress.ip_address(destination))

    def _open_socket(self, settings: InstanceSettings) -> None:
        key = (settings.interface, settings.family)
        if key not in self.sockets:
            try:
                self.sockets[key] = VrrpSocket.open(
                    settings.interface, settings.family, clock=self.context.clock, node=self.config.name, listen=False
                )
            except OSError as error:
                self.log.error("%s: no raw socket for goodbyes: %s", settings.name, error)

    @staticmethod
    def _vips(settings: InstanceSettings) -> tuple[Vip, ...]:
        return tuple(
            parse_vip(settings.interface, f"{vip}/{prefix}")
            for vip, prefix in zip(settings.vips, settings.vip_prefixes, strict=True)
        )
