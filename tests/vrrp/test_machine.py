"""The state machine against RFC 9568 §6, one test per rule, plus totality and determinism (hypothesis)."""

from __future__ import annotations

import ipaddress

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ffo.vrrp import machine, timers
from ffo.vrrp.cause import CauseKind, render
from ffo.vrrp.effects import (
    AcquireVips,
    AnnounceVips,
    CancelTimer,
    Dropped,
    DropReason,
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
from ffo.vrrp.packet import Advertisement, Family
from ffo.vrrp.state import InstanceConfig, InstanceState, Role, TimerKind

S = 1_000_000_000
ME = ipaddress.IPv4Address("192.0.2.12")
LOWER = ipaddress.IPv4Address("192.0.2.11")
HIGHER = ipaddress.IPv4Address("192.0.2.13")
VIP = ipaddress.IPv4Address("192.0.2.100")


def config(**changes: object) -> InstanceConfig:
    base = InstanceConfig(name="vi", vrid=51, family=Family.IPV4, priority=100, primary_address=ME, vips=(VIP,))
    return attrs.evolve(base, **changes)


def advert(priority: int, *, interval_cs: int = 100, vrid: int = 51, version: int = 3) -> Advertisement:
    return Advertisement(version=version, vrid=vrid, priority=priority, interval_cs=interval_cs, addresses=(VIP,))


def received(source: ipaddress.IPv4Address, priority: int, **kw: int) -> AdvertisementReceived:
    return AdvertisementReceived(source=source, advertisement=advert(priority, **kw))


def run(state: InstanceState, *events: tuple[Input, int]) -> tuple[InstanceState, list[Effect]]:
    effects: list[Effect] = []
    for event, now in events:
        state, out = machine.step(state, event, now)
        effects += out
    return state, effects


def backup(**changes: object) -> InstanceState:
    state, _ = run(InstanceState.initial(config(**changes)), (Started(), 0))
    assert state.role is Role.BACKUP
    return state


def master(**changes: object) -> InstanceState:
    state = backup(**changes)
    deadline = state.down_deadline_ns
    assert deadline is not None
    state, _ = run(
        state, (TimerExpired(timer=TimerKind.MASTER_DOWN, deadline_ns=deadline, fired_ns=deadline), deadline)
    )
    assert state.role is Role.MASTER
    return state


def fire(state: InstanceState, timer: TimerKind, late_ns: int = 0) -> tuple[InstanceState, list[Effect]]:
    deadline = state.deadline_of(timer)
    assert deadline is not None
    return run(
        state,
        (TimerExpired(timer=timer, deadline_ns=deadline, fired_ns=deadline + late_ns), deadline + late_ns),
    )


def kinds(effects: list[Effect]) -> list[type[Effect]]:
    return [type(e) for e in effects]


# --- §6.1 parameters ---


@pytest.mark.parametrize(
    ("priority", "interval_cs", "skew_ns", "down_ns"),
    [
        (100, 100, 609_375_000, 3_609_375_000),  # worked example: 3.61 s at 1 s, priority 100
        (200, 100, 218_750_000, 3_218_750_000),  # exact, where FRR truncates to 210 ms
        (100, 10, 60_937_500, 360_937_500),  # 100 ms
        (100, 1, 6_093_750, 36_093_750),  # 10 ms
        (254, 100, 7_812_500, 3_007_812_500),
    ],
)
def test_skew_and_master_down_interval_rfc9568_6_1(priority: int, interval_cs: int, skew_ns: int, down_ns: int) -> None:
    assert timers.skew_time_ns(priority, interval_cs, 3) == skew_ns
    assert timers.master_down_interval_ns(priority, interval_cs, 3) == down_ns


def test_v2_skew_is_whole_seconds_rfc3768_6_1() -> None:
    assert timers.skew_time_ns(100, 300, 2) == 609_375_000
    assert timers.master_down_interval_ns(100, 300, 2) == 9 * S + 609_375_000


# --- §6.4.1 Initialize ---


def test_startup_non_owner_becomes_backup_with_down_timer_6_4_1() -> None:
    state, effects = run(InstanceState.initial(config()), (Started(), 5))
    assert state.role is Role.BACKUP
    assert state.master_adver_interval_cs == 100
    assert effects[0] == Transitioned(from_role=Role.INITIALIZE, to_role=Role.BACKUP, cause=effects[0].cause)  # type: ignore[union-attr]
    assert SetTimer(timer=TimerKind.MASTER_DOWN, deadline_ns=5 + 3_609_375_000) in effects
    assert not any(isinstance(e, SendAdvertisement | AcquireVips) for e in effects)


def test_startup_address_owner_becomes_master_at_once_6_4_1() -> None:
    state, effects = run(InstanceState.initial(config(priority=255)), (Started(), 7))
    assert state.role is Role.MASTER
    assert kinds(effects) == [Transitioned, SendAdvertisement, AcquireVips, AnnounceVips, SetTimer]
    assert effects[1] == SendAdvertisement(priority=255, interval_cs=100)
    assert effects[4] == SetTimer(timer=TimerKind.ADVER, deadline_ns=7 + S)
    assert isinstance(effects[0], Transitioned) and effects[0].cause.kind is CauseKind.STARTUP_ADDRESS_OWNER


def test_initialize_ignores_advertisements() -> None:
    state = InstanceState.initial(config())
    _, effects = run(state, (received(HIGHER, 200), 0))
    assert effects == [Dropped(reason=DropReason.NOT_RUNNING, detail="from 192.0.2.13")]


# --- §6.4.2 Backup ---


def test_backup_down_timer_makes_master_6_4_2() -> None:
    state = backup()
    state, effects = fire(state, TimerKind.MASTER_DOWN, late_ns=250_000)
    assert state.role is Role.MASTER
    assert kinds(effects) == [
        Transitioned,
        CancelTimer,
        SendAdvertisement,
        AcquireVips,
        AnnounceVips,
        SetTimer,
    ]
    cause = effects[0].cause  # type: ignore[union-attr]
    assert cause.kind is CauseKind.NO_MASTER_AT_STARTUP
    assert cause.fired_ns - cause.deadline_ns == 250_000


def test_backup_accepts_higher_or_equal_and_resets_timer_6_4_2() -> None:
    state = backup()
    for priority in (100, 150):
        state, effects = run(state, (received(LOWER, priority), 10 * S))
        assert effects == [SetTimer(timer=TimerKind.MASTER_DOWN, deadline_ns=10 * S + 3_609_375_000)]
        assert state.last_heard is not None and state.last_heard.source == LOWER


def test_equal_priority_backup_never_preempts_even_with_lower_address_6_4_2() -> None:
    state = backup()
    state, effects = run(state, (received(LOWER, 100), 10 * S))
    assert state.role is Role.BACKUP and kinds(effects) == [SetTimer]


def test_backup_learns_master_adver_interval_6_4_2() -> None:
    state = backup()
    state, effects = run(state, (received(HIGHER, 150, interval_cs=10), S))
    assert state.master_adver_interval_cs == 10
    assert effects == [SetTimer(timer=TimerKind.MASTER_DOWN, deadline_ns=S + 360_937_500)]


def test_backup_priority_zero_sets_skew_time_6_4_2() -> None:
    state = backup()
    state, _ = run(state, (received(HIGHER, 150), S))
    state, effects = run(state, (received(HIGHER, 0), 2 * S))
    assert effects == [SetTimer(timer=TimerKind.MASTER_DOWN, deadline_ns=2 * S + 609_375_000)]
    state, effects = fire(state, TimerKind.MASTER_DOWN)
    cause = effects[0].cause  # type: ignore[union-attr]
    assert cause.kind is CauseKind.MASTER_LEFT and cause.peer == HIGHER


def test_backup_with_preempt_discards_lower_priority_6_4_2() -> None:
    state = backup()
    deadline = state.down_deadline_ns
    state, effects = run(state, (received(HIGHER, 50), S))
    assert state.down_deadline_ns == deadline
    assert isinstance(effects[0], Dropped) and effects[0].reason is DropReason.LOWER_PRIORITY
    state, effects = fire(state, TimerKind.MASTER_DOWN)
    assert state.role is Role.MASTER
    assert effects[0].cause.kind is CauseKind.PREEMPTED  # type: ignore[union-attr]


def test_backup_without_preempt_accepts_lower_priority_6_4_2() -> None:
    state = backup(preempt=False)
    state, effects = run(state, (received(HIGHER, 50), S))
    assert kinds(effects) == [SetTimer]


def test_backup_shutdown_cancels_timer_6_4_2() -> None:
    state, effects = run(backup(), (ShutdownRequested(), S))
    assert state.role is Role.INITIALIZE and not state.started
    assert kinds(effects) == [Transitioned, CancelTimer]
    assert machine.next_deadline(state) is None


def test_master_down_cause_renders_a_sentence() -> None:
    state = backup()
    state, _ = run(state, (received(HIGHER, 150), S))
    state, effects = fire(state, TimerKind.MASTER_DOWN, late_ns=200_000)
    sentence = render(effects[0].cause)  # type: ignore[union-attr]
    assert sentence == (
        "no advertisement from 192.0.2.13 for 3.610 s ≥ Master_Down_Interval 3.609 s (timer fired 200 µs late)"
    )


# --- §6.4.3 Master (Active) ---


def test_master_adver_timer_sends_and_rearms_6_4_3() -> None:
    state = master()
    deadline = state.adver_deadline_ns
    assert deadline is not None
    state, effects = fire(state, TimerKind.ADVER)
    assert effects == [
        SendAdvertisement(priority=100, interval_cs=100),
        SetTimer(timer=TimerKind.ADVER, deadline_ns=deadline + S),
    ]


def test_master_shutdown_sends_priority_zero_and_releases_6_4_3() -> None:
    state, effects = run(master(), (ShutdownRequested(), 9 * S))
    assert state.role is Role.INITIALIZE
    assert kinds(effects) == [Transitioned, CancelTimer, SendAdvertisement, ReleaseVips]
    assert effects[2] == SendAdvertisement(priority=0, interval_cs=100)


def test_master_answers_priority_zero_with_advertisement_6_4_3() -> None:
    state, effects = run(master(), (received(HIGHER, 0), 9 * S))
    assert state.role is Role.MASTER
    assert kinds(effects) == [SendAdvertisement, SetTimer]


def test_master_yields_to_higher_priority_and_learns_interval_6_4_3() -> None:
    state, effects = run(master(), (received(LOWER, 150, interval_cs=50), 9 * S))
    assert state.role is Role.BACKUP and state.master_adver_interval_cs == 50
    assert kinds(effects) == [Transitioned, CancelTimer, ReleaseVips, SetTimer]
    assert effects[3] == SetTimer(
        timer=TimerKind.MASTER_DOWN, deadline_ns=9 * S + timers.master_down_interval_ns(100, 50, 3)
    )


def test_master_yields_on_equal_priority_from_higher_address_6_4_3() -> None:
    state, effects = run(master(), (received(HIGHER, 100), 9 * S))
    assert state.role is Role.BACKUP
    assert effects[0].cause.kind is CauseKind.EQUAL_PRIORITY_HIGHER_ADDRESS  # type: ignore[union-attr]


def test_master_keeps_role_on_equal_priority_from_lower_address_and_answers_6_4_3() -> None:
    state, effects = run(master(), (received(LOWER, 100), 9 * S))
    assert state.role is Role.MASTER
    assert kinds(effects) == [SendAdvertisement, SetTimer]


def test_master_answers_lower_priority_at_once_rfc9568_change_5() -> None:
    state, effects = run(master(), (received(HIGHER, 50), 9 * S))
    assert state.role is Role.MASTER
    assert effects == [
        SendAdvertisement(priority=100, interval_cs=100),
        SetTimer(timer=TimerKind.ADVER, deadline_ns=10 * S),
    ]


def test_higher_priority_master_displaces_even_without_preempt_6_4_3() -> None:
    state, _ = run(master(preempt=False), (received(HIGHER, 200), 9 * S))
    assert state.role is Role.BACKUP


def test_accept_mode_is_carried_to_the_vips() -> None:
    state = backup(accept=False)
    _, effects = fire(state, TimerKind.MASTER_DOWN)
    assert AcquireVips(vips=(VIP,), accept=False) in effects
    _, effects = run(InstanceState.initial(config(priority=255, accept=False)), (Started(), 0))
    assert AcquireVips(vips=(VIP,), accept=True) in effects  # the owner always accepts (§6.4.3)


# --- semantic checks (§7.1) ---


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (received(HIGHER, 150, vrid=52), DropReason.WRONG_VRID),
        (received(HIGHER, 150, version=2), DropReason.WRONG_VERSION),
        (received(ME, 150), DropReason.OWN_ADVERTISEMENT),
        (
            AdvertisementReceived(
                source=ipaddress.IPv6Address("fe80::1"),
                advertisement=Advertisement(
                    version=3,
                    vrid=51,
                    priority=150,
                    interval_cs=100,
                    addresses=(ipaddress.IPv6Address("2001:db8::1"),),
                ),
            ),
            DropReason.WRONG_FAMILY,
        ),
    ],
)
def test_semantic_rejections(event: AdvertisementReceived, reason: DropReason) -> None:
    state = backup()
    new_state, effects = run(state, (event, S))
    assert new_state == state
    assert len(effects) == 1 and isinstance(effects[0], Dropped) and effects[0].reason is reason


