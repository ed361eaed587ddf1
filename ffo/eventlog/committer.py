"""Group commit: one task per writer that makes its records durable in batches, off the event loop.

`EventWriter.append` only hands records to the kernel; this task calls ``fdatasync`` (`EventWriter.sync`) in
a worker thread every `interval_ns` when something was written, so that many records share one disk flush
and the event loop never waits for the disk. A crash of the process loses nothing (the records are in the
page cache); a crash of the machine loses at most about `interval_ns` of records (plus one sync's duration).
While the log is degraded it also gives the writer its chance to retry (rate-limited by the writer).
"""

from __future__ import annotations

import asyncio

from ffo.eventlog.writer import EventWriter

__all__ = ["run_group_commit"]


async def run_group_commit(writer: EventWriter, interval_ns: int) -> None:
    """Sync `writer` every `interval_ns` while it has unsynced writes, until cancelled.

    The ticks are kept on a fixed grid of the loop's clock, so a slow sync delays the next one only if it
    overruns a whole interval (then the missed ticks are skipped, not bunched).
    """
    if interval_ns <= 0:
        raise ValueError(f"interval_ns must be positive, not {interval_ns}")
    loop = asyncio.get_running_loop()
    interval = interval_ns / 1e9
    deadline = loop.time()
    while True:
        deadline += interval
        now = loop.time()
        if deadline < now:
            deadline = now + interval
        await asyncio.sleep(deadline - now)
        if writer.degraded:
            writer.retry()
        if writer.needs_sync:
            await asyncio.to_thread(writer.sync)
