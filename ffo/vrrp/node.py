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

Many routers (BENCHMARKS.md: 200 routers at 10 ms are 20,000 packets a second on each node), so the common
steps cost little:

- timers: the instances' deadlines are in a `DeadlineQueue`, so `next_deadline` and `timers_due` cost
  O(log K) per timer instead of a scan of every instance;
- sending: an advertisement's bytes (and its `Send` actions) are built once per (priority, interval) and
  reused; nothing else in them can change while the node runs (addresses, source, checksum form and
  destinations are fixed by the settings);
- repeats: once the machine has made one of the two steady-state steps (`ffo.vrrp.steady`: a Master's
  Adver_Timer, a Backup hearing the same advertisement again), the identical steps that follow are computed
  directly, counted in the recorder's open run without building their records, and applied to the state
  only when someone reads it (`InstanceRuntime.state`). The results are the machine's, exactly: the node
  built with ``fast_paths=False`` is the reference the tests compare against.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Protocol

import attrs

from ffo.config import InstanceSettings
from ffo.vrrp import machine
from ffo.vrrp.actions import Action, Append, Send, VipCommand
from ffo.vrrp.deadlines import DeadlineQueue
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
from ffo.vrrp.record import DEFAULT_RUN_FLUSH_NS, Recorder
from ffo.vrrp.runtime import LATENESS_REFRESH_REPORTS, InstanceRuntime
from ffo.vrrp.state import InstanceConfig, InstanceState
from ffo.vrrp.status import InstanceStatus
from ffo.vrrp.steady import AdverTimerRepeat, AdvertisementRepeat, Repeat, recognise

__all__ = [
    "LATENESS_REFRESH_REPORTS",
    "MULTICAST_GROUP",
    "Action",
    "Append",
    "Heard",
    "InstanceRuntime",
    "Send",
    "VipCommand",
    "VrrpNode",
]

MULTICAST_GROUP: Final[Mapping[Family, IPAddress]] = {
    Family.IPV4: ipaddress.IPv4Address("224.0.0.18"),  # RFC 9568 §5.1.1.2
    Family.IPV6: ipaddress.IPv6Address("ff02::12"),  # RFC 9568 §5.1.2.2
}


class Heard(Protocol):
    """A received advertisement and its source (the socket layer's `Received` is one)."""

    @property
    def src(self) -> IPAddress: ...

    @property
    def advertisement(self) -> Advertisement: ...


@attrs.frozen
class _Heard:
    src: IPAddress
    advertisement: Advertisement


