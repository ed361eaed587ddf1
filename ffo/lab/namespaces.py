"""Namespace housekeeping below the lab: list, probe, empty and delete named network namespaces.

Kept apart from `ffo.lab.netns.Lab` because `ffo lab down`, the test suite's leftover check and the atexit
safety net need it without a `Lab` object. Every function here acts only on namespaces whose names the caller
gives or that start with an ``ffo-`` prefix, and stops processes only by PID, only inside such namespaces.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from typing import Any

from ffo.errors import FfoError

__all__ = [
    "PREFIX_PATTERN",
    "LabError",
    "cleanup_stale",
    "kill_namespace_processes",
    "list_namespaces",
    "namespace_pids",
    "netns_unavailable",
    "run_command",
    "stop_process",
]

PREFIX_PATTERN = re.compile(r"^ffo-[a-z0-9-]*[a-z0-9]$")
"""What a lab prefix must look like: every namespace ffo creates is named ``ffo-…``."""
COMMAND_TIMEOUT = 30.0


class LabError(FfoError):
    """A lab command failed; the message has the command and what it printed."""


def run_command(command: list[str], timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output as text; never raises for a non-zero exit."""
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def stop_process(process: subprocess.Popen[Any], timeout: float = 5.0) -> int | None:
    """SIGTERM the process (by its PID), wait up to `timeout`, then SIGKILL; return its exit status."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout)
    return process.returncode


def namespace_pids(name: str) -> list[int]:
    """PIDs of the processes running in namespace `name` (``ip netns pids``)."""
    result = run_command(["ip", "netns", "pids", name])
    return [int(word) for word in result.stdout.split() if word.isdigit()] if result.returncode == 0 else []


def kill_namespace_processes(name: str, timeout: float = 5.0) -> None:
    """SIGKILL, by PID, every process still inside one of *our* namespaces, and wait until they are gone.

    A namespace outlives `ip netns del` while a process is in it, with its veths and addresses; only processes
    inside a namespace the lab created are touched.
    """
    pids = [pid for pid in namespace_pids(name) if pid != os.getpid()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _running(pid)]
        if pids:
            time.sleep(0.01)


def _running(pid: int) -> bool:
    """Whether `pid` still runs: a zombie (killed, not yet reaped by its parent) has left its namespace."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def list_namespaces() -> list[str]:
    """Names of the named network namespaces (``ip netns list``)."""
    result = run_command(["ip", "netns", "list"])
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


_OWNED = re.compile(r"^(?P<pid>\d+)-[0-9a-f]{6}-")


def cleanup_stale(prefix: str, *, include_live: bool = False) -> list[str]:
    """Delete namespaces ``<prefix>-*`` left behind (a crashed run, `ffo lab down`); return their names.

    A namespace whose name carries the PID of a process that is still alive belongs to a concurrent run and is
    kept, unless `include_live`. Names without a PID (``ffo lab up``'s short names) are always deleted.
    """
    if not PREFIX_PATTERN.match(prefix):
        raise ValueError(f"prefix {prefix!r} must start with 'ffo-'")
    removed: list[str] = []
    for name in list_namespaces():
        if not name.startswith(prefix + "-"):
            continue
        owner = _OWNED.match(name[len(prefix) + 1 :])
        if owner and not include_live and os.path.exists(f"/proc/{owner['pid']}"):
            continue
        kill_namespace_processes(name)
        if run_command(["ip", "netns", "del", name]).returncode == 0:
            removed.append(name)
    return removed


_availability: str | bool | None = False  # False: not probed yet


def netns_unavailable() -> str | None:
    """Why network-namespace labs cannot run here (a reason for `pytest.skip`), or None when they can.

    Probes by creating and deleting a namespace, since a container may be root yet be refused `unshare`.
    """
    global _availability  # noqa: PLW0603 - probed once per process
    if _availability is False:
        _availability = _probe()
    return _availability if isinstance(_availability, str) else None


def _probe() -> str | None:
    if not os.path.isdir("/proc/self/ns") or not hasattr(os, "geteuid"):
        return "network namespaces are Linux-only"
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` (iproute2) is not installed"
    name = f"ffo-t-{os.getpid()}-{secrets.token_hex(3)}-probe"
    result = run_command(["ip", "netns", "add", name])
    if result.returncode != 0:
        return f"`ip netns add` failed: {result.stderr.strip()}"
    run_command(["ip", "netns", "del", name])
    return None
