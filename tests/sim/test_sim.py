"""The simulated cluster: the real machine passes 1,000 seeded schedules; broken machines are caught."""

from __future__ import annotations

import pytest

from ffo.cli.main import main
from ffo.sim.cluster import Cluster
from ffo.sim.demo import demo_scenario
from ffo.sim.runner import SimOptions, report, run_seeds
from ffo.sim.schedule import generate
from tests.sim.mutants import MUTANTS


def test_one_thousand_seeds_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sim", "--seeds", "1000", "--jobs", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "1000 passed, 0 failed", "\n".join(lines[-40:])
    assert code == 0


@pytest.mark.parametrize(
    ("nodes", "interval", "duration"), [(2, "100ms", "6s"), (5, "1s", "60s"), (4, "10ms", "600ms")]
)
def test_other_shapes_pass(nodes: int, interval: str, duration: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--nodes", str(nodes), "--advert-interval", interval, "--duration", duration]
    code = main(["sim", "--seeds", "150", *args])
    assert capsys.readouterr().out.splitlines()[-1] == "150 passed, 0 failed"
    assert code == 0


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_checker_catches_broken_machine_with_a_short_trace(name: str) -> None:
    options = SimOptions()
    results = list(run_seeds(range(60), options, step=MUTANTS[name]))
    caught = [result for result in results if result.violation is not None]
    assert caught, f"{name} was not caught in 60 seeds"
    for result in caught:
        assert len(result.trace) <= 20, "\n".join(entry.text for entry in result.trace)
        assert result.trace[-1].text.startswith("VIOLATION")


def test_seed_replays_exactly() -> None:
    options = SimOptions()
    scenario = generate(42, nodes=3, interval_cs=100, duration_ns=options.duration_ns)
    traces = []
    for _ in range(2):
        cluster = Cluster(scenario=scenario)
        cluster.run()
        traces.append(cluster.trace)
    assert traces[0] == traces[1]


def test_failing_seed_prints_seed_and_trace_first_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    lines: list[str] = []
    options = SimOptions()
    report(run_seeds(range(40), options, step=MUTANTS["ignores_priority_zero"]), options, lines.append)
    assert lines[0].startswith("seed ")
    assert any("VIOLATION" in line for line in lines)


def test_demo_shows_failovers_with_causes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--demo"]) == 0
    out = capsys.readouterr().out
    assert "SIMULATED" in out
    assert "n2 BACKUP -> MASTER: no advertisement from 192.0.2.11" in out
    assert "announced priority 0" in out
    assert "invariants: all held" in out
    assert len(demo_scenario(100).actions) == 3


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--advert-interval", "15ms"]) == 2
    assert "--advert-interval" in capsys.readouterr().err
