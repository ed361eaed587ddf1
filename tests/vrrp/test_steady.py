"""The fast paths change nothing: a node with them and one without, fed the same inputs, agree on every action,
every state, every deadline and every record (and the records replay with no divergence)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from ffo.config import InstanceSettings
from ffo.vrrp import machine
from ffo.vrrp.inputs import AdvertisementReceived, Started, TimerExpired
from ffo.vrrp.node import Action, Append, VrrpNode
from ffo.vrrp.packet import Advertisement, Family
from ffo.vrrp.record import PeriodicRun, Recorder, Step, VrrpRecord
from ffo.vrrp.replay import replay
from ffo.vrrp.state import InstanceConfig, InstanceState, Role
from ffo.vrrp.steady import AdverTimerRepeat, AdvertisementRepeat, recognise

MS = 1_000_000
S = 1_000_000_000
ME = ipaddress.IPv4Address("192.0.2.11")
PEERS = (ipaddress.IPv4Address("192.0.2.5"), ipaddress.IPv4Address("192.0.2.12"), ME)  # lower, higher, our own
INSTANCES = (
    InstanceSettings(
        name="fast", interface="eth0", vrid=1, priority=100, vips=(ipaddress.IPv4Address("198.51.100.1"),),
        advert_interval_cs=1,
    ),
    InstanceSettings(
        name="calm", interface="eth0", vrid=2, priority=200, vips=(ipaddress.IPv4Address("198.51.100.2"),),
        advert_interval_cs=5, preempt=False,
    ),
    InstanceSettings(
        name="old", interface="eth0", vrid=3, priority=150, vips=(ipaddress.IPv4Address("198.51.100.3"),),
        version=2, advert_interval_cs=100,
    ),
)  # fmt: skip
LATENESS_NS = (0, 40_000, 700_000, 3 * MS)


@attrs.define
class Pair:
    """The same node twice: with the fast paths (`fast`) and without (`slow`, every step through the machine)."""

    instances: tuple[InstanceSettings, ...] = INSTANCES
    run_flush_ns: int = 40 * MS
    now: int = 0
    records: list[VrrpRecord] = attrs.field(factory=list)
    fast: VrrpNode = attrs.field(init=False)
    slow: VrrpNode = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        primaries = {("eth0", Family.IPV4): ME}
        self.fast = VrrpNode(self.instances, primaries, run_flush_ns=self.run_flush_ns)
        self.slow = VrrpNode(self.instances, primaries, run_flush_ns=self.run_flush_ns, fast_paths=False)

    def both(self, call: str, *args: object) -> list[Action]:
        fast = getattr(self.fast, call)(*args)
        slow = getattr(self.slow, call)(*args)
        assert fast == slow, f"{call}{args}"
        assert self.fast.next_deadline() == self.slow.next_deadline()
        self.records += [action.record for action in fast if isinstance(action, Append)]
        return list(fast)

    def advance(self, by_ns: int, lateness_ns: int) -> None:
        """Let `by_ns` pass, firing every timer that falls due, `lateness_ns` late (as a busy actor would)."""
        end = self.now + by_ns
        while (deadline := self.fast.next_deadline()) is not None and deadline + lateness_ns <= end:
            self.now = max(self.now, deadline + lateness_ns)
            self.both("timers_due", self.now)
        self.now = end

    def hear(self, vrid: int, source: ipaddress.IPv4Address, priority: int, interval_cs: int) -> None:
        settings = self.instances[vrid - 1]
        if settings.version == 2:
            interval_cs = max(100, interval_cs - interval_cs % 100)
        advert = Advertisement(
            version=settings.version, vrid=vrid, priority=priority, interval_cs=interval_cs, addresses=settings.vips
        )
        self.both("received", "eth0", Family.IPV4, source, advert, self.now)

    def check_states(self) -> None:
        for name, runtime in self.fast.instances.items():
            other = self.slow.instances[name]
            assert runtime.state == other.state, name
            assert runtime.counters == other.counters, name
            assert runtime.lateness.snapshot() == other.lateness.snapshot(), name

    def finish(self) -> None:
        self.check_states()
        self.both("shutdown", self.now)
        result = replay((f"vrrp:{i}", record) for i, record in enumerate(self.records, 1))
        assert result.divergences == ()


@attrs.frozen
class Hear:
    """The same advertisement `times` times, `gap_ns` apart: what the backup fast path serves."""

    vrid: int
    source: ipaddress.IPv4Address
    priority: int
    interval_cs: int
    times: int
    gap_ns: int


@attrs.frozen
class Wait:
    by_ns: int
    lateness_ns: int


@attrs.frozen
class Priority:
    instance: str
    priority: int


@attrs.frozen
class Link:
    up: bool


@attrs.frozen
class Flush:
    pass


@attrs.frozen
class Check:
    """Compare the states (reading them applies the pending fast step: done only now and then)."""


Operation = Hear | Wait | Priority | Link | Flush | Check
operations = st.lists(
    st.one_of(
        st.builds(
            Hear,
            st.sampled_from([1, 2, 3]),
            st.sampled_from(PEERS),
            st.sampled_from([0, 50, 100, 150, 200, 255]),
            st.sampled_from([1, 5, 100, 200]),
            st.integers(1, 12),
            st.integers(0, 30 * MS),
        ),
        st.builds(Wait, st.integers(0, S), st.sampled_from(LATENESS_NS)),
        st.builds(Priority, st.sampled_from(["fast", "calm", "old"]), st.integers(1, 254)),
        st.builds(Link, st.booleans()),
        st.builds(Flush),
        st.builds(Check),
    ),
    max_size=40,
)


def apply(pair: Pair, operation: Operation) -> None:
    if isinstance(operation, Hear):
        for _ in range(operation.times):
            pair.advance(operation.gap_ns, 0)
            pair.hear(operation.vrid, operation.source, operation.priority, operation.interval_cs)
    elif isinstance(operation, Wait):
        pair.advance(operation.by_ns, operation.lateness_ns)
    elif isinstance(operation, Priority):
        pair.both("priority_changed", operation.instance, operation.priority, "test", pair.now)
    elif isinstance(operation, Link):
        pair.both("interface_changed", "eth0", operation.up, pair.now)
    elif isinstance(operation, Flush):
        pair.both("flush", pair.now)
    else:
        pair.check_states()


@settings(max_examples=300, deadline=None)
@given(operations)
def test_random_inputs_give_the_same_actions_states_and_records_with_and_without_fast_paths(
    ops: Sequence[Operation],
) -> None:
    pair = Pair()
    pair.both("start", 0)
    pair.advance(400 * MS, 40_000)  # masters with nobody to hear: steady from here, the fast path's case
    for operation in ops:
        apply(pair, operation)
    pair.finish()


def test_a_steady_master_and_backup_take_the_fast_path_and_write_the_same_runs() -> None:
    """Two routers elected for a while: almost every step is fast, and the logs are those of the machine."""
    master = Pair(instances=INSTANCES[:1], run_flush_ns=2 * S)
    master.both("start", 0)
    master.advance(5 * S, 40_000)
    backup = Pair(instances=INSTANCES[:1], run_flush_ns=2 * S)
    backup.both("start", 0)
    for _ in range(500):
        backup.advance(10 * MS, 0)
        backup.hear(1, PEERS[1], 200, 1)
    assert master.fast.instances["fast"].state.role is Role.MASTER
    assert backup.fast.instances["fast"].state.role is Role.BACKUP
    assert backup.fast.instances["fast"].counters["adverts_received"] == 500
    for pair in (master, backup):
        assert pair.fast.fast_steps >= 480
        assert pair.slow.fast_steps == 0
        pair.finish()
        runs = [record for record in pair.records if isinstance(record, PeriodicRun)]
        assert len(runs) >= 2  # flushed every 2 s: the records of fast steps are built when written


def test_another_input_leaves_the_fast_path_and_the_machine_decides() -> None:
    """A steady backup hears a better router: the step goes to the machine (here: nothing changes role, but
    the master's address changes what the backup records)."""
    pair = Pair(instances=INSTANCES[:1])
    pair.both("start", 0)
    for _ in range(5):
        pair.advance(10 * MS, 0)
        pair.hear(1, PEERS[1], 200, 1)
    fast_before = pair.fast.fast_steps
    pair.advance(10 * MS, 0)
    pair.hear(1, PEERS[0], 250, 1)
    assert pair.fast.fast_steps == fast_before
    assert pair.fast.instances["fast"].state.last_heard.source == PEERS[0]  # type: ignore[union-attr]
    pair.advance(10 * MS, 0)
    pair.hear(1, PEERS[0], 0, 1)  # priority 0: Skew_Time, never a repeat
    pair.advance(10 * MS, 0)
    pair.hear(1, PEERS[0], 0, 1)
    assert pair.fast.fast_steps == fast_before
    pair.finish()


CONFIG = InstanceConfig(name="web", vrid=1, family=Family.IPV4, priority=100, primary_address=ME, vips=(ME + 89,))


def test_recognise_only_the_two_steady_steps_and_only_when_computed_exactly() -> None:
    started, effects = machine.step(InstanceState.initial(CONFIG), Started(), 0)
    assert recognise(InstanceState.initial(CONFIG), Started(), 0, started, effects) is None
    advert = Advertisement(version=3, vrid=1, priority=200, interval_cs=100, addresses=CONFIG.vips)
    event = AdvertisementReceived(source=PEERS[1], advertisement=advert)
    after, effects = machine.step(started, event, S)
    repeat = recognise(started, event, S, after, effects)
    assert isinstance(repeat, AdvertisementRepeat)
    assert repeat.state_at(after, 2 * S) == machine.step(after, event, 2 * S)[0]
    for tampered in (attrs.evolve(after, priority=99), attrs.evolve(after, down_armed=started.down_armed)):
        assert recognise(started, event, S, tampered, effects) is None  # not what the repeat computes
    owner = attrs.evolve(CONFIG, priority=255)
    master, effects = machine.step(InstanceState.initial(owner), Started(), 0)
    timer = TimerExpired(timer=machine.due_timer(master).timer, deadline_ns=S, fired_ns=S + 5)  # type: ignore[union-attr]
    after, effects = machine.step(master, timer, S + 5)
    assert isinstance(recognise(master, timer, S + 5, after, effects), AdverTimerRepeat)


@attrs.define
class CountingSource:
    """A step source that says when it is asked to build a step."""

    repeat: AdvertisementRepeat
    built: list[int] = attrs.field(factory=list)

    def step_at(self, now_ns: int, due_ns: int) -> Step:
        self.built.append(now_ns)
        return self.repeat.step_at(now_ns, due_ns)


def test_a_repeat_counts_in_the_run_and_builds_its_last_step_only_when_written() -> None:
    recorder = Recorder(instance="web", run_flush_ns=10 * S)
    state = InstanceState.initial(CONFIG)
    started, effects = machine.step(state, Started(), 0)
    recorder.observe(state, Started(), 0, started, effects)
    advert = Advertisement(version=3, vrid=1, priority=200, interval_cs=100, addresses=CONFIG.vips)
    event = AdvertisementReceived(source=PEERS[1], advertisement=advert)
    after, effects = machine.step(started, event, S)
    recorder.observe(started, event, S, after, effects)
    repeat = recognise(started, event, S, after, effects)
    assert isinstance(repeat, AdvertisementRepeat)
    source = CountingSource(repeat)
    for k in range(2, 6):
        assert not recorder.repeat(k * S, 0, source, k * S)
    assert source.built == []
    (run,) = recorder.close()
    assert isinstance(run, PeriodicRun)
    assert (run.count, run.last) == (5, repeat.step_at(5 * S, 5 * S))
    assert source.built == [5 * S]


def test_a_repeat_writes_the_run_when_it_has_been_open_long_enough() -> None:
    recorder = Recorder(instance="web", run_flush_ns=3 * S)
    state = InstanceState.initial(CONFIG)
    started, effects = machine.step(state, Started(), 0)
    recorder.observe(state, Started(), 0, started, effects)
    advert = Advertisement(version=3, vrid=1, priority=200, interval_cs=100, addresses=CONFIG.vips)
    event = AdvertisementReceived(source=PEERS[1], advertisement=advert)
    after, effects = machine.step(started, event, S)
    recorder.observe(started, event, S, after, effects)
    repeat = recognise(started, event, S, after, effects)
    assert isinstance(repeat, AdvertisementRepeat)
    assert not recorder.repeat(2 * S, 0, repeat, 2 * S)
    (run,) = recorder.repeat(4 * S, 0, repeat, 4 * S)
    assert isinstance(run, PeriodicRun) and (run.count, run.first.now_ns, run.last.now_ns) == (3, S, 4 * S)
    assert not recorder.run_open