_NO_ACTIONS: Final[tuple[Action, ...]] = ()
_SEND_CACHE_LIMIT: Final = 16
"""Distinct (priority, interval) pairs whose sends are kept per instance; a tracker flapping priorities cannot
grow it further (the cache is emptied and refilled)."""


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
        fast_paths: bool = True,
    ) -> None:
        self.instances: dict[str, InstanceRuntime] = {}
        self._by_link: dict[tuple[str, Family], dict[int, InstanceRuntime]] = {}
        self.counters: Counter[str] = Counter()
        self.fast_paths = fast_paths
        """False: every step goes through `machine.step` (the reference the fast paths are tested against)."""
        self.fast_steps = 0
        """Steps taken by the fast path (`ffo.vrrp.steady`) so far."""
        for index, settings in enumerate(instances):
            primary = primary_addresses[(settings.interface, settings.family)]
            config = instance_config(settings, primary)
            runtime = InstanceRuntime(
                settings=settings,
                config=config,
                state=InstanceState.initial(config),
                recorder=Recorder(instance=settings.name, run_flush_ns=run_flush_ns),
                index=index,
            )
            leaving = SendAdvertisement(priority=0, interval_cs=config.advert_interval_cs)
            runtime.goodbye = self._sends(runtime, leaving)
            self.instances[settings.name] = runtime
            self._by_link.setdefault((settings.interface, settings.family), {})[settings.vrid] = runtime
        self._deadlines = DeadlineQueue(tuple(self.instances.values()))

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
        return self.received_many(interface, family, (_Heard(source, advertisement),), now_ns)

    def received_many(self, interface: str, family: Family, batch: Iterable[Heard], now_ns: int) -> list[Action]:
        """`received` for each datagram of a batch read at `now_ns`, in order: what the actor calls after each
        wake-up of a socket (the dispatch table of the link is looked up once per batch)."""
        by_vrid = self._by_link.get((interface, family), {})
        actions: list[Action] = []
        for heard in batch:
            advertisement = heard.advertisement
            runtime = by_vrid.get(advertisement.vrid)
            if runtime is None:
                self.counters[f"other_vrid:{interface}"] += 1
                continue
            source = heard.src
            peers = runtime.settings.unicast_peers
            if peers and source not in peers:
                runtime.counters["dropped:not_a_peer"] += 1
                continue
            runtime.counters["adverts_received"] += 1
            repeat = runtime.repeat
            if (
                type(repeat) is AdvertisementRepeat
                and (advertisement is repeat.advertisement or advertisement == repeat.advertisement)
                and (source is repeat.source or source == repeat.source)
            ):
                actions += self._repeat(runtime, repeat, now_ns, now_ns)
            else:
                actions += self._feed(
                    runtime, AdvertisementReceived(source=source, advertisement=advertisement), now_ns
                )
        return actions

    def rejected(self, interface: str, reason: str) -> None:
        """A packet the socket layer refused (bad checksum, TTL, ...): counted for the node and interface."""
        self.counters[f"rejected:{reason}"] += 1
        self.counters[f"rejected:{interface}"] += 1

    def next_deadline(self) -> int | None:
        return self._deadlines.next_deadline()

    def timers_due(self, now_ns: int) -> list[Action]:
        """Fire every timer due at `now_ns` (the instant the actor woke: lateness is `now - deadline`).

        Instances are served earliest deadline first; those due at the same instant in configuration order.
        """
        actions: list[Action] = []
        for due_ns, runtime in self._deadlines.pop_due(now_ns):
            repeat = runtime.repeat
            if type(repeat) is AdverTimerRepeat:
                runtime.timer_fired(now_ns - due_ns)
                runtime.counters["adverts_sent"] += 1
                actions += self._repeat(runtime, repeat, now_ns, due_ns)
                actions += self._sends(runtime, repeat.send)
                continue
            for _ in range(4):  # both timers at most, each once; a guard, not a loop that should ever spin
                due = machine.due_timer(runtime.state)
                if due is None or due.deadline_ns > now_ns:
                    break
                expired = TimerExpired(timer=due.timer, deadline_ns=due.deadline_ns, fired_ns=now_ns)
                runtime.timer_fired(expired.lateness_ns)
                actions += self._feed(runtime, expired, now_ns)
            self._deadlines.set(runtime.index, machine.next_deadline(runtime.state))
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
        actions: list[Action] = []
        for runtime in self.instances.values():
            records = runtime.recorder.flush(now_ns)
            if records:
                runtime.repeat = None  # its run is written: the next step opens a new one, through the machine
                actions += [Append(record=record) for record in records]
        return actions

    def status(self) -> tuple[InstanceStatus, ...]:
        return tuple(runtime.status() for runtime in self.instances.values())

    # --- one step ---

    def _feed(self, runtime: InstanceRuntime, event: Input, now_ns: int) -> list[Action]:
        """One step through the machine; afterwards, whether the next identical one may take the fast path."""
        before = runtime.state
        after, effects = machine.step(before, event, now_ns)
        runtime.state = after
        recorder = runtime.recorder
        actions: list[Action] = [
            Append(record=record) for record in recorder.observe(before, event, now_ns, after, effects)
        ]
        if self.fast_paths and after is not before:
            runtime.repeat = recognise(before, event, now_ns, after, effects) if recorder.run_open else None
        self._deadlines.set(runtime.index, machine.next_deadline(after))
        for effect in effects:
            actions += self._carry_out(runtime, effect)
        return actions

    def _repeat(self, runtime: InstanceRuntime, repeat: Repeat, now_ns: int, due_ns: int) -> Sequence[Action]:
        """A fast step: `repeat` once more at `now_ns` (`due_ns`: the timer's deadline), as the machine would.

        The recorder counts it in the open run (which `runtime.repeat` being set guarantees: every step that
        is not a repeat goes through `_feed`, which sets or clears it); its record is built only if the run
        is written now. Returns the run's record when it is due, and clears the repeat then.
        """
        self.fast_steps += 1
        runtime.repeated(repeat, now_ns)
        self._deadlines.set(runtime.index, now_ns + repeat.period_ns)
        records = runtime.recorder.repeat(now_ns, now_ns - due_ns, repeat, due_ns)
        if not records:
            return _NO_ACTIONS
        runtime.repeat = None
        return [Append(record=record) for record in records]

    def _carry_out(self, runtime: InstanceRuntime, effect: Effect) -> list[Action]:
        settings = runtime.settings
        if isinstance(effect, SendAdvertisement):
            runtime.counters["adverts_sent"] += 1
            return list(self._sends(runtime, effect))
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

    def _sends(self, runtime: InstanceRuntime, effect: SendAdvertisement) -> tuple[Send, ...]:
        """The `Send`s of an advertisement: built on first use for its (priority, interval), then reused."""
        key = (effect.priority, effect.interval_cs)
        sends = runtime.sends.get(key)
        if sends is None:
            if len(runtime.sends) >= _SEND_CACHE_LIMIT:
                runtime.sends.clear()
            sends = runtime.sends[key] = self._build_sends(runtime, effect)
        return sends

    @staticmethod
    def _build_sends(runtime: InstanceRuntime, effect: SendAdvertisement) -> tuple[Send, ...]:
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
        return tuple(
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
        )
