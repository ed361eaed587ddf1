"""All the virtual routers of one node, sans-IO: what the VRRP actor does, without its sockets and timers.

The VRRP actor owns raw sockets, a timerfd, the event log and the bus; everything it *decides* is here, so that
it can be tested (and simulated) with a fake clock and a fake wire. The actor calls:

- `start(now)` once, `shutdown(now)` at the end;
- `received(...)` for every advertisement its sockets decoded, `rejected(...)` for every packet they refused;
- `timers_due(now)` when the wake-up at `next_deadline()` comes (the timer's lateness is measured here);
- `interface_changed(...)`, `priority_changed(...)` from netlink and trackers; `flush(now)` now and then;

and carries out the returned actions *in order*. The order is the write-ahead rule: a step's records
(`Append`) come before its packets (`Send`) and VIP commands (`VipCommand`), so the log holds a transition
before anything it implies is done.

Dispatch: a packet belongs to the instance configured for its (interface, family, VRID); packets for other
VRIDs on the link are counted, not fed (they are other routers' business). With `unicast_peers`, only the
listed peers are heard (RFC 9568 §6.4 leaves unicast to the implementation; keepalived checks the source too).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Mapping
from typing import Final

import attrs

from ffo.config import InstanceSettings
from ffo.timing.lateness import LatenessTracker
from ffo.vrrp import machine
from ffo.vrrp.effects import AcquireVips, AnnounceVips, Dropped, Effect, ReleaseVips, SendAdvertisement, Transitioned
from ffo.vrrp.inputs import (
    AdvertisementReceived,
    Input,
    InterfaceChanged,
    PriorityChanged,
    ShutdownRequested,
    Started,
    TimerExpired,
)
from ffo.vrrp.packet import Advertisement, ChecksumForm, Family, IPAddress, encode
from ffo.vrrp.record import DEFAULT_RUN_FLUSH_NS, Recorder, VrrpRecord
from ffo.vrrp.state import InstanceConfig, InstanceState, Role
from ffo.vrrp.status import InstanceStatus

__all__ = ["MULTICAST_GROUP", "Action", "Append", "InstanceRuntime", "Send", "VipCommand", "VrrpNode"]

MULTICAST_GROUP: Final[Mapping[Family, IPAddress]] = {
    Family.IPV4: ipaddress.IPv4Address("224.0.0.18"),  # RFC 9568 §5.1.1.2
    Family.IPV6: ipaddress.IPv6Address("ff02::12"),  # RFC 9568 §5.1.2.2
}


@attrs.frozen(kw_only=True)
class Append:
    """Append this record to the VRRP actor's event stream (before the actions that follow it)."""

    record: VrrpRecord


@attrs.frozen(kw_only=True)
class Send:
    """Send this VRRP message (the IP payload) from `source` to `destination` on `interface`."""

    instance: str
    interface: str
    family: Family
    source: IPAddress
    destination: IPAddress
    payload: bytes
    priority: int


@attrs.frozen(kw_only=True)
class VipCommand:
    """Ask the VIP actor to add, remove or announce an instance's VIPs."""

    instance: str
    interface: str
    vrid: int
    family: Family
    effect: AcquireVips | ReleaseVips | AnnounceVips
    prefixes: tuple[int, ...]
    use_vmac: bool
    goodbye: tuple[Send, ...] = ()
    """With AcquireVips: the priority-0 advertisements to send on this instance's behalf if it dies."""


Action = Append | Send | VipCommand