def test_v2_interval_mismatch_is_discarded_and_not_learned_rfc3768_7_1() -> None:
    state = backup(version=2, advert_interval_cs=100)
    _, effects = run(state, (received(HIGHER, 150, interval_cs=200, version=2), S))
    assert isinstance(effects[0], Dropped) and effects[0].reason is DropReason.INTERVAL_MISMATCH
    state, effects = run(state, (received(HIGHER, 150, interval_cs=100, version=2), S))
    assert state.master_adver_interval_cs == 100
    assert effects == [SetTimer(timer=TimerKind.MASTER_DOWN, deadline_ns=S + 3 * S + 609_375_000)]


def test_stale_timer_is_dropped() -> None:
    state = backup()
    old = state.down_deadline_ns
    assert old is not None
    state, _ = run(state, (received(HIGHER, 150), S))
    _, effects = run(state, (TimerExpired(timer=TimerKind.MASTER_DOWN, deadline_ns=old, fired_ns=old), old))
    assert isinstance(effects[0], Dropped) and effects[0].reason is DropReason.STALE_TIMER


# --- priorities and interfaces ---


def test_owner_priority_cannot_be_changed() -> None:
    state, _ = run(InstanceState.initial(config(priority=255)), (Started(), 0))
    new_state, effects = run(state, (PriorityChanged(priority=10), S))
    assert new_state.priority == 255
    assert isinstance(effects[0], Dropped) and effects[0].reason is DropReason.OWNER_PRIORITY_FIXED


