"""Real `ffo run` daemons with RPC links over TCP on loopback: keys from `ffo keygen`, configs, polling helpers.

These nodes have no VRRP instances (no namespaces needed): each runs its kernel and RPC actor, and their
kernel and rpc streams are the history that resyncs. The namespace tests add VRRP on top.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0


def ffo(*argv: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ffo.cli.main", *argv], capture_output=True, text=True, check=check, cwd=REPO
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


@attrs.define
class RpcNode:
    name: str
    root: Path
    port: int
    skew: str | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def directory(self) -> Path:
        return self.root / self.name

    @property
    def config(self) -> Path:
        return self.directory / "ffo.toml"

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def state_dir(self) -> Path:
        return self.directory / "state"

    def keygen(self) -> None:
        ffo("keygen", "--out", str(self.root / "keys"), "--name", self.name, check=True)

    def write_config(self, peers: list[RpcNode], *, extra_node: str = "", insecure: bool = False) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        keys = self.root / "keys"
        lines = [
            "[node]",
            f'name = "{self.name}"',
            f'run_dir = "{self.directory}/run"',
            f'state_dir = "{self.state_dir}"',
        ]
        if self.skew is not None:
            lines.append(f'test_clock_skew = "{self.skew}"')
        lines += [extra_node, "", "[rpc]", f'listen = "{self.endpoint}"', f"insecure = {str(insecure).lower()}"]
        lines.append(f'secret_key_file = "{keys / (self.name + ".key_secret")}"')
        for peer in peers:
            lines += [
                "",
                "[[rpc.peers]]",
                f'name = "{peer.name}"',
                f'endpoint = "{peer.endpoint}"',
                f'public_key_file = "{keys / (peer.name + ".key")}"',
            ]
        self.config.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        log = (self.directory / "daemon.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ffo.cli.main", "run", "-c", str(self.config)],
            cwd=REPO,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL of the whole group (our own process group, by its PID) if it lingers."""
        process = self.process
        if process is None:
            return
        self.process = None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def cluster(self) -> dict[str, Any] | None:
        done = ffo("status", "-c", str(self.config), "--cluster", "--json")
        if done.returncode not in (0, 1):
            return None
        view: dict[str, Any] = json.loads(done.stdout)
        return view

    def peer_view(self, peer: str) -> dict[str, Any] | None:
        view = self.cluster()
        if view is None:
            return None
        return next((node for node in view["nodes"] if node["name"] == peer), None)

    def ready(self) -> bool:
        """The node runs and its RPC actor said it is ready."""
        done = ffo("status", "-c", str(self.config), "--json")
        if done.returncode != 0:
            return False
        actors = json.loads(done.stdout)["actors"]
        return any(actor["name"] == "rpc" and actor["state"] == "ready" for actor in actors)

    def log_text(self) -> str:
        path = self.directory / "daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""


def records(events_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every record of every stream under `events_dir`, as comparable tuples, by stream."""
    from ffo.eventlog.reader import Corruption, list_streams, read_stream

    found: dict[str, list[tuple[Any, ...]]] = {}
    for stream in list_streams(events_dir):
        rows = []
        for item in read_stream(stream):
            assert not isinstance(item, Corruption), item.describe()
            rows.append(
                (item.node, item.stream, item.seq, item.ts_ns, item.mono_ns, item.type, item.cause, item.fields)
            )
        found[stream.name] = rows
    return found
