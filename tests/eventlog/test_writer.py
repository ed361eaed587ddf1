"""The writer: gapless seqs across restarts, rotation and retention by size and age, one writer per stream,
failures injected into write and fdatasync, and sync running in a thread while appends go on."""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from ffo.bus.messages import NotAMessageError
from ffo.errors import LocalProtocolError
from ffo.eventlog.frame import MAGIC, segment_name
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.reader import list_segments
from ffo.eventlog.record import RecordEncodeError, RecordsDropped, record_message
from ffo.eventlog.writer import EventWriter, StreamBusyError
from tests.eventlog.helpers import (
    NODE,
    WALL_EPOCH_NS,
    Tick,
    fake_clock,
    open_writer,
    read_all,
    read_clean,
    segment_records,
)

DAY_NS = 86400 * 10**9


def test_records_carry_everything_and_seqs_continue_across_restarts(tmp_path: Path) -> None:
    clock = fake_clock()
    directory = tmp_path / "events" / "vrrp"
    with open_writer(directory, clock, stream="vrrp") as writer:
        assert writer.append(Tick(n=1)) == 1
        clock.advance(5)
        assert writer.append(Tick(n=2), cause="vrrp:1") == 2
        assert writer.append(Tick(n=3), mono_ns=7, ts_ns=8) == 3
        assert writer.status.next_seq == 4
    assert directory.stat().st_mode & 0o777 == 0o750
    with open_writer(directory, clock, stream="vrrp") as writer:
        assert writer.recovery is None
        assert writer.append_record("test.eventlog.tick", 1, {"n": 4, "note": ""}) == 4
    first, second, third, fourth = read_clean(directory)
    assert (first.node, first.stream, first.id, first.type, first.version) == (
        NODE,
        "vrrp",
        "vrrp:1",
        "test.eventlog.tick",
        1,
    )
    assert (first.mono_ns, first.ts_ns, first.cause) == (1_000_000_000, WALL_EPOCH_NS + 1_000_000_000, None)
    assert (second.mono_ns, second.cause) == (1_000_000_005, "vrrp:1")
    assert (third.mono_ns, third.ts_ns) == (7, 8)
    assert [record_message(record) for record in (first, fourth)] == [Tick(n=1), Tick(n=4)]
    assert list_segments(directory) == [(1, directory / segment_name(1))]


def test_bugs_of_the_caller_raise_and_consume_no_seq(tmp_path: Path) -> None:
    @attrs.frozen
    class NotAMessage:
        n: int

    with open_writer(tmp_path / "s") as writer:
        with pytest.raises(NotAMessageError):
            writer.append(NotAMessage(1))
        with pytest.raises(RecordEncodeError):
            writer.append_record("test.eventlog.tick", 1, {1: "not a str key"})  # type: ignore[dict-item]
        with pytest.raises(RecordEncodeError):
            writer.append_record("test.eventlog.tick", 1, {"n": object()})
        assert writer.append(Tick(n=1)) == 1
    with pytest.raises(LocalProtocolError):
        writer.append(Tick(n=2))


def test_one_writer_per_stream(tmp_path: Path) -> None:
    with open_writer(tmp_path / "s"), pytest.raises(StreamBusyError):
        open_writer(tmp_path / "s")
    with open_writer(tmp_path / "s") as writer:  # closed: free again
        assert writer.append(Tick(n=1)) == 1


