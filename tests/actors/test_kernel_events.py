"""The kernel's event stream: the node's supervision history, as `ffo events` shows it."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from ffo.actors.events import ActorChanged, NodeStarted, NodeStopped
from ffo.actors.kernel import ActorSpec, ActorState, Kernel
from ffo.clock import SystemClock
from ffo.eventlog.reader import read_stream
from ffo.eventlog.record import Record, record_message
from ffo.eventlog.writer import EventWriter
from tests.actors.conftest import ECHO, FAST, wait_for


def kernel_events(events_dir: Path) -> list[object]:
    records = list(read_stream(events_dir / "kernel"))
    assert all(isinstance(record, Record) for record in records)
    return [record_message(record) for record in records if isinstance(record, Record)]


def changes(events: list[object], actor: str) -> list[tuple[str, str]]:
    return [(e.to_state, e.reason) for e in events if isinstance(e, ActorChanged) and e.actor == actor]


@pytest.mark.asyncio
async def test_the_stream_tells_the_story_of_a_crash_and_a_restart(
    tmp_path: Path, run_dir: Path, child_env: None
) -> None:
    events_dir = tmp_path / "events"
    kernel = Kernel(
        node="t", specs=(ActorSpec(name="a", factory=ECHO),), run_dir=run_dir, policy=FAST, events_dir=events_dir
    )
    task = asyncio.create_task(kernel.run())
    await wait_for(lambda: kernel.actors["a"].state is ActorState.READY, what="ready")
    pid = kernel.actors["a"].pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await wait_for(lambda: kernel.actors["a"].restarts == 1 and kernel.actors["a"].state is ActorState.READY)
    kernel.request_shutdown("test over")
    assert await asyncio.wait_for(task, 30) == 0

    events = kernel_events(events_dir)
    assert isinstance(events[0], NodeStarted) and events[0].actors == ("a",)
    assert isinstance(events[-1], NodeStopped) and events[-1].reason == "test over" and events[-1].exit_code == 0
    states = changes(events, "a")
    assert [state for state, _ in states] == ["starting", "ready", "backoff", "starting", "ready", "stopped"]
    assert states[2][1].startswith("it was killed by SIGKILL; restarting in 50 ms")
    assert states[3][1] == "restart"
    assert states[5][1].startswith("node shutdown")


@pytest.mark.asyncio
async def test_a_second_kernel_on_the_same_state_dir_is_refused(tmp_path: Path, run_dir: Path) -> None:
    events_dir = tmp_path / "events"
    with EventWriter.open(events_dir / "kernel", node="t", stream="kernel", clock=SystemClock()):
        kernel = Kernel(node="t", specs=(), run_dir=run_dir, events_dir=events_dir)
        assert await kernel.run() == 3