def test_master_advertises_a_changed_priority_at_once() -> None:
    state, effects = run(master(), (PriorityChanged(priority=90, reason="track eth1"), 9 * S))
    assert state.priority == 90
    assert effects[0] == SendAdvertisement(priority=90, interval_cs=100)


def test_interface_down_goes_to_initialize_and_up_restarts() -> None:
    state, effects = run(master(), (InterfaceChanged(up=False), 9 * S))
    assert state.role is Role.INITIALIZE and state.started
    assert kinds(effects) == [Transitioned, CancelTimer, ReleaseVips]
    state, effects = run(state, (InterfaceChanged(up=True), 10 * S))
    assert state.role is Role.BACKUP
    assert effects[0].cause.kind is CauseKind.INTERFACE_UP  # type: ignore[union-attr]


def test_started_while_interface_down_waits_for_carrier() -> None:
    state, effects = run(InstanceState.initial(config()), (InterfaceChanged(up=False), 0), (Started(), 1))
    assert state.role is Role.INITIALIZE and effects == []
    state, _ = run(state, (InterfaceChanged(up=True), 2))
    assert state.role is Role.BACKUP


def test_every_transition_effect_comes_first() -> None:
    """Write-ahead: an actor that logs effects in order logs the transition before what it implies."""
    _, effects = fire(backup(), TimerKind.MASTER_DOWN)
    assert isinstance(effects[0], Transitioned)


