"""N virtual routers on a simulated LAN with a simulated clock: the machine under thousands of schedules.

Discrete-event simulation: a heap of (time, sequence, event). Time jumps from one event to the next, so a
60-second schedule runs in milliseconds. Every random choice (delay, loss, duplication, boot jitter) comes
from one `random.Random(seed)`, so a seed replays exactly.
"""

from __future__ import annotations

import enum
import heapq
import ipaddress
import random
from collections import Counter
from collections.abc import Callable
from typing import cast

import attrs

from ffo.sim.journal import Journal
from ffo.sim.schedule import Action, ActionKind, NodeSpec, Scenario
from ffo.vrrp import machine
from ffo.vrrp.cause import render
from ffo.vrrp.effects import (
    AcquireVips,
    AnnounceVips,
    Dropped,
    Effect,
    ReleaseVips,
    SendAdvertisement,
    SetTimer,
    Transitioned,
)
from ffo.vrrp.inputs import (
    AdvertisementReceived,
    Input,
    InterfaceChanged,
    PriorityChanged,
    ShutdownRequested,
    Started,
    TimerExpired,
)
from ffo.vrrp.packet import Advertisement, Family, IPAddress
from ffo.vrrp.record import Step as RecordedStep
from ffo.vrrp.state import InstanceConfig, InstanceState, Role

Step = Callable[[InstanceState, Input, int], tuple[InstanceState, tuple[Effect, ...]]]


class EventKind(enum.IntEnum):
    ACTION = 0
    TIMER = 1
    DELIVER = 2
    CHECK = 3


@attrs.frozen(kw_only=True)
class TraceEntry:
    at_ns: int
    text: str


@attrs.frozen(kw_only=True)
class Violation:
    kind: str
    at_ns: int
    message: str


@attrs.define
class SimNode:
    index: int
    spec: NodeSpec
    config: InstanceConfig
    state: InstanceState | None = None
    incarnation: int = 0
    link_up: bool = True
    holds_vips: bool = False
    last_sent_ns: int | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def role(self) -> Role | None:
        return self.state.role if self.state is not None else None

    @property
    def priority(self) -> int:
        return self.state.priority if self.state is not None else self.spec.priority

    @property
    def running(self) -> bool:
        """Started and able to talk: the nodes that take part in an election."""
        return self.state is not None and self.state.started and self.link_up


class Observer:
    """Hooks for the invariant checker; the default observes nothing."""

    def on_action(self, cluster: Cluster, now: int, action: Action) -> None:
        """Called before an action is applied."""

    def on_transition(self, cluster: Cluster, now: int, node: SimNode, change: Transitioned) -> None:
        """Called for every transition, as the machine reports it."""

    def on_check(self, cluster: Cluster, now: int) -> None:
        """Called at times the observer asked for with `Cluster.schedule_check`."""

    def after_step(self, cluster: Cluster, now: int, node: SimNode) -> None:
        """Called after a node's effects have been carried out."""


class ViolationFoundError(Exception):
    """Raised by an observer to end the run at the first violation."""

    def __init__(self, violation: Violation) -> None:
        super().__init__(violation.message)
        self.violation = violation


