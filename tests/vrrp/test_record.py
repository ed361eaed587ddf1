"""The VRRP recorder: what is written, what is coalesced, and that the records survive the wire form."""

from __future__ import annotations

import ipaddress

import attrs
import msgpack  # type: ignore[import-untyped, unused-ignore]
import pytest

from ffo.bus.convert import structure, unstructure
from ffo.vrrp import machine
from ffo.vrrp.effects import Effect
from ffo.vrrp.inputs import AdvertisementReceived, Input, ShutdownRequested, Started, TimerExpired
from ffo.vrrp.packet import Advertisement, Family
from ffo.vrrp.record import (
    InputApplied,
    InstanceConfigured,
    PeriodicRun,
    Recorder,
    TransitionMade,
    VrrpRecord,
)
from ffo.vrrp.replay import replay
from ffo.vrrp.state import InstanceConfig, InstanceState, Role, TimerKind

S = 1_000_000_000
ME = ipaddress.IPv4Address("192.0.2.12")
PEER = ipaddress.IPv4Address("192.0.2.13")
VIP = ipaddress.IPv4Address("192.0.2.100")
CONFIG = InstanceConfig(name="web", vrid=51, family=Family.IPV4, priority=100, primary_address=ME, vips=(VIP,))


def heard(priority: int = 200, vrid: int = 51) -> AdvertisementReceived:
    advert = Advertisement(version=3, vrid=vrid, priority=priority, interval_cs=100, addresses=(VIP,))
    return AdvertisementReceived(source=PEER, advertisement=advert)


@attrs.define
class Node:
    """A machine with its recorder, as the VRRP actor drives them."""

    recorder: Recorder = attrs.field(factory=lambda: Recorder(instance="web"))
    state: InstanceState = attrs.field(factory=lambda: InstanceState.initial(CONFIG))
    records: list[VrrpRecord] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.records += self.recorder.configured(CONFIG)

    def feed(self, event: Input, now: int) -> tuple[Effect, ...]:
        before = self.state
        self.state, effects = machine.step(before, event, now)
        self.records += self.recorder.observe(before, event, now, self.state, effects)
        return effects

    def fire(self) -> None:
        due = machine.due_timer(self.state)
        assert due is not None
        self.feed(due, due.deadline_ns)

    def close(self) -> list[VrrpRecord]:
        self.records += self.recorder.close()
        return self.records

    def replayed(self) -> int:
        result = replay((f"vrrp:{i}", record) for i, record in enumerate(self.records, 1))
        assert result.divergences == ()
        return result.events


def test_a_backup_hearing_its_master_writes_one_run() -> None:
    node = Node()
    node.feed(Started(), 0)
    for k in range(1, 51):
        node.feed(heard(), k * S)
    records = node.close()
    assert [type(r) for r in records] == [InstanceConfigured, TransitionMade, PeriodicRun]
    run = records[2]
    assert isinstance(run, PeriodicRun)
    assert (run.count, run.first.now_ns, run.last.now_ns) == (50, 1 * S, 50 * S)
    assert node.replayed() == 3


def test_a_master_writes_its_adver_timer_as_a_run_with_the_worst_lateness() -> None:
    node = Node()
    node.feed(Started(), 0)
    node.fire()  # no master heard: become Master
    assert node.state.role is Role.MASTER
    for lateness in (10_000, 250_000, 30_000):
        deadline = node.state.adver_deadline_ns
        assert deadline is not None
        node.feed(
            TimerExpired(timer=TimerKind.ADVER, deadline_ns=deadline, fired_ns=deadline + lateness), deadline + lateness
        )
    records = node.close()
    run = records[-1]
    assert isinstance(run, PeriodicRun)
    assert (run.count, run.max_lateness_ns) == (3, 250_000)
    assert node.replayed() == len(records)


def test_a_different_advertisement_ends_the_run_and_a_transition_is_written_at_once() -> None:
    node = Node()
    node.feed(Started(), 0)
    for k in range(1, 4):
        node.feed(heard(), k * S)
    count = len(node.records)
    node.feed(heard(priority=0), 4 * S)  # the master leaves: a different step
    assert len(node.records) == count + 1  # the run of three, closed
    node.fire()  # Skew_Time later: Master
    assert isinstance(node.records[-1], TransitionMade)
    node.close()
    assert node.replayed() == len(node.records)


def test_steps_that_change_nothing_are_not_written() -> None:
    node = Node()
    node.feed(Started(), 0)
    written = len(node.records)
    node.feed(heard(vrid=52), S)  # another VRID: dropped, nothing changes
    node.feed(TimerExpired(timer=TimerKind.ADVER, deadline_ns=5, fired_ns=5), S)  # stale
    assert len(node.records) == written


def test_a_long_run_is_flushed_so_a_crash_loses_at_most_the_flush_interval() -> None:
    node = Node(recorder=Recorder(instance="web", run_flush_ns=10 * S))
    node.feed(Started(), 0)
    for k in range(1, 36):
        node.feed(heard(), k * S)
    runs = [r for r in node.records if isinstance(r, PeriodicRun)]
    assert [run.count for run in runs] == [11, 11, 11]  # 1..11 s, 12..22 s, 23..33 s; 34..35 s still open
    node.recorder.discard()  # the crash
    assert node.replayed() == len(node.records)


def test_a_shutdown_is_a_transition_with_its_goodbye() -> None:
    node = Node()
    node.feed(Started(), 0)
    node.fire()
    node.feed(ShutdownRequested(), 2 * S)
    last = node.records[-1]
    assert isinstance(last, TransitionMade)
    assert last.transition.to_role is Role.INITIALIZE


@pytest.mark.parametrize("record_type", [InstanceConfigured, TransitionMade, InputApplied, PeriodicRun])
def test_every_record_type_survives_msgpack(record_type: type) -> None:
    node = Node()
    node.feed(Started(), 0)
    node.fire()
    for _ in range(3):
        node.fire()
    node.feed(heard(priority=50), 10 * S)  # a worse master: answered at once (an input record)
    node.fire()
    node.fire()
    samples = [r for r in node.close() if type(r) is record_type]
    assert samples, f"no {record_type.__name__} produced"
    for record in samples:
        wire = msgpack.packb(unstructure(record), use_bin_type=True)
        assert structure(msgpack.unpackb(wire, raw=False), record_type) == record
