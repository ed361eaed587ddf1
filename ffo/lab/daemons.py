"""Start `ffo run` daemons inside lab namespaces, detached, and stop exactly those again by PID.

A daemon is started as ``ip netns exec <ns> python -m ffo.cli.main run -c <config>`` (`ip netns exec` execs, so
the PID is the daemon's kernel), in a new session so that a Ctrl-C typed at `ffo lab up`'s terminal does not
reach it, with stdin from /dev/null and stdout/stderr to its log file: a caller that captured `ffo lab up`'s
output through pipes (a test) must not wait for the daemons to close them.

Stopping never relies on being the parent: `ffo lab down` is another process. Each PID is checked against the
start time recorded with it before it is signalled (a recycled PID is left alone); SIGTERM first, so that a
master says goodbye (priority 0) and its actors stop in order, then SIGKILL for what is left at the deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from ffo.lab.layout import DaemonRecord

__all__ = ["is_running", "start_daemon", "start_ticks", "stop_daemons"]

STOP_TIMEOUT_S = 5.0
_POLL_S = 0.02


def start_ticks(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (``/proc/<pid>/stat`` field 22), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    # fields[0] is field 3 (state); field 22 (starttime) is fields[19].
    return int(fields[19]) if len(fields) > 19 else None


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def is_running(record: DaemonRecord) -> bool:
    """Whether the recorded daemon still runs: same PID, same start time, not a zombie."""
    state = _state(record.pid)
    return state is not None and state != "Z" and start_ticks(record.pid) == record.start_ticks


def start_daemon(
    node: str, namespace: str, config: Path, log: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], DaemonRecord]:
    """Start `ffo run -c config` in `namespace`; return the process and the record to save."""
    command: Sequence[str] = (
        "ip",
        *("netns", "exec", namespace),
        *(sys.executable, "-m", "ffo.cli.main", "run", "-c", str(config)),
    )
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=os.environ | (extra_env or {}),
        )
    ticks = start_ticks(process.pid)
    return process, DaemonRecord(node=node, pid=process.pid, start_ticks=ticks if ticks is not None else -1)


def stop_daemons(records: Iterable[DaemonRecord], timeout: float = STOP_TIMEOUT_S) -> list[str]:
    """SIGTERM every recorded daemon that still runs, SIGKILL those left at `timeout`; return what was done.

    All are signalled first and then waited for together, so N nodes take one deadline, not N.
    """
    running = [record for record in records if is_running(record)]
    for record in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while (left := [r for r in running if is_running(r)]) and time.monotonic() < deadline:
        time.sleep(_POLL_S)
    report = [f"{record.node} (pid {record.pid}) stopped" for record in running if record not in left]
    for record in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGKILL)
        report.append(f"{record.node} (pid {record.pid}) killed after {timeout:.0f} s")
    return report