@attrs.define
class InstanceRuntime:
    """One virtual router: its settings, its protocol state, its recorder and its counters."""

    settings: InstanceSettings
    config: InstanceConfig
    state: InstanceState
    recorder: Recorder
    counters: Counter[str] = attrs.field(factory=Counter)
    lateness: LatenessTracker = attrs.field(factory=LatenessTracker)
    goodbye: tuple[Send, ...] = ()
    """The priority-0 advertisements of a clean shutdown: fixed by the settings, so built once, not at takeover."""

    @property
    def master(self) -> IPAddress | None:
        """Who is master as far as this router knows: itself, the last master it heard, or nobody."""
        if self.state.role is Role.MASTER:
            return self.config.primary_address
        if self.state.role is Role.BACKUP and self.state.last_heard is not None:
            return self.state.last_heard.source
        return None

    def status(self) -> InstanceStatus:
        """The `ffo status` view of this instance (CLI.md)."""
        late = self.lateness.snapshot()
        settings = self.settings
        return InstanceStatus(
            name=settings.name,
            vrid=settings.vrid,
            family=f"IPv{int(settings.family)}",
            state=self.state.role.value,
            priority=settings.priority,
            effective_priority=self.state.priority,
            master=None if self.master is None else str(self.master),
            vips=tuple(f"{vip}/{prefix}" for vip, prefix in zip(settings.vips, settings.vip_prefixes, strict=True)),
            timer_lateness_ms={"p50": late.p50_ns / 1e6, "p99": late.p99_ns / 1e6, "max": late.max_ns / 1e6},
            counters=dict(sorted(self.counters.items())),
        )


def instance_config(settings: InstanceSettings, primary_address: IPAddress) -> InstanceConfig:
    """The protocol's view of an `[[instance]]`, with the interface's primary address of its family."""
    return InstanceConfig(
        name=settings.name,
        vrid=settings.vrid,
        family=settings.family,
        version=settings.version,
        priority=settings.priority,
        advert_interval_cs=settings.advert_interval_cs,
        preempt=settings.preempt,
        accept=settings.accept,
        primary_address=primary_address,
        vips=settings.vips,
    )


