"""Run many seeded schedules, shrink each failure to a short trace, and report `N passed, N failed`."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator

import attrs

from ffo.sim.checker import check
from ffo.sim.cluster import Cluster, Step, TraceEntry, Violation
from ffo.sim.schedule import Scenario, generate
from ffo.vrrp import machine


@attrs.frozen(kw_only=True)
class SimOptions:
    nodes: int = 3
    interval_cs: int = 100
    duration_ns: int = 60_000_000_000


@attrs.frozen(kw_only=True)
class SeedResult:
    seed: int
    violation: Violation | None
    trace: tuple[TraceEntry, ...] = ()
    actions: int = 0


def run_scenario(scenario: Scenario, step: Step = machine.step) -> tuple[Violation | None, Cluster]:
    cluster = Cluster(scenario=scenario, step=step)
    return check(cluster), cluster


def shrink(scenario: Scenario, kind: str, step: Step) -> Scenario:
    """Remove actions one at a time while the same kind of violation still happens (greedy delta debugging)."""

    def still_fails(candidate: Scenario) -> bool:
        violation, _ = run_scenario(candidate, step)
        return violation is not None and violation.kind == kind

    current = scenario
    changed = True
    while changed:
        changed = False
        for index in range(len(current.actions)):
            actions = current.actions[:index] + current.actions[index + 1 :]
            candidate = attrs.evolve(current, actions=actions)
            if still_fails(candidate):
                current = candidate
                changed = True
                break
    # Then end the run as soon after the violation as it still shows.
    violation, _ = run_scenario(current, step)
    if violation is not None:
        shorter = attrs.evolve(current, duration_ns=violation.at_ns + 1)
        if still_fails(shorter):
            current = shorter
    return current


def run_seed(seed: int, options: SimOptions, step: Step = machine.step) -> SeedResult:
    scenario = generate(seed, nodes=options.nodes, interval_cs=options.interval_cs, duration_ns=options.duration_ns)
    violation, _ = run_scenario(scenario, step)
    if violation is None:
        return SeedResult(seed=seed, violation=None)
    small = shrink(scenario, violation.kind, step)
    violation, cluster = run_scenario(small, step)
    return SeedResult(seed=seed, violation=violation, trace=tuple(cluster.trace), actions=len(small.actions))


def _run_seed_star(args: tuple[int, SimOptions, Step]) -> SeedResult:
    return run_seed(*args)


def run_seeds(seeds: range, options: SimOptions, step: Step = machine.step, jobs: int = 1) -> Iterator[SeedResult]:
    """Results in seed order; with jobs > 1 the seeds are spread over worker processes."""
    work = ((seed, options, step) for seed in seeds)
    if jobs <= 1 or len(seeds) < 50:
        yield from map(_run_seed_star, work)
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(jobs) as pool:
        yield from pool.imap(_run_seed_star, work, chunksize=64)


def format_failure(result: SeedResult, options: SimOptions) -> list[str]:
    assert result.violation is not None
    lines = [f"seed {result.seed}: {result.violation.message}"]
    lines += [f"  {entry.at_ns / 1e9:10.6f}s  {entry.text}" for entry in result.trace]
    lines.append(f"  (rerun: ffo sim --seeds 1 --seed-start {result.seed} --nodes {options.nodes})")
    return lines


def report(results: Iterator[SeedResult], options: SimOptions, emit: Callable[[str], None]) -> tuple[int, int]:
    passed = failed = 0
    for result in results:
        if result.violation is None:
            passed += 1
            continue
        failed += 1
        for line in format_failure(result, options):
            emit(line)
    emit(f"{passed} passed, {failed} failed")
    return passed, failed
