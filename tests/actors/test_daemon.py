"""`ffo run` as a real process: ordered shutdown on SIGTERM, no orphans after the kernel is SIGKILLed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ffo.actors.control import ask
from tests.actors.conftest import ECHO, REPO, wait_for
from tests.actors.test_kernel import alive


def write_config(path: Path, run_dir: Path, options: dict[str, str]) -> None:
    option_lines = "".join(f'{key} = "{value}"\n' for key, value in options.items())
    actors = ""
    for name, order in (("third", 2), ("second", 1), ("first", 0)):
        actors += f'\n[[actor]]\nname = "{name}"\nfactory = "{ECHO}"\nstop_order = {order}\n'
        actors += f"[actor.options]\n{option_lines}"
        actors = actors.replace("HOLDING", str(path.parent / f"holding-{name}"))
    path.write_text(f'[node]\nname = "n1"\nrun_dir = "{run_dir}"\nstate_dir = "{run_dir}/state"\n{actors}')


@pytest.fixture
def daemon(run_dir: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    config = tmp_path / "ffo.toml"
    write_config(config, run_dir, {"stop_log": str(tmp_path / "stops"), "holding": "HOLDING"})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "ffo", "run", "-c", str(config)], env=env)
    yield process, config
    if process.poll() is None:
        process.kill()
        process.wait()


async def ready_status(run_dir: Path) -> dict[str, Any]:
    status: dict[str, Any] = {}

    def all_ready() -> bool:
        nonlocal status
        try:
            reply = ask(run_dir / "control.sock", "status", timeout_ms=500)
        except ConnectionError:
            return False
        status = reply["status"]
        return all(actor["state"] == "ready" for actor in status["actors"])

    await wait_for(all_ready, timeout=30, what="every actor to be ready")
    return status


@pytest.mark.asyncio
async def test_sigterm_stops_actors_in_order_then_exits_0(
    daemon: tuple[subprocess.Popen[bytes], Path], run_dir: Path, tmp_path: Path
) -> None:
    process, _ = daemon
    status = await ready_status(run_dir)
    pids = [actor["pid"] for actor in status["actors"]]
    assert len(set(pids)) == 3 and process.pid not in pids
    for pid in pids:  # every actor is a direct child of the kernel
        assert int(Path(f"/proc/{pid}/stat").read_text().split()[3]) == process.pid
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 30) == 0
    order = [line.split()[0] for line in (tmp_path / "stops").read_text().splitlines()]
    assert order == ["first", "second", "third"]
    assert not any(alive(pid) for pid in pids)
    assert not (run_dir / "control.sock").exists()
    # The node's supervision history is in its event log, readable with the daemon gone.
    events = subprocess.run(
        [sys.executable, "-m", "ffo.cli.main", "events", "--dir", str(run_dir / "state"), "--type", "kernel"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert "node n1 started" in events[0] and "node n1 stopped (exit 0) — SIGTERM" in events[-1]
    assert sum("-> ready" in line for line in events) == 3
    assert sum("-> stopped" in line for line in events) == 3


@pytest.mark.asyncio
async def test_sigkilled_kernel_leaves_no_actor_running_and_holders_release(
    daemon: tuple[subprocess.Popen[bytes], Path], run_dir: Path, tmp_path: Path
) -> None:
    process, _ = daemon
    status = await ready_status(run_dir)
    pids = [actor["pid"] for actor in status["actors"]]
    assert all((tmp_path / f"holding-{name}").exists() for name in ("first", "second", "third"))
    process.kill()
    process.wait()
    await wait_for(lambda: not any(alive(pid) for pid in pids), timeout=30, what="the orphans to exit")
    # Each actor heard of the kernel's death (PR_SET_PDEATHSIG) and ran its teardown: nothing is held.
    assert not any((tmp_path / f"holding-{name}").exists() for name in ("first", "second", "third"))


def test_status_without_daemon_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ffo.cli.main import main

    config = tmp_path / "ffo.toml"
    write_config(config, tmp_path / "nowhere", {})
    assert main(["status", "-c", str(config)]) == 3
    assert "is `ffo run` running?" in capsys.readouterr().err
