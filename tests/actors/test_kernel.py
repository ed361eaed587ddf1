"""The supervised runtime with real actors over the real bus: in one process and in one process per actor."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from ffo.actors.kernel import ActorSpec, ActorState
from tests.actors.conftest import ECHO, StartKernel, wait_for


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) is not running.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.asyncio
async def test_single_process_actors_answer_and_stop_in_order(start_kernel: StartKernel, tmp_path: Path) -> None:
    stop_log = tmp_path / "stops"
    specs = tuple(
        ActorSpec(name=name, factory=ECHO, stop_order=order, options={"stop_log": str(stop_log)})
        for name, order in (("other", 2), ("vip", 1), ("vrrp", 0))
    )
    kernel, probe = await start_kernel(specs, single_process=True)
    for name in ("vrrp", "vip", "other"):
        pong = await probe.ping(name)
        assert pong.actor == name and pong.pid == os.getpid()
    kernel.request_shutdown("test")
    await wait_for(lambda: all(a.state is ActorState.STOPPED for a in kernel.actors.values()), what="stops")
    assert [line.split()[0] for line in stop_log.read_text().splitlines()] == ["vrrp", "vip", "other"]


@pytest.mark.asyncio
async def test_single_process_crash_is_restarted(start_kernel: StartKernel) -> None:
    kernel, probe = await start_kernel((ActorSpec(name="echo", factory=ECHO),), single_process=True)
    first = await probe.ping("echo")
    await probe.ping("echo", action="crash")
    await wait_for(lambda: kernel.actors["echo"].restarts == 1, what="a restart")
    second = await probe.ping("echo")
    assert second.incarnation == first.incarnation + 1
    assert "RuntimeError" in kernel.actors["echo"].last_exit


@pytest.mark.asyncio
async def test_sigkilled_actor_is_restarted_and_peers_keep_working(start_kernel: StartKernel) -> None:
    kernel, probe = await start_kernel((ActorSpec(name="a", factory=ECHO), ActorSpec(name="b", factory=ECHO)))
    a_before, b_before = await probe.ping("a"), await probe.ping("b")
    assert a_before.pid != os.getpid() and a_before.pid != b_before.pid
    os.kill(a_before.pid, signal.SIGKILL)
    assert (await probe.ping("b")).pid == b_before.pid  # b did not notice
    a_after = await probe.ping("a")
    assert a_after.pid != a_before.pid and a_after.incarnation == a_before.incarnation + 1
    assert not alive(a_before.pid)
    assert kernel.actors["a"].last_exit == "was killed by SIGKILL"
    assert kernel.actors["a"].restarts == 1 and kernel.actors["b"].restarts == 0


@pytest.mark.asyncio
async def test_stopped_actor_is_declared_hung_and_replaced(start_kernel: StartKernel) -> None:
    kernel, probe = await start_kernel((ActorSpec(name="a", factory=ECHO),))
    before = await probe.ping("a")
    os.kill(before.pid, signal.SIGSTOP)
    await wait_for(lambda: kernel.actors["a"].restarts == 1, what="the hung actor to be replaced")
    after = await probe.ping("a")
    assert after.pid != before.pid
    assert not alive(before.pid)


@pytest.mark.asyncio
async def test_wedged_loop_is_declared_hung_and_replaced(start_kernel: StartKernel) -> None:
    kernel, probe = await start_kernel((ActorSpec(name="a", factory=ECHO),))
    before = await probe.ping("a")
    await probe.ping("a", action="block")
    await wait_for(lambda: kernel.actors["a"].restarts == 1, what="the wedged actor to be replaced")
    assert (await probe.ping("a")).pid != before.pid


@pytest.mark.asyncio
async def test_restart_budget_stops_a_crash_loop(start_kernel: StartKernel) -> None:
    spec = ActorSpec(name="bad", factory=ECHO, options={"crash_on_start": True})
    good = ActorSpec(name="good", factory=ECHO)
    kernel, _ = await start_kernel((spec, good))
    await wait_for(lambda: kernel.actors["bad"].state is ActorState.FAILED, what="the budget to run out")
    assert kernel.exit_code == 1
    assert "exited with status 1" in kernel.actors["bad"].last_exit
    await wait_for(lambda: kernel.actors["good"].state is ActorState.STOPPED, what="the node to stop")


@pytest.mark.asyncio
async def test_status_carries_the_vrrp_actors_last_report(start_kernel: StartKernel) -> None:
    kernel, _ = await start_kernel(
        (ActorSpec(name="reporter", factory="tests.actors.support:StatusReporter"),), single_process=True
    )
    await wait_for(lambda: bool(kernel.status()["instances"]), what="a status report")
    (instance,) = kernel.status()["instances"]
    assert instance["name"] == "web" and instance["state"] == "MASTER" and instance["vips"] == ["192.0.2.100/24"]
    assert instance["timer_lateness_ms"] == {"p50": 0.2, "p99": 0.4, "max": 1.5}
