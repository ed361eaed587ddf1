"""Seeded failure schedules for the simulated cluster: who runs, and what goes wrong when.

A `Scenario` is plain data generated from a seed, so a failing seed can be rerun, printed and shrunk (actions
removed one by one) without any hidden state.
"""

from __future__ import annotations

import enum
import ipaddress
import random

import attrs

from ffo.vrrp import timers
from ffo.vrrp.packet import IPAddress


class ActionKind(enum.Enum):
    CRASH = "crash"  # the daemon dies: no goodbye, its VIPs go with it
    RESTART = "restart"  # a crashed daemon starts again
    SHUTDOWN = "shutdown"  # graceful stop: priority-0 advertisement
    START = "start"  # a stopped daemon starts again
    LINK_DOWN = "link_down"  # the node's link is cut (carrier loss)
    LINK_UP = "link_up"
    PARTITION = "partition"  # the LAN splits into two groups
    HEAL = "heal"
    LOSS_START = "loss_start"  # packets are lost at random from now on
    LOSS_END = "loss_end"
    PRIORITY = "priority"  # a tracker changes a node's priority


@attrs.frozen(kw_only=True)
class Action:
    at_ns: int
    kind: ActionKind
    node: int | None = None
    group: tuple[int, ...] = ()  # PARTITION: the nodes on one side
    priority: int | None = None  # PRIORITY: the new priority
    loss: float = 0.0  # LOSS_START: probability that a packet is lost


@attrs.frozen(kw_only=True)
class NodeSpec:
    name: str
    address: IPAddress
    priority: int


@attrs.frozen(kw_only=True)
class Scenario:
    seed: int
    nodes: tuple[NodeSpec, ...]
    vrid: int = 51
    interval_cs: int = 100
    preempt: bool = True
    duration_ns: int
    delay_min_ns: int
    delay_max_ns: int
    duplicate_probability: float = 0.0
    actions: tuple[Action, ...] = ()

    @property
    def interval_ns(self) -> int:
        return timers.cs_to_ns(self.interval_cs)


PRIORITIES = (50, 100, 100, 150, 200, 254)


def node_specs(priorities: list[int]) -> tuple[NodeSpec, ...]:
    return tuple(
        NodeSpec(name=f"n{i + 1}", address=ipaddress.IPv4Address(f"192.0.2.{11 + i}"), priority=priority)
        for i, priority in enumerate(priorities)
    )


def generate(seed: int, *, nodes: int, interval_cs: int, duration_ns: int) -> Scenario:
    """A random but valid schedule: actions only ever apply to nodes in a state where they make sense."""
    rng = random.Random(seed)
    priorities = [rng.choice(PRIORITIES) for _ in range(nodes)]
    if rng.random() < 0.1:
        priorities[rng.randrange(nodes)] = 255
    interval_ns = timers.cs_to_ns(interval_cs)
    # Delays stay below Skew_Time's step (interval/256) so that the ordering checks are meaningful.
    delay_max = max(1, interval_ns // 1000)
    builder = _ScheduleBuilder(rng, nodes, interval_ns, duration_ns)
    return Scenario(
        seed=seed,
        nodes=node_specs(priorities),
        interval_cs=interval_cs,
        preempt=rng.random() < 0.7,
        duration_ns=duration_ns,
        delay_min_ns=delay_max // 10,
        delay_max_ns=delay_max,
        duplicate_probability=rng.choice((0.0, 0.0, 0.05)),
        actions=builder.build(rng.randint(1, 8)),
    )


@attrs.define
class _ScheduleBuilder:
    rng: random.Random
    nodes: int
    interval_ns: int
    duration_ns: int
    running: set[int] = attrs.field(factory=set)
    crashed: set[int] = attrs.field(factory=set)
    links_down: set[int] = attrs.field(factory=set)
    partitioned: bool = False
    lossy: bool = False

    def build(self, count: int) -> tuple[Action, ...]:
        self.running = set(range(self.nodes))
        last = self.duration_ns - 6 * self.interval_ns
        times = sorted(
            self.rng.randrange(5 * self.interval_ns, max(last, 5 * self.interval_ns + 1)) for _ in range(count)
        )
        return tuple(action for at in times if (action := self._one(at)) is not None)

    def _one(self, at: int) -> Action | None:
        choices = self._choices()
        if not choices:
            return None
        kind = self.rng.choice(choices)
        node: int | None = None
        if kind in (ActionKind.CRASH, ActionKind.SHUTDOWN, ActionKind.LINK_DOWN, ActionKind.PRIORITY):
            node = self.rng.choice(sorted(self.running - self.links_down))
        elif kind is ActionKind.RESTART:
            node = self.rng.choice(sorted(self.crashed))
        elif kind is ActionKind.START:
            node = self.rng.choice(sorted(set(range(self.nodes)) - self.running - self.crashed))
        elif kind is ActionKind.LINK_UP:
            node = self.rng.choice(sorted(self.links_down))
        self._apply(kind, node)
        if kind is ActionKind.PARTITION:
            size = self.rng.randint(1, self.nodes - 1)
            return Action(at_ns=at, kind=kind, group=tuple(sorted(self.rng.sample(range(self.nodes), size))))
        if kind is ActionKind.LOSS_START:
            return Action(at_ns=at, kind=kind, loss=self.rng.choice((0.1, 0.3, 0.6)))
        if kind is ActionKind.PRIORITY:
            return Action(at_ns=at, kind=kind, node=node, priority=self.rng.choice((60, 120, 180, 240)))
        return Action(at_ns=at, kind=kind, node=node)

    def _choices(self) -> list[ActionKind]:
        up = self.running - self.links_down
        stopped = set(range(self.nodes)) - self.running - self.crashed
        candidates = [
            (ActionKind.CRASH, bool(up)),
            (ActionKind.SHUTDOWN, bool(up)),
            (ActionKind.LINK_DOWN, bool(up)),
            (ActionKind.PRIORITY, bool(up)),
            (ActionKind.RESTART, bool(self.crashed)),
            (ActionKind.START, bool(stopped)),
            (ActionKind.LINK_UP, bool(self.links_down)),
            (ActionKind.PARTITION, not self.partitioned and self.nodes > 1),
            (ActionKind.HEAL, self.partitioned),
            (ActionKind.LOSS_START, not self.lossy),
            (ActionKind.LOSS_END, self.lossy),
        ]
        return [kind for kind, possible in candidates if possible]

    def _apply(self, kind: ActionKind, node: int | None) -> None:
        if kind is ActionKind.CRASH and node is not None:
            self.running.discard(node)
            self.crashed.add(node)
        elif kind is ActionKind.SHUTDOWN and node is not None:
            self.running.discard(node)
        elif kind is ActionKind.RESTART and node is not None:
            self.crashed.discard(node)
            self.running.add(node)
        elif kind is ActionKind.START and node is not None:
            self.running.add(node)
        elif kind is ActionKind.LINK_DOWN and node is not None:
            self.links_down.add(node)
        elif kind is ActionKind.LINK_UP and node is not None:
            self.links_down.discard(node)
        elif kind in (ActionKind.PARTITION, ActionKind.HEAL):
            self.partitioned = kind is ActionKind.PARTITION
        elif kind in (ActionKind.LOSS_START, ActionKind.LOSS_END):
            self.lossy = kind is ActionKind.LOSS_START
