"""Golden logs: what the simulated nodes' recorders write replays exactly through the machine.

The logs are produced by the same `Recorder` the VRRP actor uses, for hundreds of seeded failure schedules,
and replayed record by record (`ffo.vrrp.replay`). A machine that behaves differently from the one that wrote
the log (the simulator's planted bugs) must be reported as diverging.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ffo.eventlog.reader import read_stream
from ffo.eventlog.record import Record, record_message
from ffo.sim.cluster import Cluster
from ffo.sim.eventfiles import write_journal
from ffo.sim.journal import MemoryJournal
from ffo.sim.schedule import ActionKind, Scenario, generate
from ffo.vrrp.record import PeriodicRun, TransitionMade
from ffo.vrrp.replay import Entry, StepFunction, replay, what_if
from tests.sim.mutants import MUTANTS

S = 1_000_000_000


def simulate(scenario: Scenario) -> tuple[Cluster, dict[str, list[Entry]]]:
    journal = MemoryJournal()
    cluster = Cluster(scenario=scenario, journal=journal)
    assert cluster.run() is None
    streams = {
        node: [(f"{node}:{seq}", entry.record) for seq, entry in enumerate(entries, 1)]
        for node, entries in journal.streams.items()
    }
    return cluster, streams


@pytest.mark.parametrize(
    ("interval_cs", "duration_ns", "seeds"), [(100, 60 * S, 300), (10, 6 * S, 150), (1, 2 * S, 100)]
)
def test_recorded_streams_replay_without_divergence(interval_cs: int, duration_ns: int, seeds: int) -> None:
    transitions = runs = 0
    for seed in range(seeds):
        cluster, streams = simulate(generate(seed, nodes=3, interval_cs=interval_cs, duration_ns=duration_ns))
        for node, entries in streams.items():
            result = replay(entries)
            assert result.divergences == (), "\n".join(result.divergences[0].describe())
            assert result.events == len(entries)
            # Every transition the cluster traced for this node is in its stream.
            traced = sum(1 for entry in cluster.trace if entry.text.startswith(f"{node} ") and " -> " in entry.text)
            assert result.transitions == traced, f"seed {seed} {node}"
            transitions += result.transitions
            runs += sum(isinstance(record, PeriodicRun) for _, record in entries)
    assert transitions > seeds and runs > seeds  # the schedules did fail over, and runs were coalesced


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_a_machine_that_behaves_differently_diverges(name: str) -> None:
    mutant: StepFunction = MUTANTS[name]
    diverged = 0
    for seed in range(60):
        _, streams = simulate(generate(seed, nodes=3, interval_cs=100, duration_ns=60 * S))
        for entries in streams.values():
            result = replay(entries, step=mutant)
            if result.divergences:
                diverged += 1
                lines = result.divergences[0].describe()
                assert lines[0].startswith("divergence at ")
                assert [line.strip() for line in lines].count("replayed:") == 1
    assert diverged, f"{name}: no log diverged in 60 seeds"


def test_what_if_with_unchanged_settings_reproduces_the_recorded_transitions() -> None:
    compared = 0
    for seed in range(200):
        scenario = generate(seed, nodes=3, interval_cs=100, duration_ns=60 * S)
        if any(action.kind is ActionKind.CRASH for action in scenario.actions):
            continue  # a crash loses the open run: what-if then misses advertisements (documented)
        _, streams = simulate(scenario)
        for entries in streams.values():
            result = what_if(entries, instance="vi", settings={})
            recorded = [(t.at_ns, t.transition) for t in result.recorded]
            assert [(t.at_ns, t.transition) for t in result.alternative] == recorded, f"seed {seed}"
            compared += len(recorded)
    assert compared > 200


def test_what_if_a_higher_priority_answers_with_other_transitions() -> None:
    # Seed 5: n3 (254) is master until it shuts down at 38.7 s; n1 (200) then takes over.
    _, streams = simulate(generate(5, nodes=3, interval_cs=100, duration_ns=60 * S))
    result = what_if(streams["n2"], instance="vi", settings={"priority": 255})
    assert [t.transition.to_role.value for t in result.recorded] == ["BACKUP"]
    became = [(t.transition.from_role.value, t.transition.to_role.value) for t in result.alternative]
    assert became == [("INITIALIZE", "MASTER")]  # as the address owner it would have started as master
    assert result.inputs > 30


def test_a_steady_node_at_10ms_writes_a_few_records_per_minute() -> None:
    scenario = generate(0, nodes=2, interval_cs=1, duration_ns=120 * S)
    quiet = Scenario(
        seed=scenario.seed,
        nodes=scenario.nodes,
        interval_cs=1,
        duration_ns=120 * S,
        delay_min_ns=scenario.delay_min_ns,
        delay_max_ns=scenario.delay_max_ns,
    )
    _, streams = simulate(quiet)
    for node, entries in streams.items():
        # ~12,000 advertisements sent or heard in 2 minutes; written as a run per minute plus the start-up.
        assert len(entries) <= 8, f"{node}: {[type(record).__name__ for _, record in entries]}"
        assert sum(isinstance(record, TransitionMade) for _, record in entries) >= 1


def test_streams_written_to_files_and_read_back_replay_the_same(tmp_path: Path) -> None:
    """The same, through the real writer, frames and reader: what is on disk is what was recorded."""
    for seed in range(40):
        journal = MemoryJournal()
        assert (
            Cluster(scenario=generate(seed, nodes=3, interval_cs=10, duration_ns=6 * S), journal=journal).run() is None
        )
        written = write_journal(journal, tmp_path / str(seed), wall_epoch_ns=0)
        for node, state_dir in written.items():
            records = list(read_stream(state_dir / "events" / "vrrp"))
            assert all(isinstance(record, Record) for record in records)
            entries = [(f"vrrp:{r.seq}", record_message(r)) for r in records if isinstance(r, Record)]
            assert [record for _, record in entries] == [entry.record for entry in journal.streams[node]]
            result = replay(entries)  # type: ignore[arg-type]  # every record here is a VRRP record
            assert result.divergences == ()
