"""A writer process killed with SIGKILL mid-stream loses nothing it acknowledged (no user-space buffer)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ffo.eventlog.record import Record
from tests.eventlog.helpers import Tick, open_writer, read_all

REPO = Path(__file__).resolve().parents[2]
ACKED_BEFORE_KILL = 3000


def test_sigkill_loses_no_acknowledged_record(tmp_path: Path) -> None:
    directory = tmp_path / "events" / "kill"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.eventlog.killable_writer", str(directory)], cwd=REPO, stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    acked: list[int] = []
    deadline = time.monotonic() + 30
    try:
        while len(acked) < ACKED_BEFORE_KILL and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            acked.append(int(line))
        os.kill(child.pid, signal.SIGKILL)
        acked += [int(line) for line in child.stdout.read().split()]  # acknowledged before it died
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert len(acked) >= ACKED_BEFORE_KILL, "the writer did not get going"
    records, damage = read_all(directory)
    assert [item for item in damage if not item.is_tail] == []
    seqs = [record.seq for record in records]
    assert seqs == list(range(1, len(seqs) + 1))
    assert set(acked) <= set(seqs)
    with open_writer(directory, stream="kill") as writer:  # and the next start goes on from there
        assert writer.append(Tick(n=-1)) == len(seqs) + 1
    records, damage = read_all(directory)
    assert damage == [] and all(isinstance(record, Record) for record in records) and len(records) == len(seqs) + 1
