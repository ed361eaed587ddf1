"""Real ffo daemons in lab namespaces: election, a graceful handover, the event log of a real failover.

Each node runs `ffo run -c FILE` (the kernel and its VRRP actor as processes) inside its own namespace; the
test reads their state through the control socket (`ffo status --json`) and their event logs with the CLI.
"""

from __future__ import annotations

import json
import os
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


def holds_vip(lab: Lab, node: str) -> bool:
    addresses = lab.run(node, ["ip", "-o", "addr", "show", "dev", "eth0"]).stdout
    return " 192.0.2.100/24 " in addresses


def pid_of(config: Path, actor: str) -> int | None:
    report = status(config)
    if report is None:
        return None
    found = [a["pid"] for a in report["actors"] if a["name"] == actor and a["state"] == "ready"]
    return int(found[0]) if found else None


def test_the_vip_follows_the_master_and_a_killed_vrrp_actor_hands_over_at_once(lab: Lab, root: Path) -> None:
    configs = {node: write_config(root, node, priority, "1s") for node, priority in (("n1", 200), ("n2", 100))}
    daemons = {node: start(lab, node, config) for node, config in configs.items()}
    wait_for(lambda: state_of(configs["n1"]) == "MASTER" and state_of(configs["n2"]) == "BACKUP", "the election")
    wait_for(lambda: holds_vip(lab, "n1"), "the VIP on the master")
    assert not holds_vip(lab, "n2")

    # The master's VRRP process dies (SIGKILL: no goodbye of its own). Its VIP actor sends the priority-0
    # advertisement it was given and removes the VIP; n2 takes over after Skew_Time, not 3 x 1 s.
    vrrp_pid = pid_of(configs["n1"], "vrrp")
    assert vrrp_pid is not None
    os.kill(vrrp_pid, signal.SIGKILL)
    wait_for(lambda: state_of(configs["n2"]) == "MASTER", "n2 to take over")
    wait_for(lambda: holds_vip(lab, "n2") and not holds_vip(lab, "n1"), "the VIP to move")
    events = subprocess.run(
        [sys.executable, "-m", "ffo.cli.main", "events", "--dir", str(root / "n2" / "state"), "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout.splitlines()
    takeovers = [json.loads(line) for line in events if '"BACKUP"' in line and '"MASTER"' in line]
    assert any(event["cause_data"] and event["cause_data"]["kind"] == "master_left" for event in takeovers), events

    # The kernel restarts n1's VRRP actor; with the higher priority and preemption it takes the VIP back.
    wait_for(lambda: state_of(configs["n1"]) == "MASTER", "n1 to come back", timeout=60)
    wait_for(lambda: holds_vip(lab, "n1") and not holds_vip(lab, "n2"), "the VIP to come back")
    why = subprocess.run(
        [sys.executable, "-m", "ffo.cli.main", "why", "--dir", str(root / "n1" / "state"), "--last"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert "vip.acquired" in why  # what the VIP actor did because of the transition

    for daemon in daemons.values():
        daemon.send_signal(signal.SIGTERM)
    for daemon in daemons.values():
        assert daemon.wait(TIMEOUT_S) == 0
    assert not holds_vip(lab, "n1") and not holds_vip(lab, "n2")


def test_a_master_whose_link_goes_down_steps_down_and_drops_the_vip(lab: Lab, root: Path) -> None:
    configs = {node: write_config(root, node, priority, "100ms") for node, priority in (("n1", 200), ("n2", 100))}
    daemons = {node: start(lab, node, config) for node, config in configs.items()}
    wait_for(lambda: state_of(configs["n1"]) == "MASTER" and holds_vip(lab, "n1"), "n1 master with the VIP")
    lab.cut("n1")  # the switch side of n1's veth goes down: n1's eth0 loses its carrier
    wait_for(lambda: state_of(configs["n1"]) == "INITIALIZE" and not holds_vip(lab, "n1"), "n1 to step down")
    wait_for(lambda: state_of(configs["n2"]) == "MASTER" and holds_vip(lab, "n2"), "n2 to take over")
    lab.restore("n1")
    wait_for(lambda: state_of(configs["n1"]) == "MASTER" and holds_vip(lab, "n1"), "n1 to come back")
    wait_for(lambda: not holds_vip(lab, "n2"), "n2 to release the VIP")
    for daemon in daemons.values():
        daemon.send_signal(signal.SIGTERM)
    for daemon in daemons.values():
        assert daemon.wait(TIMEOUT_S) == 0
    events = subprocess.run(
        [sys.executable, "-m", "ffo.cli.main", "events", "--dir", str(root / "n1" / "state"), "--type", "transition"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert "MASTER -> INITIALIZE" in events and "interface went down" in events
    assert "INITIALIZE -> BACKUP" in events and "interface came up" in events