# --- totality and determinism over every state x input ---

addresses = st.sampled_from([LOWER, ME, HIGHER, ipaddress.IPv6Address("fe80::1")])
adverts = st.builds(
    lambda version, vrid, priority, interval: Advertisement(
        version=version,
        vrid=vrid,
        priority=priority,
        interval_cs=interval if version == 3 else 100,
        addresses=(VIP,),
    ),
    st.sampled_from([2, 3]),
    st.sampled_from([51, 52]),
    st.integers(0, 255),
    st.integers(1, 4095),
)
inputs: st.SearchStrategy[Input] = st.one_of(
    st.just(Started()),
    st.just(ShutdownRequested()),
    st.builds(AdvertisementReceived, source=addresses, advertisement=adverts),
    st.builds(
        lambda timer, deadline, late: TimerExpired(timer=timer, deadline_ns=deadline, fired_ns=deadline + late),
        st.sampled_from(list(TimerKind)),
        st.integers(0, 100 * S),
        st.integers(0, S),
    ),
    st.builds(PriorityChanged, priority=st.integers(1, 254)),
    st.builds(InterfaceChanged, up=st.booleans()),
)
configs = st.builds(
    lambda priority, preempt, version: config(priority=priority, preempt=preempt, version=version),
    st.sampled_from([1, 100, 254, 255]),
    st.booleans(),
    st.sampled_from([2, 3]),
)