@attrs.define
class Cluster:
    scenario: Scenario
    step: Step = machine.step
    observer: Observer = attrs.field(factory=Observer)
    # Also trace VIP moves and announcements (the demo shows them; shrunk failure traces stay short).
    trace_vips: bool = False
    # Records what each node's VRRP actor would append to its event stream (None: nothing is recorded).
    journal: Journal | None = None
    nodes: list[SimNode] = attrs.field(init=False)
    rng: random.Random = attrs.field(init=False)
    side: list[int] = attrs.field(init=False)
    loss: float = 0.0
    now: int = 0
    trace: list[TraceEntry] = attrs.field(factory=list)
    drops: Counter[str] = attrs.field(factory=Counter)
    packets: int = 0
    _queue: list[tuple[int, int, EventKind, object]] = attrs.field(factory=list)
    _sequence: int = 0
    _last_arrival: dict[tuple[int, int], int] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        self.rng = random.Random(self.scenario.seed ^ 0x5EED)
        self.side = [0] * len(self.scenario.nodes)
        self.nodes = [
            SimNode(index=i, spec=spec, config=self._config(spec)) for i, spec in enumerate(self.scenario.nodes)
        ]

    def _config(self, spec: NodeSpec) -> InstanceConfig:
        return InstanceConfig(
            name="vi",
            vrid=self.scenario.vrid,
            family=Family.IPV4,
            priority=spec.priority,
            advert_interval_cs=self.scenario.interval_cs,
            preempt=self.scenario.preempt,
            primary_address=spec.address,
            vips=(_VIP,),
        )

    # --- running ---

    def run(self) -> Violation | None:
        jitter = max(1, self.scenario.interval_ns // 10)
        for node in self.nodes:
            self._push(
                self.rng.randrange(jitter),
                EventKind.ACTION,
                Action(at_ns=0, kind=ActionKind.START, node=node.index),
            )
        for action in self.scenario.actions:
            self._push(action.at_ns, EventKind.ACTION, action)
        try:
            while self._queue:
                at, _, kind, payload = heapq.heappop(self._queue)
                if at > self.scenario.duration_ns:
                    break
                self.now = at
                self._dispatch(kind, payload)
            self.now = self.scenario.duration_ns
            self.observer.on_check(self, self.now)
            if self.journal is not None:
                self.journal.finished(self.now)
        except ViolationFoundError as stop:
            self.trace.append(TraceEntry(at_ns=stop.violation.at_ns, text=f"VIOLATION {stop.violation.message}"))
            return stop.violation
        return None

    def schedule_check(self, at_ns: int) -> None:
        self._push(at_ns, EventKind.CHECK, None)

    def _push(self, at_ns: int, kind: EventKind, payload: object) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (at_ns, self._sequence, kind, payload))

    def _dispatch(self, kind: EventKind, payload: object) -> None:
        if kind is EventKind.ACTION:
            assert isinstance(payload, Action)
            self._act(payload)
        elif kind is EventKind.TIMER:
            index, incarnation, expired = cast(tuple[int, int, TimerExpired], payload)
            node = self.nodes[index]
            if node.incarnation == incarnation and node.state is not None:
                self.feed(node, expired)
        elif kind is EventKind.DELIVER:
            index, source, advert = cast(tuple[int, IPAddress, Advertisement], payload)
            node = self.nodes[index]
            if node.state is not None and node.link_up:
                self.feed(node, AdvertisementReceived(source=source, advertisement=advert))
        else:
            self.observer.on_check(self, self.now)

    def feed(self, node: SimNode, event: Input) -> None:
        assert node.state is not None
        before = node.state
        node.state, effects = self.step(before, event, self.now)
        if self.journal is not None:
            self.journal.stepped(
                node.name, before, node.state, RecordedStep(now_ns=self.now, input=event, effects=effects)
            )
        for effect in effects:
            self._carry_out(node, effect)
        self.observer.after_step(self, self.now, node)

    def _carry_out(self, node: SimNode, effect: Effect) -> None:
        if isinstance(effect, Transitioned):
            self.trace.append(
                TraceEntry(
                    at_ns=self.now,
                    text=f"{node.name} {effect.from_role.value} -> {effect.to_role.value}: {render(effect.cause)}",
                )
            )
            self.observer.on_transition(self, self.now, node, effect)
        elif isinstance(effect, SendAdvertisement):
            self._send(node, effect)
        elif isinstance(effect, SetTimer):
            expired = TimerExpired(timer=effect.timer, deadline_ns=effect.deadline_ns, fired_ns=effect.deadline_ns)
            self._push(effect.deadline_ns, EventKind.TIMER, (node.index, node.incarnation, expired))
        elif isinstance(effect, AcquireVips | ReleaseVips | AnnounceVips):
            self._vips(node, effect)
        elif isinstance(effect, Dropped):
            self.drops[effect.reason.value] += 1

    def _vips(self, node: SimNode, effect: AcquireVips | ReleaseVips | AnnounceVips) -> None:
        if not isinstance(effect, AnnounceVips):
            node.holds_vips = isinstance(effect, AcquireVips)
        if self.trace_vips:
            verb = {AcquireVips: "adds", ReleaseVips: "removes", AnnounceVips: "announces"}[type(effect)]
            vips = ", ".join(str(vip) for vip in effect.vips)
            self.trace.append(TraceEntry(at_ns=self.now, text=f"{node.name} {verb} {vips}"))

    def _send(self, sender: SimNode, effect: SendAdvertisement) -> None:
        if not sender.link_up:
            return
        sender.last_sent_ns = self.now
        advert = Advertisement(
            version=3,
            vrid=self.scenario.vrid,
            priority=effect.priority,
            interval_cs=effect.interval_cs,
            addresses=(_VIP,),
        )
        scenario = self.scenario
        for receiver in self.nodes:
            if receiver is sender or not self.connected(sender, receiver):
                continue
            copies = 2 if self.rng.random() < scenario.duplicate_probability else 1
            for _ in range(copies):
                if self.loss and self.rng.random() < self.loss:
                    continue
                # One link keeps its order, as an Ethernet segment does; packets of different senders interleave.
                link = (sender.index, receiver.index)
                delay = self.rng.randint(scenario.delay_min_ns, scenario.delay_max_ns)
                arrival = max(self.now + delay, self._last_arrival.get(link, 0) + 1)
                self._last_arrival[link] = arrival
                self.packets += 1
                self._push(arrival, EventKind.DELIVER, (receiver.index, sender.spec.address, advert))

    def connected(self, a: SimNode, b: SimNode) -> bool:
        return a.link_up and b.link_up and self.side[a.index] == self.side[b.index]

    # --- actions ---

    def _act(self, action: Action) -> None:
        self.observer.on_action(self, self.now, action)
        if action.kind not in (ActionKind.START,) or action.at_ns != 0:
            self.trace.append(TraceEntry(at_ns=self.now, text=_describe(action, self.scenario)))
        kind = action.kind
        node = self.nodes[action.node] if action.node is not None else None
        if kind is ActionKind.PARTITION:
            self.side = [1 if i in action.group else 0 for i in range(len(self.nodes))]
        elif kind is ActionKind.HEAL:
            self.side = [0] * len(self.nodes)
        elif kind is ActionKind.LOSS_START:
            self.loss = action.loss
        elif kind is ActionKind.LOSS_END:
            self.loss = 0.0
        elif node is not None:
            self._act_on_node(kind, node, action)

    def _act_on_node(self, kind: ActionKind, node: SimNode, action: Action) -> None:
        if kind is ActionKind.CRASH and node.state is not None:
            node.state = None
            node.incarnation += 1
            node.holds_vips = False  # the VIP actor releases what a dead VRRP actor held
            if self.journal is not None:
                self.journal.crashed(node.name)
        elif kind in (ActionKind.RESTART, ActionKind.START):
            if node.state is None:
                node.state = InstanceState.initial(node.config)
                if self.journal is not None:
                    self.journal.started(node.name, node.config, self.now)
                if not node.link_up:
                    self.feed(node, InterfaceChanged(up=False))
            self.feed(node, Started())
        elif node.state is None:
            return
        elif kind is ActionKind.SHUTDOWN:
            self.feed(node, ShutdownRequested())
        elif kind in (ActionKind.LINK_DOWN, ActionKind.LINK_UP):
            node.link_up = kind is ActionKind.LINK_UP
            self.feed(node, InterfaceChanged(up=node.link_up))
        elif kind is ActionKind.PRIORITY and action.priority is not None:
            self.feed(node, PriorityChanged(priority=action.priority, reason="simulated tracker"))


_VIP: IPAddress = ipaddress.IPv4Address("192.0.2.100")


def _describe(action: Action, scenario: Scenario) -> str:
    names = [spec.name for spec in scenario.nodes]
    subject = names[action.node] if action.node is not None else ""
    kind = action.kind
    if kind is ActionKind.PARTITION:
        other = [n for i, n in enumerate(names) if i not in action.group]
        return f"partition {{{','.join(names[i] for i in action.group)}}} | {{{','.join(other)}}}"
    if kind is ActionKind.LOSS_START:
        return f"packet loss {action.loss:.0%} starts"
    if kind is ActionKind.PRIORITY:
        return f"{subject} priority set to {action.priority}"
    return f"{subject} {kind.value}".strip()
