"""Real ffo daemons in lab namespaces: election, a graceful handover, the event log of a real failover.

Each node runs `ffo run -c FILE` (the kernel and its VRRP actor as processes) inside its own namespace; the
test reads their state through the control socket (`ffo status --json`) and their event logs with the CLI.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ffo.lab import Lab, netns_unavailable
from tests.lab.support import PREFIX

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30.0


def write_config(root: Path, node: str, priority: int, interval: str) -> Path:
    directory = root / node
    directory.mkdir(parents=True)
    config = directory / "ffo.toml"
    config.write_text(
        f'[node]\nname = "{node}"\nrun_dir = "{directory}/run"\nstate_dir = "{directory}/state"\n\n'
        f'[[instance]]\nname = "web"\ninterface = "eth0"\nvrid = 51\npriority = {priority}\n'
        f'advert_interval = "{interval}"\nvips = ["192.0.2.100/24"]\n'
    )
    return config


def status(config: Path) -> dict[str, Any] | None:
    done = subprocess.run(
        [sys.executable, "-m", "ffo.cli.main", "status", "-c", str(config), "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    return json.loads(done.stdout) if done.returncode == 0 else None


def state_of(config: Path) -> str | None:
    report = status(config)
    if report is None or not report["instances"]:
        return None
    return str(report["instances"][0]["state"])


def wait_for(condition: Any, what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def lab() -> Iterator[Lab]:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with Lab(PREFIX, nodes=2) as built:
        yield built


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ffo-d-"))  # short: ipc:// paths are limited to ~107 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start(lab: Lab, node: str, config: Path) -> subprocess.Popen[bytes]:
    return lab.exec(
        node, [sys.executable, "-m", "ffo.cli.main", "run", "-c", str(config)], cwd=REPO, stderr=subprocess.DEVNULL
    )


def test_two_daemons_elect_a_master_and_hand_over_on_sigterm(lab: Lab, root: Path) -> None:
    configs = {node: write_config(root, node, priority, "100ms") for node, priority in (("n1", 200), ("n2", 100))}
    daemons = {node: start(lab, node, config) for node, config in configs.items()}
    wait_for(lambda: state_of(configs["n1"]) == "MASTER" and state_of(configs["n2"]) == "BACKUP", "the election")
    report = status(configs["n2"])
    assert report is not None and report["instances"][0]["master"] == "192.0.2.11"

    daemons["n1"].send_signal(signal.SIGTERM)  # its VRRP actor stops first: priority 0 goes out
    assert daemons["n1"].wait(TIMEOUT_S) == 0
    wait_for(lambda: state_of(configs["n2"]) == "MASTER", "n2 to take over")

    daemons["n2"].send_signal(signal.SIGTERM)
    assert daemons["n2"].wait(TIMEOUT_S) == 0
    replayed = subprocess.run(
        [sys.executable, "-m", "ffo.cli.main", "replay", "--dir", str(root / "n2" / "state")],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert replayed.returncode == 0, replayed.stdout
    assert replayed.stdout.splitlines()[-1].endswith(" 0 divergences")
    why = subprocess.run(
        [sys.executable, "-m", "ffo.cli.main", "why", "--dir", str(root / "n2" / "state"), "--last"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert "MASTER -> INITIALIZE because shutdown requested" in " ".join(why.split())
    events = subprocess.run(
        [sys.executable, "-m", "ffo.cli.main", "events", "--dir", str(root / "n2" / "state"), "--type", "transition"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert "announced priority 0 (leaving)" in events