@given(configs, st.lists(st.tuples(inputs, st.integers(0, S)), max_size=30))
def test_step_is_total_and_deterministic(cfg: InstanceConfig, events: list[tuple[Input, int]]) -> None:
    state = InstanceState.initial(cfg)
    now = 0
    for drawn, gap in events:
        now += gap
        event = drawn
        due = machine.due_timer(state)
        if isinstance(drawn, TimerExpired) and due is not None:
            # Mostly fire the timer that is really due (late by the drawn gap); else a stale one.
            event = attrs.evolve(due, fired_ns=max(now, due.deadline_ns))
            now = event.fired_ns
        first = machine.step(state, event, now)
        second = machine.step(state, event, now)
        assert first == second
        state, effects = first
        transitions = [e for e in effects if isinstance(e, Transitioned)]
        assert len(transitions) <= 1
        if transitions:
            assert effects[0] is transitions[0]
            assert transitions[0].to_role is state.role
            assert render(transitions[0].cause)
        # Timers run exactly in the states that own them.
        assert (state.adver_deadline_ns is not None) == (state.role is Role.MASTER)
        assert (state.down_deadline_ns is not None) == (state.role is Role.BACKUP)


def test_every_state_input_pair_is_handled_or_deliberately_ignored() -> None:
    handled = set(machine.TRANSITIONS)
    ignored = {
        (Role.INITIALIZE, AdvertisementReceived),  # screened: NOT_RUNNING
        (Role.INITIALIZE, TimerExpired),  # no timer runs in Initialize
        (Role.BACKUP, Started),
        (Role.MASTER, Started),
    }
    from ffo.vrrp.inputs import INPUT_TYPES

    assert handled | ignored == {(role, kind) for role in Role for kind in INPUT_TYPES}
    assert not handled & ignored
