"""Group commit: records written together share one fdatasync, run off the event loop; idle means no syncs;
and a degraded log gets its retries from the committer."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ffo.clock import SystemClock
from ffo.eventlog.committer import run_group_commit
from ffo.eventlog.writer import EventWriter
from tests.eventlog.helpers import Tick, fake_clock, open_writer, read_clean

INTERVAL_NS = 1_000_000


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `condition` until it holds; fail after a generous timeout. No fixed sleeps for conditions."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


@contextlib.asynccontextmanager
async def committing(writer: EventWriter) -> AsyncIterator[None]:
    task = asyncio.create_task(run_group_commit(writer, INTERVAL_NS))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.asyncio
async def test_records_appended_together_share_one_sync_in_a_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fdatasync = os.fdatasync
    sync_threads: list[int] = []

    def fdatasync(fd: int) -> None:
        sync_threads.append(threading.get_ident())
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    with open_writer(tmp_path / "s", SystemClock()) as writer:
        writer.sync()  # the new segment and its directory entry
        baseline = writer.status.syncs
        sync_threads.clear()
        async with committing(writer):
            for n in range(200):
                writer.append(Tick(n=n))
            await wait_for(lambda: writer.status.syncs > baseline and not writer.needs_sync, what="a sync")
            batched = writer.status.syncs - baseline
            assert batched == 1, "200 records appended in one go need one fdatasync"
            assert sync_threads and threading.get_ident() not in sync_threads, "fdatasync must run off the loop"
            for _ in range(10):  # idle: nothing written, nothing to sync
                await asyncio.sleep(INTERVAL_NS / 1e9)
            assert writer.status.syncs - baseline == 1
            writer.append(Tick(n=200))
            await wait_for(lambda: writer.status.syncs - baseline == 2, what="the second sync")
    assert len(read_clean(tmp_path / "s")) == 201


@pytest.mark.asyncio
async def test_the_committer_retries_a_degraded_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = fake_clock()
    real_write = os.write
    broken: set[int] = set()

    def write(fd: int, data: bytes) -> int:
        if fd in broken:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    with open_writer(tmp_path / "s", clock, retry_interval_ns=10**9) as writer:
        writer.append(Tick(n=0))
        assert writer._fd is not None
        broken.add(writer._fd)
        assert writer.append(Tick(n=1)) == 2
        assert writer.status.degraded
        async with committing(writer):
            broken.clear()
            clock.advance(10**9)  # the retry is due: the committer's next tick writes the pending record
            await wait_for(lambda: not writer.degraded and not writer.needs_sync, what="the log to resume")
    assert [record.fields["n"] for record in read_clean(tmp_path / "s")] == [0, 1]


@pytest.mark.asyncio
async def test_a_bad_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        await run_group_commit(None, 0)  # type: ignore[arg-type]
