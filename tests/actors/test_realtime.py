"""`realtime_priority`: SCHED_FIFO for the one actor that serves VRRP timers, in its own process only."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import attrs
import pytest

from ffo.actors.kernel import ActorSpec, scheduling_of
from ffo.cli.run import actor_specs
from ffo.config import ActorSettings, NodeConfig, loads_config
from tests.actors.conftest import ECHO, StartKernel, wait_for


def policy_of(pid: int) -> int:
    return os.sched_getscheduler(pid) & ~os.SCHED_RESET_ON_FORK


@pytest.fixture
def fifo_allowed() -> None:
    """Skip where SCHED_FIFO is refused (no root or CAP_SYS_NICE, an RLIMIT_RTPRIO of 0, an RT-less cgroup)."""
    probe = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))"
    if subprocess.run([sys.executable, "-c", probe], capture_output=True, check=False).returncode != 0:
        pytest.skip("SCHED_FIFO is not permitted here")


@pytest.mark.asyncio
@pytest.mark.usefixtures("fifo_allowed")
async def test_realtime_priority_gives_sched_fifo_to_that_actor_only(start_kernel: StartKernel) -> None:
    specs = (ActorSpec(name="vrrp", factory=ECHO, realtime_priority=10), ActorSpec(name="other", factory=ECHO))
    kernel, probe = await start_kernel(specs)
    vrrp, other = await probe.ping("vrrp"), await probe.ping("other")
    # The host applies it once the actor is ready, which may come just after the kernel hears ActorReady.
    await wait_for(lambda: policy_of(vrrp.pid) == os.SCHED_FIFO, what="SCHED_FIFO on the vrrp actor")
    assert os.sched_getparam(vrrp.pid).sched_priority == 10
    assert os.sched_getscheduler(vrrp.pid) & os.SCHED_RESET_ON_FORK  # what it starts does not inherit it
    assert policy_of(other.pid) == os.SCHED_OTHER and os.sched_getparam(other.pid).sched_priority == 0
    assert policy_of(os.getpid()) == os.SCHED_OTHER  # nor does the kernel get it
    status = {actor["name"]: actor for actor in kernel.status()["actors"]}
    assert status["vrrp"]["scheduling"] == "SCHED_FIFO 10"
    assert status["other"]["scheduling"] == "SCHED_OTHER"


@pytest.mark.asyncio
@pytest.mark.usefixtures("fifo_allowed")
async def test_restarted_actor_gets_its_priority_again(start_kernel: StartKernel) -> None:
    kernel, probe = await start_kernel((ActorSpec(name="vrrp", factory=ECHO, realtime_priority=7),))
    first = await probe.ping("vrrp")
    await probe.ping("vrrp", action="crash")
    await wait_for(lambda: kernel.actors["vrrp"].restarts == 1, what="a restart")
    second = await probe.ping("vrrp")
    assert second.pid != first.pid
    await wait_for(lambda: scheduling_of(second.pid) == "SCHED_FIFO 7", what="SCHED_FIFO on the new incarnation")


@pytest.mark.asyncio
async def test_single_process_mode_leaves_the_node_unprivileged(
    start_kernel: StartKernel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ffo.kernel")
    kernel, probe = await start_kernel(
        (ActorSpec(name="vrrp", factory=ECHO, realtime_priority=10),), single_process=True
    )
    assert (await probe.ping("vrrp")).pid == os.getpid()
    assert policy_of(os.getpid()) == os.SCHED_OTHER
    assert kernel.status()["actors"][0]["scheduling"] == "SCHED_OTHER"
    ignored = [r for r in caplog.records if r.name == "ffo.kernel" and r.levelno == logging.WARNING]
    assert any("vrrp" in map(str, r.args or ()) for r in ignored)


def test_only_the_vrrp_actor_gets_the_node_priority() -> None:
    # Built directly: the config parser keeps "vrrp" for the built-in actor, which is not written yet.
    actors = (ActorSettings(name="other", factory=ECHO), ActorSettings(name="vrrp", factory=ECHO, stop_order=0))
    config = NodeConfig(name="n1", realtime_priority=20, actors=actors)
    specs = {spec.name: spec for spec in actor_specs(config)}
    assert specs["vrrp"].realtime_priority == 20
    assert specs["other"].realtime_priority == 0
    assert all(spec.realtime_priority == 0 for spec in actor_specs(attrs.evolve(config, realtime_priority=0)))


def test_a_config_without_a_vrrp_actor_asks_for_no_priority() -> None:
    config = loads_config(
        f'[node]\nname = "n1"\nrealtime_priority = 20\n[[actor]]\nname = "other"\nfactory = "{ECHO}"\n'
    )
    assert [spec.realtime_priority for spec in actor_specs(config)] == [0]


@pytest.mark.parametrize("priority", [-1, 100])
def test_priority_out_of_range_is_refused(priority: int) -> None:
    with pytest.raises(ValueError, match="realtime_priority"):
        ActorSpec(name="vrrp", factory=ECHO, realtime_priority=priority)
