"""One replica stream's segments on disk: continuing after a crash, appending in batches, rotating, retention.

The files are exactly an `EventWriter`'s (``MAGIC`` then frames, ``<first seq>.log``), and so are the rules
for them: frames go to the kernel in one ``os.write`` per batch on an ``O_APPEND`` descriptor; a failed or
short write is cut off again, so no torn frame stays before later ones; a new segment starts before a batch
would take the active one past `LogPolicy.segment_max_bytes` (an empty segment takes any frame); whole
oldest segments are deleted while the stream is larger than `LogPolicy.retain_bytes`; a segment replaced
by rotation is closed by the next sync, after its last ``fdatasync``.

Nothing here checks frames or seqs or takes a lock: `ffo.rpc.replica.ReplicaStore` does, and calls this
under its lock.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections import deque
from pathlib import Path
from typing import Final

import attrs

from ffo.eventlog.frame import MAGIC, plan_segment_end, segment_name
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.reader import list_segments
from ffo.eventlog.writer import RecoveryReport

__all__ = ["ReplicaStream", "SyncWork"]

logger = logging.getLogger("ffo.rpc.replica")

_FILE_MODE: Final = 0o640
_OPEN_FLAGS: Final = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
_WRITE_BYTES: Final = 1 << 20
"""Frames are joined into writes of up to this many bytes: few system calls, one bounded buffer."""


@attrs.define
class _Segment:
    first_seq: int
    path: Path
    size: int


@attrs.frozen(kw_only=True)
class SyncWork:
    """What one sync of a stream has to do, taken under the store's lock and done outside it."""

    fd: int | None
    """The active segment, if written since the last sync."""
    retired: tuple[int, ...]
    """Replaced segments: synced, then closed."""
    directory: Path | None
    """The stream's directory, if segments were created or deleted."""


