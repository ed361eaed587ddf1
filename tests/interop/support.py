"""Real `ffo run` daemons next to keepalived in lab namespaces: start, inspect through the CLI, stop or kill.

The interop tests treat ffo exactly as an operator would: a config file, `ffo run -c FILE` in the node's
namespace, `ffo status --json` through the control socket, and `ffo events`, `ffo why` and `ffo replay` on
the state directory. Nothing here imports the daemon's internals, so what the tests check is what a user sees.

Each daemon is started in its own session (``start_new_session``): its PID is then its process group's ID, so
a crash of the whole daemon — the kernel and every actor — is one `os.killpg(pid, SIGKILL)`, which reaches
only processes this test started.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ffo.lab import Lab, stop_process

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30.0
VIP4 = "192.0.2.100/24"
VIP6 = "2001:db8::100/64"
VRID = 51

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], what: str | Callable[[], str], timeout: float = TIMEOUT_S) -> T:
    """Poll `condition` until it returns something truthy and return that; fail (saying `what`) at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
        time.sleep(0.05)


def ffo_cli(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run an ``ffo`` command (in the host namespace: the read-only commands need no network)."""
    return subprocess.run(
        [sys.executable, "-m", "ffo.cli.main", *args], capture_output=True, text=True, check=check, cwd=REPO
    )


class FfoDaemon:
    """One `ffo run` with a single `[[instance]]` in a lab node; its files under ``root/<node>``."""

    def __init__(
        self,
        lab: Lab,
        node: str,
        root: Path,
        *,
        priority: int,
        interval: str = "100ms",
        version: int = 3,
        vips: Sequence[str] = (VIP4,),
        unicast_peers: Sequence[str] = (),
        pseudo_header: bool = True,
    ) -> None:
        self.lab = lab
        self.node = node
        self.directory = root / node
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config = self.directory / "ffo.toml"
        self.state_dir = self.directory / "state"
        self.log = self.directory / "ffo.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.configure(
            priority=priority,
            interval=interval,
            version=version,
            vips=vips,
            unicast_peers=unicast_peers,
            pseudo_header=pseudo_header,
        )

    def configure(
        self,
        *,
        priority: int,
        interval: str,
        version: int,
        vips: Sequence[str],
        unicast_peers: Sequence[str],
        pseudo_header: bool,
    ) -> None:
        """(Re)write the config file; the next `start` uses it, with the same state directory."""
        self.priority = priority
        lines = [
            "[node]",
            f'name = "{self.node}"',
            f'run_dir = "{self.directory}/run"',
            f'state_dir = "{self.state_dir}"',
            "",
            "[[instance]]",
            'name = "web"',
            'interface = "eth0"',
            f"vrid = {VRID}",
            f"priority = {priority}",
            f"version = {version}",
            f'advert_interval = "{interval}"',
            f"vips = {json.dumps(list(vips))}",
            f"unicast_peers = {json.dumps(list(unicast_peers))}",
            f"checksum_ipv4_pseudo_header = {'true' if pseudo_header else 'false'}",
        ]
        self.config.write_text("\n".join(lines) + "\n")

    # -- running -----------------------------------------------------------------------------------------------

    def start(self) -> FfoDaemon:
        if self.running():
            raise RuntimeError(f"ffo in {self.node} is already running")
        with self.log.open("ab") as log:
            self.process = self.lab.exec(
                self.node,
                [sys.executable, "-m", "ffo.cli.main", "run", "-c", str(self.config)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = TIMEOUT_S) -> int | None:
        """SIGTERM the kernel (a clean shutdown: a master sends priority 0) and wait for its exit status."""
        if self.process is None:
            return None
        return stop_process(self.process, timeout)

    def kill(self) -> None:
        """SIGKILL the daemon's whole process group — the kernel and every actor at once: nothing is sent."""
        if not self.running():
            return
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(TIMEOUT_S)

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- observing ---------------------------------------------------------------------------------------------

    def instance(self) -> dict[str, Any] | None:
        """The instance's entry of ``ffo status --json``, or None while the daemon does not answer."""
        done = ffo_cli("status", "-c", str(self.config), "--json")
        if done.returncode != 0:
            return None
        instances: list[dict[str, Any]] = json.loads(done.stdout)["instances"]
        return instances[0] if instances else None

    def state(self) -> str | None:
        entry = self.instance()
        return None if entry is None else str(entry["state"])

    def wait_state(self, state: str, *, master: str | None = None, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """Poll ``ffo status`` until the instance is in `state` (and, if given, names `master`)."""

        def reached() -> dict[str, Any] | None:
            entry = self.instance()
            if entry is None or entry["state"] != state:
                return None
            return entry if master is None or entry["master"] == master else None

        return wait_for(reached, lambda: f"ffo in {self.node} to be {state} (master {master}): {self.instance()}")

    def events(self, *args: str) -> list[dict[str, Any]]:
        """``ffo events --json`` on the state directory (works whether or not the daemon runs)."""
        done = ffo_cli("events", "--dir", str(self.state_dir), "--json", *args, check=True)
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def transitions(self) -> list[dict[str, Any]]:
        return self.events("--type", "transition")

    def why_last(self) -> str:
        """``ffo why --last``, with its line wrapping undone (so a phrase can be searched for)."""
        return " ".join(ffo_cli("why", "--dir", str(self.state_dir), "--last", check=True).stdout.split())

    def replay(self) -> subprocess.CompletedProcess[str]:
        return ffo_cli("replay", "--dir", str(self.state_dir))


def holders(lab: Lab, vip: str) -> list[str]:
    """The lab nodes that have `vip` (with or without its prefix) configured on ``eth0``."""
    address = str(ipaddress.ip_interface(vip).ip)
    return [node for node in lab.nodes if any(entry.get("local") == address for entry in lab.addresses(node))]


def assert_replays(daemon: FfoDaemon) -> None:
    """The golden-log check for a real daemon: its event log replays through the machine with 0 divergences."""
    done = daemon.replay()
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    last = done.stdout.splitlines()[-1]
    assert last.endswith(" 0 divergences") and " 0 transitions" not in last, last
