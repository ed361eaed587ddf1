"""A real full disk (a 64 KiB tmpfs): appends never raise, records wait then are dropped and counted, and
once space returns the waiting records, then a log.records_dropped record, are written: gapless, no damage."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ffo.eventlog.record import RecordsDropped, record_message
from tests.eventlog.helpers import Tick, fake_clock, open_writer, read_clean

RETRY_NS = 10**9


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs mounted for the test (needs root and mount rights; skipped otherwise)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(path: Path) -> None:
    """Take every free byte of the file system `path` is on."""
    with path.open("wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\xff" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC
        try:
            while True:
                file.write(b"\xff")
        except OSError as error:
            assert error.errno == errno.ENOSPC


def test_a_full_disk_degrades_loudly_and_recovers_gapless(small_disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = fake_clock()
    directory = small_disk / "events" / "vrrp"
    caplog.set_level(logging.INFO, logger="ffo.eventlog")
    with open_writer(directory, clock, max_pending_bytes=2048, retry_interval_ns=RETRY_NS) as writer:
        stored = [writer.append(Tick(n=n)) for n in range(10)]
        filler = small_disk / "filler"
        fill(filler)
        results = []
        for n in range(10, 400):  # the segment's last page still takes a few, then the disk is full
            results.append(writer.append(Tick(n=n, note="while full")))
            clock.advance(1000)
            if writer.status.dropped >= 5:
                break
        status = writer.status
        assert status.degraded and status.last_error is not None and "No space left" in status.last_error
        held = [seq for seq in results if seq is not None]
        dropped = len(results) - len(held)
        assert held == list(range(11, 11 + len(held))), "seqs stay gapless: a dropped record gets none"
        assert dropped > 0 and results[-dropped:] == [None] * dropped
        assert status.dropped == dropped and 0 < status.pending <= len(held)
        assert status.pending_bytes <= 2048
        assert status.next_seq == 11 + len(held)

        filler.unlink()
        clock.advance(RETRY_NS)
        assert writer.retry()
        status = writer.status
        assert not status.degraded and (status.pending, status.pending_bytes) == (0, 0)
        assert writer.append(Tick(n=1000)) == 11 + len(held) + 1
        writer.sync()
    records = read_clean(directory)  # no damage: every short write was undone
    assert [record.seq for record in records] == list(range(1, 11 + len(held) + 2))
    assert stored == list(range(1, 11))
    *ticks, marker, last = records
    assert [record.fields["n"] for record in ticks] == list(range(10 + len(held)))
    dropped_message = record_message(marker)
    assert isinstance(dropped_message, RecordsDropped) and dropped_message.count == dropped
    assert dropped_message.first_mono_ns <= dropped_message.last_mono_ns
    assert last.fields["n"] == 1000
    errors = [entry.getMessage() for entry in caplog.records if entry.levelno >= logging.ERROR]
    assert len(errors) == 1 and "degraded" in errors[0] and "No space left" in errors[0]
    assert any("resumed" in entry.getMessage() for entry in caplog.records)