def test_rotation_by_size_names_segments_by_their_first_seq(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    with open_writer(directory, segment_max_bytes=300) as writer:
        for n in range(20):
            writer.append(Tick(n=n))
        assert writer.status.segments == len(list_segments(directory)) >= 4
    assert [record.fields["n"] for record in read_clean(directory)] == list(range(20))
    segments = list_segments(directory)
    assert segments[0][0] == 1
    for (first, path), (after, _) in zip(segments, [*segments[1:], (21, None)], strict=True):
        data = path.read_bytes()
        assert data.startswith(MAGIC) and len(data) <= 300
        assert [record.seq for record in segment_records(path)] == list(range(first, after))


def test_rotation_by_age(tmp_path: Path) -> None:
    clock = fake_clock()
    directory = tmp_path / "s"
    with open_writer(directory, clock, segment_max_age_ns=DAY_NS) as writer:
        writer.append(Tick(n=1))
        clock.advance(DAY_NS - 1)
        writer.append(Tick(n=2))
        clock.advance(1)
        writer.append(Tick(n=3))
    assert [first for first, _ in list_segments(directory)] == [1, 3]


def test_retention_by_size_deletes_whole_oldest_segments_never_the_active(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    with open_writer(directory, segment_max_bytes=300, retain_bytes=1000) as writer:
        for n in range(50):
            writer.append(Tick(n=n))
        segments = list_segments(directory)
        assert sum(path.stat().st_size for _, path in segments) <= 1000
        assert segments[-1][0] <= 50
    records = read_clean(directory)
    assert records[-1].seq == 50 and records[0].seq == segments[0][0] > 1
    with open_writer(directory, segment_max_bytes=10_000, retain_bytes=1) as writer:  # only the active is left
        assert list_segments(directory) == segments[-1:]
        assert writer.append(Tick(n=50)) == 51


def test_retention_by_age_keeps_a_segment_until_its_newest_record_is_too_old(tmp_path: Path) -> None:
    clock = fake_clock()
    directory = tmp_path / "s"
    with open_writer(directory, clock, segment_max_age_ns=DAY_NS, retain_age_ns=3 * DAY_NS) as writer:
        for _ in range(5):  # one segment a day: seqs 1..5, first written at day 0..4
            writer.append(Tick(n=0))
            clock.advance(DAY_NS)
        assert [first for first, _ in list_segments(directory)] == [1, 2, 3, 4, 5]
        clock.advance(DAY_NS // 2)  # day 5.5: segment 1 holds day 0 only, segment 2 day 1 only (< day 2.5)
        writer.append(Tick(n=0))  # rotates (segment 5 is a day old), which applies retention
        assert [first for first, _ in list_segments(directory)] == [3, 4, 5, 6]
    clock.advance(10 * DAY_NS)  # on open too; the active segment stays
    with open_writer(directory, clock, retain_age_ns=3 * DAY_NS):
        assert [first for first, _ in list_segments(directory)] == [6]


@pytest.fixture
def failing_writes(monkeypatch: pytest.MonkeyPatch) -> Callable[[int, OSError | int | None], None]:
    """Make os.write on one descriptor fail (an OSError) or write only some bytes (an int); None restores it."""
    real_write = os.write
    faults: dict[int, OSError | int] = {}

    def write(fd: int, data: bytes) -> int:
        fault = faults.get(fd)
        if isinstance(fault, OSError):
            raise fault
        if isinstance(fault, int):
            return real_write(fd, data[:fault])
        return real_write(fd, data)

    def inject(fd: int, fault: OSError | int | None) -> None:
        if fault is None:
            faults.pop(fd, None)
        else:
            faults[fd] = fault

    monkeypatch.setattr(os, "write", write)
    return inject


def active_fd(writer: EventWriter) -> int:
    fd = writer._fd  # the one piece of writer internals a test needs: which descriptor to break
    assert fd is not None
    return fd


def test_a_failing_disk_degrades_without_raising_and_recovers(
    tmp_path: Path, failing_writes: Callable[[int, OSError | int | None], None], caplog: pytest.LogCaptureFixture
) -> None:
    clock = fake_clock()
    directory = tmp_path / "s"
    with open_writer(directory, clock, max_pending_bytes=400, retry_interval_ns=10**9) as writer:
        writer.append(Tick(n=0))
        fd = active_fd(writer)
        failing_writes(fd, OSError(errno.EIO, "Input/output error"))
        caplog.set_level(logging.WARNING, logger="ffo.eventlog")
        results = [writer.append(Tick(n=n)) for n in range(1, 21)]
        held = [seq for seq in results if seq is not None]
        assert held == list(range(2, 2 + len(held))) and 0 < len(held) < 20
        assert results[len(held) :] == [None] * (20 - len(held))
        status = writer.status
        assert status.degraded and status.last_error is not None and "Input/output error" in status.last_error
        assert (status.pending, status.dropped, status.next_seq) == (len(held), 20 - len(held), len(held) + 2)
        assert status.pending_bytes <= 400
        failing_writes(fd, None)
        assert not writer.retry(), "retries wait for retry_interval_ns"
        clock.advance(10**9)
        assert writer.append(Tick(n=21)) == len(held) + 3  # the retry is due: pending, marker, then this one
        assert not writer.status.degraded and writer.status.pending == 0
    records = read_clean(directory)
    assert [record.seq for record in records] == list(range(1, len(held) + 4))
    marker = records[-2]
    assert record_message(marker) == RecordsDropped(
        count=20 - len(held), first_mono_ns=1_000_000_000, last_mono_ns=1_000_000_000
    )
    assert [record.fields["n"] for record in records if record is not marker] == [0, *range(1, len(held) + 1), 21]
    errors = [entry for entry in caplog.records if entry.levelno >= logging.ERROR]
    assert len(errors) == 1 and "degraded" in errors[0].getMessage()
    assert "resumed" in caplog.records[-1].getMessage()


def test_a_short_write_is_undone_so_no_torn_record_stays(
    tmp_path: Path, failing_writes: Callable[[int, OSError | int | None], None]
) -> None:
    clock = fake_clock()
    directory = tmp_path / "s"
    with open_writer(directory, clock) as writer:
        writer.append(Tick(n=0))
        size = writer.status.bytes_written + len(MAGIC)
        failing_writes(active_fd(writer), 5)
        assert writer.append(Tick(n=1)) == 2  # kept in memory
        assert writer.status.degraded and (directory / segment_name(1)).stat().st_size == size
        failing_writes(active_fd(writer), None)
        assert writer.retry(force=True)
    assert [record.fields["n"] for record in read_clean(directory)] == [0, 1]


def test_a_failing_fdatasync_degrades_until_a_sync_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fdatasync = os.fdatasync
    broken = True

    def fdatasync(fd: int) -> None:
        if broken:
            raise OSError(errno.EIO, "Input/output error")
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    with open_writer(tmp_path / "s") as writer:
        writer.append(Tick(n=0))
        writer.sync()
        status = writer.status
        assert status.degraded and status.sync_errors == 1 and writer.needs_sync
        assert writer.append(Tick(n=1)) == 2, "appends still go to the page cache"
        broken = False
        writer.sync()
        assert not writer.status.degraded and writer.status.syncs >= 1 and not writer.needs_sync
    assert len(read_clean(tmp_path / "s")) == 2


def test_a_disk_that_refuses_the_first_segment_starts_degraded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open
    full = True

    def open_(path: str | Path, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if full and str(path).endswith(".log"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", open_)
    clock = fake_clock()
    with open_writer(tmp_path / "s", clock) as writer:
        assert writer.status.degraded and writer.status.segments == 0
        assert writer.append(Tick(n=1)) == 1
        full = False
        clock.advance(10**9)
        assert writer.append(Tick(n=2)) == 2
        assert not writer.status.degraded and writer.status.segments == 1
    assert [record.seq for record in read_clean(tmp_path / "s")] == [1, 2]


def test_sync_in_a_thread_while_appending_and_rotating(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    stop = threading.Event()
    errors: list[BaseException] = []
    with open_writer(directory, segment_max_bytes=2000) as writer:

        def commit() -> None:
            try:
                while not stop.is_set():
                    writer.sync()
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        thread = threading.Thread(target=commit)
        thread.start()
        try:
            for n in range(3000):
                assert writer.append(Tick(n=n)) == n + 1
        finally:
            stop.set()
            thread.join()
        status = writer.status
    assert errors == [] and not status.degraded and status.syncs > 0 and status.sync_errors == 0
    assert [record.fields["n"] for record in read_clean(directory)] == list(range(3000))
    records, damage = read_all(directory)
    assert damage == [] and len(records) == 3000


def test_the_policy_refuses_what_makes_no_sense() -> None:
    for knob in ("fsync_interval_ns", "segment_max_bytes", "retain_bytes", "max_pending_bytes", "retry_interval_ns"):
        with pytest.raises((TypeError, ValueError)):
            LogPolicy(**{knob: 0})
    with pytest.raises(TypeError):
        LogPolicy(segment_max_bytes=1.5)  # type: ignore[arg-type]


def test_status_counts_and_close_is_idempotent(tmp_path: Path) -> None:
    writer = open_writer(tmp_path / "s", segment_max_bytes=200)
    for n in range(6):
        writer.append(Tick(n=n))
    status = writer.status
    assert (status.stream, status.next_seq, status.records_written, status.degraded) == ("s", 7, 6, False)
    assert status.bytes_written == sum(path.stat().st_size - len(MAGIC) for _, path in list_segments(tmp_path / "s"))
    assert status.segments == len(list_segments(tmp_path / "s")) > 1
    assert writer.needs_sync
    writer.close()
    writer.close()
    assert writer.status.syncs == 1 and not writer.needs_sync
    assert not writer.retry(force=True) or not writer.status.degraded
