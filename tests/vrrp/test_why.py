"""`ffo why` paragraphs: the evidence for each kind of failover is named, with its numbers."""

from __future__ import annotations

import pytest

from ffo.sim.cluster import Cluster
from ffo.sim.journal import MemoryJournal
from ffo.sim.schedule import Action, ActionKind, Scenario, node_specs
from ffo.vrrp.record import TransitionMade
from ffo.vrrp.why import Logged, NotATransitionError, explain, last_transition

S = 1_000_000_000
EPOCH = 1_800_000_000 * S  # 2027-01-15T08:00:00Z


def logged_streams(*actions: Action, priorities: tuple[int, ...] = (200, 100)) -> dict[str, list[Logged]]:
    scenario = Scenario(
        seed=1,
        nodes=node_specs(list(priorities)),
        duration_ns=30 * S,
        delay_min_ns=100_000,
        delay_max_ns=1_000_000,
        actions=actions,
    )
    journal = MemoryJournal()
    assert Cluster(scenario=scenario, journal=journal).run() is None
    return {
        node: [
            Logged(id=f"vrrp:{seq}", mono_ns=entry.mono_ns, ts_ns=EPOCH + entry.mono_ns, record=entry.record)
            for seq, entry in enumerate(entries, 1)
        ]
        for node, entries in journal.streams.items()
    }


def test_a_crashed_master_is_explained_by_the_missed_advertisements_and_the_timer() -> None:
    streams = logged_streams(Action(at_ns=10 * S, kind=ActionKind.CRASH, node=0))
    n2 = streams["n2"]
    target = last_transition(n2)
    assert target is not None
    text = "\n".join(explain(n2, target))
    assert "went BACKUP -> MASTER because no advertisement from 192.0.2.11" in text
    assert "advertisements from 192.0.2.11 (priority 200, every 1.000 s)" in text
    assert "3 advertisements from 192.0.2.11 missed" in text
    assert "Master_Down timer was due at" in text and "0 µs late" in text
    assert "armed at" in text and "by the last accepted advertisement" in text
    assert "Master_Down_Interval = 3 x 1.000 s + Skew_Time 609.4 ms at priority 100" in text
    assert "took the VIPs 192.0.2.100" in text


def test_a_graceful_stop_is_explained_by_the_priority_zero_advertisement() -> None:
    streams = logged_streams(Action(at_ns=10 * S, kind=ActionKind.SHUTDOWN, node=0))
    n2 = streams["n2"]
    target = last_transition(n2)
    assert target is not None
    text = "\n".join(explain(n2, target))
    assert "announced priority 0 (leaving)" in text
    assert "one advertisement from 192.0.2.11 (priority 0" in text
    assert "by a priority-0 advertisement (the master leaving), for Skew_Time only: 609.4 ms" in text
    n1 = streams["n1"]
    goodbye = last_transition(n1)
    assert goodbye is not None
    assert "sent an advertisement with priority 0 (goodbye" in "\n".join(explain(n1, goodbye))


def test_a_priority_change_that_leads_to_preemption_is_named_with_its_reason() -> None:
    streams = logged_streams(
        Action(at_ns=10 * S, kind=ActionKind.PRIORITY, node=1, priority=250), priorities=(200, 100)
    )
    n2 = streams["n2"]
    target = last_transition(n2)
    assert target is not None
    text = "\n".join(explain(n2, target))
    assert "went BACKUP -> MASTER" in text and "preemption is on" in text
    assert "its priority was set to 250 (simulated tracker)" in text
    assert "Its priority was 250 (configured 100)" in text


def test_asking_about_something_that_is_not_a_transition_is_a_clear_error() -> None:
    n1 = logged_streams()["n1"]
    not_transition = next(item.id for item in n1 if not isinstance(item.record, TransitionMade))
    with pytest.raises(NotATransitionError, match="not a transition"):
        explain(n1, not_transition)
    with pytest.raises(NotATransitionError, match="no such event"):
        explain(n1, "vrrp:9999")