class ReplicaStream:
    """The segments of one replica stream and the descriptor of its newest one."""

    def __init__(self, directory: Path, policy: LogPolicy) -> None:
        self.directory = directory
        self.policy = policy
        self.head = 0
        """The last seq written to the kernel."""
        self._closed: deque[_Segment] = deque()
        self._closed_bytes = 0
        self._active: _Segment | None = None
        self._fd: int | None = None
        self._torn = False  # a failed write may have left bytes past `_active.size`: cut before writing again
        self._dirty = False
        self._dir_dirty = False
        self._retired: list[int] = []
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._batch_last_seq = 0

    @classmethod
    def recover(cls, directory: Path, policy: LogPolicy) -> tuple[ReplicaStream, RecoveryReport | None]:
        """The stream in `directory` as a crash left it, its newest segment's torn or corrupt tail cut off and
        reported (as `EventWriter.open` does); every complete frame before the cut is kept."""
        stream = cls(directory, policy)
        segments = list_segments(directory)
        for first, path in segments[:-1]:
            size = path.stat().st_size
            stream._closed.append(_Segment(first, path, size))
            stream._closed_bytes += size
        if not segments:
            return stream, None
        first, path = segments[-1]
        data = path.read_bytes()
        end = plan_segment_end(data, first)
        report = None
        if end.cut is not None:
            with open(path, "r+b") as file:
                file.truncate(end.keep)
                if end.keep == 0:  # even the header was torn
                    file.write(MAGIC)
                os.fdatasync(file.fileno())
            dropped = len(data) - end.keep
            report = RecoveryReport(
                segment=path, offset=end.keep, bytes_dropped=dropped, kind=end.cut.kind, reason=end.cut.detail
            )
            logger.warning("replica: truncated %s at byte %d, dropping a %d-byte tail", path, end.keep, dropped)
        stream._active = _Segment(first, path, max(end.keep, len(MAGIC)))
        stream.head = end.next_seq - 1
        return stream, report

    # -- appending ------------------------------------------------------------------------------------------------

    def append(self, frame: bytes, seq: int) -> None:
        """Queue `frame` (whose seq is `seq`, the one after the last queued) to be written; a full batch is
        written at once, the rest by `flush`."""
        active = self._active
        pending = self._batch_bytes
        if active is None or (
            active.size + pending > len(MAGIC) and active.size + pending + len(frame) > self.policy.segment_max_bytes
        ):
            self.flush()
            self._start_segment(seq)
        self._batch.append(frame)
        self._batch_bytes += len(frame)
        self._batch_last_seq = seq
        if self._batch_bytes >= _WRITE_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the queued frames in one ``os.write``; on failure cut off what was written, and raise."""
        if not self._batch:
            return
        data = b"".join(self._batch)
        last_seq = self._batch_last_seq
        self._batch, self._batch_bytes = [], 0
        fd, active = self._descriptor(), self._active
        assert active is not None
        try:
            written = os.write(fd, data)
        except OSError:
            self._undo(fd, active)
            raise
        if written != len(data):
            self._undo(fd, active)
            raise OSError(errno.ENOSPC, f"a short write to {active.path}: {written} of {len(data)} bytes")
        active.size += written
        self.head = last_seq
        self._dirty = True

    def skip_to(self, seq: int) -> None:
        """Go on at `seq`: a new segment named for it (an empty active segment is removed first)."""
        self.flush()
        if self._active is not None and self._active.size <= len(MAGIC):
            with contextlib.suppress(FileNotFoundError):
                self._active.path.unlink()
            self._retire_fd()
            self._active = None
        self._start_segment(seq)
        self.head = seq - 1

    def _descriptor(self) -> int:
        """The active segment's descriptor, opened on first use and cleared of a failed write's bytes."""
        assert self._active is not None
        if self._fd is None:
            self._fd = os.open(self._active.path, _OPEN_FLAGS)
        if self._torn:
            os.ftruncate(self._fd, self._active.size)
            self._torn = False
        return self._fd

    def _undo(self, fd: int, active: _Segment) -> None:
        try:
            os.ftruncate(fd, active.size)
        except OSError:
            self._torn = True

    def _start_segment(self, first_seq: int) -> None:
        """Make ``<first_seq>.log`` the active segment, created holding only ``MAGIC``."""
        path = self.directory / segment_name(first_seq)
        fd = os.open(path, _OPEN_FLAGS | os.O_CREAT, _FILE_MODE)
        try:
            if os.fstat(fd).st_size > len(MAGIC):
                raise OSError(errno.EEXIST, f"{path} already holds records")
            os.ftruncate(fd, 0)
            if os.write(fd, MAGIC) != len(MAGIC):
                raise OSError(errno.ENOSPC, f"a short write of {path}'s header")
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        if self._active is not None:
            self._closed.append(self._active)
            self._closed_bytes += self._active.size
        self._retire_fd()
        self._active, self._fd, self._torn = _Segment(first_seq, path, len(MAGIC)), fd, False
        self._dirty = self._dir_dirty = True
        self._enforce_retention()

    def _retire_fd(self) -> None:
        if self._fd is not None:
            self._retired.append(self._fd)
            self._fd = None

    def _enforce_retention(self) -> None:
        """Delete the oldest whole segments while the stream is larger than `LogPolicy.retain_bytes`."""
        active = self._active.size if self._active is not None else 0
        while self._closed and self._closed_bytes + active > self.policy.retain_bytes:
            oldest = self._closed[0]
            try:
                oldest.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as error:
                logger.warning("replica: cannot delete old segment %s: %s", oldest.path, error)
                return
            self._closed.popleft()
            self._closed_bytes -= oldest.size
            self._dir_dirty = True

    # -- syncing and closing ----------------------------------------------------------------------------------------

    @property
    def needs_sync(self) -> bool:
        return self._dirty or self._dir_dirty or bool(self._retired)

    def take_sync_work(self) -> SyncWork:
        """What the next sync must do; the stream counts as clean until `sync_failed` says otherwise."""
        work = SyncWork(
            fd=self._fd if self._dirty else None,
            retired=tuple(self._retired),
            directory=self.directory if self._dir_dirty else None,
        )
        self._dirty = self._dir_dirty = False
        self._retired = []
        return work

    def sync_failed(self, work: SyncWork) -> None:
        """The sync of `work` failed: do its syncs again next time (retired descriptors were closed anyway)."""
        self._dirty = self._dirty or work.fd is not None
        self._dir_dirty = self._dir_dirty or work.directory is not None

    def close(self) -> None:
        """Close every descriptor (after a sync: nothing is written here)."""
        for fd in (self._fd, *self._retired):
            if fd is not None:
                os.close(fd)
        self._fd, self._retired = None, []
