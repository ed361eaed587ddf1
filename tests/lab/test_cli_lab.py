"""`ffo lab up | down | demo` for real: daemons in ``ffo-lab-*`` namespaces, run as a user runs them (subprocesses).

The lab CLI uses fixed names (``ffo-lab-*``, /run/ffo-lab) so that people can type them; these tests therefore
skip when a lab is already up (a developer's, or a concurrent run's) rather than tear it down, and remove
whatever they built themselves even when they fail. Waits poll with generous deadlines.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from ffo.lab import layout, list_namespaces, netns_unavailable
from ffo.lab.cluster import existing_lab, tear_down
from ffo.lab.daemons import is_running
from tests.lab.support import wait_until

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120.0
FAST = ("--advert-interval", "50ms")


def ffo(*argv: str, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ffo.cli.main", *argv],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=timeout,
    )


def lab_namespaces() -> list[str]:
    return [name for name in list_namespaces() if name.startswith(layout.PREFIX + "-")]


@pytest.fixture
def no_lab() -> Iterator[None]:
    """Skip where namespaces are unavailable or a lab is already up; remove what the test left, if anything."""
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    existing = existing_lab()
    if existing is not None:
        pytest.skip(f"a lab is already up ({existing}); these tests use the same names")
    yield
    if existing_lab() is not None:
        tear_down()


def lab_processes() -> list[int]:
    """PIDs of processes whose command line names a lab file (the daemons and their actors)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(layout.LAB_DIR).encode() + b"/" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def assert_nothing_left(daemons: tuple[layout.DaemonRecord, ...] = ()) -> None:
    assert lab_namespaces() == []
    assert not layout.LAB_DIR.exists()
    assert [record for record in daemons if is_running(record)] == []
    assert lab_processes() == []


@pytest.mark.usefixtures("no_lab")
def test_up_elects_refuses_a_second_lab_and_down_removes_everything() -> None:
    up = ffo("lab", "up", "--nodes", "2", *FAST)
    assert up.returncode == 0, up.stderr
    assert "master: n1 (192.0.2.11)" in up.stdout
    assert set(lab_namespaces()) == {f"ffo-lab-{role}" for role in ("sw", "n1", "n2", "client")}

    status = ffo("status", "-c", str(layout.config_path("n1")), "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["instances"][0]["state"] == "MASTER"

    again = ffo("lab", "up", "--nodes", "2")
    assert again.returncode == 1
    assert "already up" in again.stderr

    state = layout.load_state()
    assert state is not None and [record.node for record in state.daemons] == ["n1", "n2"]
    assert all(is_running(record) for record in state.daemons)
    down = ffo("lab", "down")
    assert down.returncode == 0, down.stderr
    assert_nothing_left(state.daemons)
    assert ffo("lab", "down").stdout.strip() == "no lab is up"  # idempotent


@pytest.mark.usefixtures("no_lab")
def test_demo_shows_the_takeover_explains_it_and_leaves_nothing() -> None:
    demo = ffo("lab", "demo", "--nodes", "2", *FAST)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    out = demo.stdout
    assert out.splitlines()[0].startswith("ffo lab demo: 2 real ffo daemons")
    assert "new master           n2 (priority 100)" in out
    assert "RFC bound            3 x 50.0 ms + Skew_Time" in out
    assert "client outage" in out
    assert "why did n2 take over?" in out
    assert "because no advertisement from 192.0.2.11" in " ".join(out.split())
    assert "n1 is MASTER again" in out
    assert_nothing_left()


@pytest.mark.usefixtures("no_lab")
@pytest.mark.parametrize(
    ("sig", "after"),
    [(signal.SIGINT, "namespaces"), (signal.SIGINT, "elected:"), (signal.SIGTERM, "cutting")],
    ids=["sigint-while-building", "sigint-after-the-election", "sigterm-at-the-cut"],
)
def test_an_interrupted_demo_cleans_up(sig: signal.Signals, after: str) -> None:
    with tempfile.TemporaryFile(mode="w+") as output:
        demo = subprocess.Popen(
            [sys.executable, "-m", "ffo.cli.main", "lab", "demo", "--nodes", "2", *FAST],
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
        )
        try:
            if after == "namespaces":  # mid-build: the daemons are starting
                wait_until(lambda: "ffo-lab-client" in lab_namespaces(), timeout=60, what="the lab's namespaces")
            else:
                wait_until(lambda: after in _read(output), timeout=60, what=f"{after!r} in the demo's output")
            time.sleep(0.2)
            state = layout.load_state()
            demo.send_signal(sig)
            assert demo.wait(TIMEOUT_S) == 3
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait()
        assert "tearing the lab down" in _read(output) or "interrupted" in _read(output)
    assert_nothing_left(state.daemons if state is not None else ())


def _read(output: IO[str]) -> str:
    output.seek(0)
    return output.read()