class VrrpNode:
    """Every instance of the node, with dispatch by (interface, family, VRID)."""

    def __init__(
        self,
        instances: tuple[InstanceSettings, ...],
        primary_addresses: Mapping[tuple[str, Family], IPAddress],
        *,
        run_flush_ns: int = DEFAULT_RUN_FLUSH_NS,
    ) -> None:
        self.instances: dict[str, InstanceRuntime] = {}
        self._by_key: dict[tuple[str, Family, int], InstanceRuntime] = {}
        self.counters: Counter[str] = Counter()
        for settings in instances:
            primary = primary_addresses[(settings.interface, settings.family)]
            config = instance_config(settings, primary)
            runtime = InstanceRuntime(
                settings=settings,
                config=config,
                state=InstanceState.initial(config),
                recorder=Recorder(instance=settings.name, run_flush_ns=run_flush_ns),
            )
            leaving = SendAdvertisement(priority=0, interval_cs=config.advert_interval_cs)
            runtime.goodbye = tuple(self._sends(runtime, leaving))
            self.instances[settings.name] = runtime
            self._by_key[(settings.interface, settings.family, settings.vrid)] = runtime

    # --- inputs from the actor ---

    def start(self, now_ns: int) -> list[Action]:
        actions: list[Action] = []
        for runtime in self.instances.values():
            actions += [Append(record=record) for record in runtime.recorder.configured(runtime.config)]
            actions += self._feed(runtime, Started(), now_ns)
        return actions

    def received(
        self,
        interface: str,
        family: Family,
        source: IPAddress,
        advertisement: Advertisement,
        now_ns: int,
    ) -> list[Action]:
        runtime = self._by_key.get((interface, family, advertisement.vrid))
        if runtime is None:
            self.counters[f"other_vrid:{interface}"] += 1
            return []
        peers = runtime.settings.unicast_peers
        if peers and source not in peers:
            runtime.counters["dropped:not_a_peer"] += 1
            return []
        runtime.counters["adverts_received"] += 1
        return self._feed(runtime, AdvertisementReceived(source=source, advertisement=advertisement), now_ns)

    def rejected(self, interface: str, reason: str) -> None:
        """A packet the socket layer refused (bad checksum, TTL, ...): counted for the node and interface."""
        self.counters[f"rejected:{reason}"] += 1
        self.counters[f"rejected:{interface}"] += 1

    def next_deadline(self) -> int | None:
        deadlines = [d for r in self.instances.values() if (d := machine.next_deadline(r.state)) is not None]
        return min(deadlines) if deadlines else None

    def timers_due(self, now_ns: int) -> list[Action]:
        """Fire every timer due at `now_ns` (the instant the actor woke: lateness is `now - deadline`)."""
        actions: list[Action] = []
        for runtime in self.instances.values():
            for _ in range(4):  # both timers at most, each once; a guard, not a loop that should ever spin
                due = machine.due_timer(runtime.state)
                if due is None or due.deadline_ns > now_ns:
                    break
                expired = TimerExpired(timer=due.timer, deadline_ns=due.deadline_ns, fired_ns=now_ns)
                runtime.lateness.record(expired.lateness_ns)
                actions += self._feed(runtime, expired, now_ns)
        return actions

    def interface_changed(self, interface: str, up: bool, now_ns: int) -> list[Action]:
        actions: list[Action] = []
        for runtime in self.instances.values():
            if runtime.settings.interface == interface:
                actions += self._feed(runtime, InterfaceChanged(up=up), now_ns)
        return actions

    def priority_changed(self, instance: str, priority: int, reason: str, now_ns: int) -> list[Action]:
        return self._feed(self.instances[instance], PriorityChanged(priority=priority, reason=reason), now_ns)

    def shutdown(self, now_ns: int) -> list[Action]:
        """Shutdown every instance (a Master sends priority 0 and releases its VIPs), then close the runs."""
        actions: list[Action] = []
        for runtime in self.instances.values():
            actions += self._feed(runtime, ShutdownRequested(), now_ns)
            actions += [Append(record=record) for record in runtime.recorder.close()]
        return actions

    def flush(self, now_ns: int) -> list[Action]:
        """The records of runs that have been open long enough (call it every few seconds)."""
        return [
            Append(record=record) for runtime in self.instances.values() for record in runtime.recorder.flush(now_ns)
        ]

    def status(self) -> tuple[InstanceStatus, ...]:
        return tuple(runtime.status() for runtime in self.instances.values())

    # --- one step ---

    def _feed(self, runtime: InstanceRuntime, event: Input, now_ns: int) -> list[Action]:
        before = runtime.state
        runtime.state, effects = machine.step(before, event, now_ns)
        actions: list[Action] = [
            Append(record=record) for record in runtime.recorder.observe(before, event, now_ns, runtime.state, effects)
        ]
        for effect in effects:
            actions += self._carry_out(runtime, effect)
        return actions

    def _carry_out(self, runtime: InstanceRuntime, effect: Effect) -> list[Action]:
        settings = runtime.settings
        if isinstance(effect, SendAdvertisement):
            runtime.counters["adverts_sent"] += 1
            return [*self._sends(runtime, effect)]
        if isinstance(effect, AcquireVips | ReleaseVips | AnnounceVips):
            return [
                VipCommand(
                    instance=settings.name,
                    interface=settings.interface,
                    vrid=settings.vrid,
                    family=settings.family,
                    effect=effect,
                    prefixes=settings.vip_prefixes,
                    use_vmac=settings.use_vmac,
                    goodbye=runtime.goodbye if isinstance(effect, AcquireVips) else (),
                )
            ]
        if isinstance(effect, Transitioned):
            runtime.counters[f"became_{effect.to_role.value.lower()}"] += 1
        elif isinstance(effect, Dropped):
            runtime.counters[f"dropped:{effect.reason.value}"] += 1
        return []

    def _sends(self, runtime: InstanceRuntime, effect: SendAdvertisement) -> list[Send]:
        settings, config = runtime.settings, runtime.config
        advert = Advertisement(
            version=config.version,
            vrid=config.vrid,
            priority=effect.priority,
            interval_cs=effect.interval_cs,
            addresses=config.vips,
        )
        form = ChecksumForm.PSEUDO_HEADER if settings.checksum_ipv4_pseudo_header else ChecksumForm.PLAIN
        destinations = settings.unicast_peers or (MULTICAST_GROUP[settings.family],)
        source = config.primary_address
        return [
            Send(
                instance=settings.name,
                interface=settings.interface,
                family=settings.family,
                source=source,
                destination=destination,
                payload=encode(advert, family=settings.family, src=source, dst=destination, checksum_form=form),
                priority=effect.priority,
            )
            for destination in destinations
        ]
