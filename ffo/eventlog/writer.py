"""The single writer of one actor's stream: write-ahead appends, group commit, rotation, retention, and a
degraded mode for a full or failing disk (DESIGN §3).

Durability. `append` hands the whole frame to the kernel in one ``os.write`` on an ``O_APPEND`` descriptor and
keeps no user-space buffer, so a process killed right after `append` returns loses nothing: the record is in
the page cache. Reaching the disk is batched: `sync` (``fdatasync``) runs from `run_group_commit` in a worker
thread every `LogPolicy.fsync_interval_ns`, never on the event loop and never inside `append`.

A failing disk never stops failover. A write that fails (ENOSPC, EDQUOT, EIO...) is undone if it was short
(``ftruncate`` back to the last good end, so no torn record stays in the middle of a file), logged at ERROR
once per episode, and the stream turns *degraded*: records wait in memory, in order and with their seqs, up
to `LogPolicy.max_pending_bytes`; after that they are dropped and counted, and get no seq, so the stream stays
gapless. Writing is tried again at most every `LogPolicy.retry_interval_ns` (on `append` and on `retry`).
When it works, the waiting records are written, then a ``log.records_dropped`` record if any were dropped, and
the log says it resumed. `append` raises only for our own bugs (a message that is not registered, fields that
cannot be stored), never for the disk.

Recovery. `open` checks the newest segment (`ffo.eventlog.frame.plan_segment_end`): a torn or corrupt tail is
truncated and reported (`RecoveryReport`), every complete record before it is kept, and seqs continue after
the last good one. Older segments are not read, so opening costs one segment however long the log; damage
there is the reader's to report.

Threads. `sync` may run in a worker thread while `append` runs on the event loop: a lock guards the writer's
state and is never held across ``fdatasync``; a segment replaced by rotation is closed by the next `sync`,
after its last ``fdatasync``, so a descriptor is never closed under a running sync.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

import attrs

from ffo.clock import Clock
from ffo.errors import FfoError, LocalProtocolError
from ffo.eventlog.frame import (
    MAGIC,
    FrameEncoder,
    FrameProblem,
    ProblemKind,
    decode_frame,
    plan_segment_end,
    segment_name,
)
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.reader import list_segments
from ffo.eventlog.record import Record, RecordEncodeError, RecordsDropped, fields_of

__all__ = ["EventWriter", "RecoveryReport", "StreamBusyError", "WriterStatus"]

logger = logging.getLogger("ffo.eventlog")

_FILE_MODE: Final = 0o640
_DIR_MODE: Final = 0o750
_OPEN_FLAGS: Final = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
_FIRST_FRAME_PEEK: Final = 64 << 10
_NEVER: Final = 1 << 64


class StreamBusyError(FfoError):
    """Another writer (another process, or an unclosed writer in this one) has the stream open: one writer
    per stream, or seqs would be repeated."""


@attrs.frozen(kw_only=True)
class RecoveryReport:
    """What `open` cut off the end of the newest segment: a torn or corrupt tail."""

    segment: Path
    offset: int
    """The new end of the segment: everything before it was kept."""
    bytes_dropped: int
    kind: ProblemKind
    reason: str


@attrs.frozen(kw_only=True)
class WriterStatus:
    """A snapshot of one writer's counters (trio's ``statistics()``: an immutable record)."""

    stream: str
    next_seq: int
    degraded: bool
    """Writing or syncing fails; records wait in memory (`pending`) or are dropped (`dropped`)."""
    last_error: str | None
    """The most recent I/O error, kept after the log resumes."""
    pending: int
    pending_bytes: int
    dropped: int
    """Records dropped since open (each episode's count is also logged as ``log.records_dropped``)."""
    records_written: int
    bytes_written: int
    syncs: int
    write_errors: int
    sync_errors: int
    segments: int


@attrs.define
class _Segment:
    first_seq: int
    path: Path
    size: int
    first_ts_ns: int | None
    """Wall-clock ts of its first record, read lazily for retention; None while unknown or empty."""
    rotate_at_ns: int = _NEVER
    """When the active segment is old enough to rotate (by record ts)."""

    def started(self, ts_ns: int, max_age_ns: int) -> None:
        """Its first record, written at `ts_ns`, starts its age."""
        self.first_ts_ns = ts_ns
        self.rotate_at_ns = ts_ns + max_age_ns


@attrs.define
class _Counts:
    records: int = 0
    bytes: int = 0
    dropped: int = 0
    deleted: int = 0
    syncs: int = 0
    write_errors: int = 0
    sync_errors: int = 0


@attrs.frozen
class _Pending:
    frame: bytes
    seq: int
    ts_ns: int


class EventWriter:
    """Appends records to one stream. Build it with `EventWriter.open`; close it (or use ``with``)."""

    def __init__(
        self, *, directory: Path, node: str, stream: str, clock: Clock, policy: LogPolicy, dir_fd: int
    ) -> None:
        self.directory = directory
        self.node = node
        self.stream = stream
        self.policy = policy
        self.recovery: RecoveryReport | None = None
        self._clock = clock
        self._encoder = FrameEncoder(node, stream)
        self._dropped_type = fields_of(RecordsDropped(count=0, first_mono_ns=0, last_mono_ns=0))[:2]
        self._dir_fd: int | None = dir_fd
        self._lock = threading.Lock()  # the state below; never held across fdatasync
        self._sync_lock = threading.Lock()  # one sync (or close) at a time
        self._fd: int | None = None
        self._active: _Segment | None = None
        self._closed_segments: list[_Segment] = []
        self._closed_bytes = 0  # their total size, for retention by size after every write
        self._stuck = False  # an old segment could not be deleted: not tried again before the next rotation
        self._next_seq = 1
        self._pending: collections.deque[_Pending] = collections.deque()
        self._pending_bytes = 0
        self._degraded = False
        self._sync_failed = False
        self._torn = False  # the active file may hold bytes past `_active.size`: truncate before writing
        self._last_attempt_ns = 0
        self._episode_dropped = 0
        self._drop_first_ns = self._drop_last_ns = 0
        self._dirty = False
        self._dir_dirty = False
        self._retired: list[int] = []
        self._last_error: str | None = None
        self._counts = _Counts()
        self._segment_max_bytes = policy.segment_max_bytes  # read on every append: kept at hand
        self._retain_bytes = policy.retain_bytes
        self._closed = False

    # -- opening and recovery ---------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, directory: Path, *, node: str, stream: str, clock: Clock, policy: LogPolicy | None = None
    ) -> EventWriter:
        """The writer of the stream in `directory` (created, mode 0750), its newest segment recovered.

        Raises `StreamBusyError` if another writer has it open, and `OSError` if the directory cannot be
        created or read; a disk that cannot take a new segment only makes the writer start degraded.
        """
        directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(dir_fd)
            raise StreamBusyError(f"{directory}: another writer has this stream open") from None
        writer = cls(
            directory=directory, node=node, stream=stream, clock=clock, policy=policy or LogPolicy(), dir_fd=dir_fd
        )
        try:
            writer._recover()
        except BaseException:
            writer._release()
            raise
        return writer

    def _recover(self) -> None:
        segments = list_segments(self.directory)
        for first, path in segments[:-1]:
            self._closed_segments.append(_Segment(first, path, _size(path), None))
        self._closed_bytes = sum(segment.size for segment in self._closed_segments)
        with self._lock:
            if segments:
                self._recover_newest(*segments[-1])
            if self._fd is None:
                error = self._start_segment(self._next_seq, None)
                if error is not None:
                    self._enter_degraded(error, "create a segment")
            self._enforce_retention(self._clock.wall_ns())

    def _recover_newest(self, first_seq: int, path: Path) -> None:
        """Continue the newest segment after its last good frame, cutting off a torn or corrupt tail."""
        data = path.read_bytes()
        end = plan_segment_end(data, first_seq)
        for start, stop, problem in end.damaged:
            self._log(
                logging.ERROR, f"{path} is corrupt at bytes {start}..{stop} ({problem.detail}); later records kept"
            )
        if end.bad_header is not None:
            self._log(logging.ERROR, f"{path}: {end.bad_header.detail}; its frames are kept")
        if end.cut is not None:
            self._report_cut(path, data, end.keep, end.cut)
        self._next_seq = end.next_seq
        self._active = _Segment(first_seq, path, max(end.keep, len(MAGIC)), None)
        if end.first_ts_ns is not None:
            self._active.started(end.first_ts_ns, self.policy.segment_max_age_ns)
        self._open_active(path, None if end.cut is None else end.keep)

    def _report_cut(self, path: Path, data: bytes, offset: int, problem: FrameProblem) -> None:
        self.recovery = RecoveryReport(
            segment=path, offset=offset, bytes_dropped=len(data) - offset, kind=problem.kind, reason=problem.detail
        )
        dropped, why = len(data) - offset, f"{problem.kind.value}: {problem.detail}"
        self._log(logging.WARNING, f"truncated {path} at byte {offset}, dropping a {dropped}-byte tail ({why})")

    def _open_active(self, path: Path, cut: int | None) -> None:
        """Open the newest segment for appending; truncate it at `cut` first (rewriting the header at 0)."""
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as error:
            self._active = None
            self._enter_degraded(error, f"open {path.name}")
            return
        self._fd = fd
        if cut is None:
            return
        try:
            os.ftruncate(fd, cut)
            if cut == 0:
                _write_all(fd, MAGIC)
        except OSError as error:  # leave it (the reader reports the tail) and start a new segment instead
            self._retired.append(fd)
            self._fd, self._active = None, None
            self._enter_degraded(error, f"truncate {path.name}")
        self._dirty = True

    # -- appending --------------------------------------------------------------------------------------------

    def append(
        self, message: object, *, cause: str | None = None, mono_ns: int | None = None, ts_ns: int | None = None
    ) -> int | None:
        """Append a registered message; its seq, or None if it was dropped (the disk fails and the memory
        queue is full). The clocks default to now. Never raises for the disk."""
        type_name, version, fields = fields_of(message)
        return self._append(type_name, version, fields, cause=cause, mono_ns=mono_ns, ts_ns=ts_ns)

    def append_record(
        self,
        type_name: str,
        version: int,
        fields: dict[str, object],
        *,
        cause: str | None = None,
        mono_ns: int | None = None,
        ts_ns: int | None = None,
    ) -> int | None:
        """Append already-unstructured fields (a record from elsewhere) as `type_name` at `version`."""
        if type(fields) is not dict or not all(type(key) is str for key in fields):
            raise RecordEncodeError(f"{type_name}: fields must be a map with str keys")
        return self._append(type_name, version, fields, cause=cause, mono_ns=mono_ns, ts_ns=ts_ns)

    def _append(
        self,
        type_name: str,
        version: int,
        fields: dict[str, object],
        *,
        cause: str | None,
        mono_ns: int | None,
        ts_ns: int | None,
    ) -> int | None:
        clock = self._clock
        mono = clock.monotonic_ns() if mono_ns is None else mono_ns
        ts = clock.wall_ns() if ts_ns is None else ts_ns
        with self._lock:
            if self._closed:
                raise LocalProtocolError(f"event log {self.node}/{self.stream}: append after close")
            if self._degraded:
                self._retry_locked(force=False)
            seq = self._next_seq
            frame = self._encoder.encode(
                type_name, version, seq=seq, ts_ns=ts, mono_ns=mono, cause=cause, fields=fields
            )
            if self._degraded:
                return self._hold(frame, seq, ts, mono)
            self._next_seq = seq + 1
            error = self._write(frame, seq, ts)
            if error is not None:
                self._enter_degraded(error, f"write seq {seq}")
                self._queue(_Pending(frame, seq, ts))
            return seq

    def _hold(self, frame: bytes, seq: int, ts_ns: int, mono_ns: int) -> int | None:
        """While degraded: keep the record in memory if it fits and nothing was dropped yet, else drop it."""
        if self._episode_dropped == 0 and self._pending_bytes + len(frame) <= self.policy.max_pending_bytes:
            self._next_seq = seq + 1
            self._queue(_Pending(frame, seq, ts_ns))
            return seq
        if self._episode_dropped == 0:
            self._drop_first_ns = mono_ns
            held = f"{self._pending_bytes} bytes of records wait in memory, the limit"
            self._log(logging.WARNING, f"{held}: dropping records until the disk takes writes again")
        self._episode_dropped += 1
        self._drop_last_ns = mono_ns
        self._counts.dropped += 1
        return None

    def _queue(self, pending: _Pending) -> None:
        self._pending.append(pending)
        self._pending_bytes += len(pending.frame)

    def _write(self, frame: bytes, seq: int, ts_ns: int) -> OSError | None:
        """Write one frame at the end of the active segment (rotating first when due); the error, if any,
        with the file left as it was."""
        active = self._active
        if (
            self._fd is None
            or active is None
            or (
                active.size > len(MAGIC)  # an empty segment takes any record, even one over the size limit
                and (active.size + len(frame) > self._segment_max_bytes or ts_ns >= active.rotate_at_ns)
            )
        ):
            error = self._start_segment(seq, ts_ns)
            if error is not None:
                return error
        fd, active = self._fd, self._active
        assert fd is not None and active is not None
        try:
            written = os.write(fd, frame)
        except OSError as error:
            self._undo(fd, active)
            return error
        if written != len(frame):
            self._undo(fd, active)
            return OSError(
                errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (a short write, {written} of {len(frame)} bytes)"
            )
        active.size += written
        if active.first_ts_ns is None:
            active.started(ts_ns, self.policy.segment_max_age_ns)
        self._dirty = True
        counts = self._counts
        counts.records += 1
        counts.bytes += written
        if self._closed_bytes + active.size > self._retain_bytes and self._closed_segments and not self._stuck:
            self._enforce_retention(ts_ns)
        return None

    def _undo(self, fd: int, active: _Segment) -> None:
        """Cut a partly written frame off again, so that no torn record stays before later ones."""
        try:
            os.ftruncate(fd, active.size)
        except OSError:
            self._torn = True

    def _start_segment(self, first_seq: int, ts_ns: int | None) -> OSError | None:
        """Make `<first_seq>.log` the active segment, for a record written at `ts_ns` (None: an empty segment,
        whose first record will start its age); the old one is closed by the next `sync`."""
        path = self.directory / segment_name(first_seq)
        try:
            fd = os.open(path, _OPEN_FLAGS | os.O_CREAT, _FILE_MODE)
        except OSError as error:
            return error
        try:
            if os.fstat(fd).st_size > len(MAGIC):
                raise OSError(errno.EEXIST, f"{path.name} already holds records")
            os.ftruncate(fd, 0)
            _write_all(fd, MAGIC)
        except OSError as error:
            os.close(fd)
            _unlink_quietly(path)
            return error
        if self._fd is not None and self._active is not None:
            self._retired.append(self._fd)
            self._closed_segments.append(self._active)
            self._closed_bytes += self._active.size
        self._fd, self._active = fd, _Segment(first_seq, path, len(MAGIC), None)
        if ts_ns is not None:
            self._active.started(ts_ns, self.policy.segment_max_age_ns)
        self._torn = self._stuck = False
        self._dirty = self._dir_dirty = True
        self._enforce_retention(self._clock.wall_ns() if ts_ns is None else ts_ns)
        return None

    # -- retention --------------------------------------------------------------------------------------------

    def _enforce_retention(self, now_ts_ns: int) -> None:
        """Delete whole oldest segments while the stream is too large or they are too old; never the active."""
        closed = self._closed_segments
        active = self._active.size if self._active else 0
        while closed and self._closed_bytes + active > self.policy.retain_bytes:
            if not self._delete(closed[0]):
                return
            self._closed_bytes -= closed.pop(0).size
        while closed:
            newer = closed[1] if len(closed) > 1 else self._active
            newest_ts = None if newer is None else self._first_ts(newer)
            if newest_ts is None or now_ts_ns - newest_ts <= self.policy.retain_age_ns:
                return
            if not self._delete(closed[0]):
                return
            self._closed_bytes -= closed.pop(0).size

    def _first_ts(self, segment: _Segment) -> int | None:
        """When `segment` began (its first record's wall clock): every record before it is older."""
        if segment.first_ts_ns is None and segment is not self._active:
            try:
                with segment.path.open("rb") as file:
                    first, _ = decode_frame(file.read(_FIRST_FRAME_PEEK), len(MAGIC))
                segment.first_ts_ns = first.ts_ns if isinstance(first, Record) else None
            except OSError:
                return None
        return segment.first_ts_ns

    def _delete(self, segment: _Segment) -> bool:
        try:
            segment.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            if not self._stuck:
                self._log(logging.WARNING, f"cannot delete old segment {segment.path}: {error}")
            self._stuck = True
            return False
        self._dir_dirty = True
        self._counts.deleted += 1
        return True

    # -- degraded mode ----------------------------------------------------------------------------------------

    def _enter_degraded(self, error: OSError, what: str) -> None:
        self._last_error = f"{what}: {error}"
        self._counts.write_errors += 1
        self._last_attempt_ns = self._clock.monotonic_ns()
        if not (self._degraded or self._sync_failed):
            limit, every = self.policy.max_pending_bytes, self.policy.retry_interval_ns / 1e9
            self._log(logging.ERROR, f"degraded: {self._last_error}; up to {limit} bytes wait, retried every {every} s")
        self._degraded = True

    def retry(self, *, force: bool = False) -> bool:
        """Try to write what waits in memory, if degraded and the last try is `retry_interval_ns` old (or
        `force`); True when the log is no longer degraded by write errors."""
        with self._lock:
            return self._retry_locked(force=force)

    def _retry_locked(self, *, force: bool) -> bool:
        if not self._degraded:
            return True
        if self._closed:
            return False
        now = self._clock.monotonic_ns()
        if not force and now - self._last_attempt_ns < self.policy.retry_interval_ns:
            return False
        self._last_attempt_ns = now
        error = self._flush_pending()
        if error is None and self._episode_dropped:
            self._queue(self._dropped_record(now))
            error = self._flush_pending()
        if error is not None:
            self._last_error = f"retry: {error}"
            self._counts.write_errors += 1
            return False
        self._degraded = False
        if not self._sync_failed:
            self._log(logging.WARNING, "resumed")
        return True

    def _flush_pending(self) -> OSError | None:
        if self._torn and self._fd is not None and self._active is not None:
            try:
                os.ftruncate(self._fd, self._active.size)
            except OSError as error:
                return error
            self._torn = False
        while self._pending:
            waiting = self._pending[0]
            failure = self._write(waiting.frame, waiting.seq, waiting.ts_ns)
            if failure is not None:
                return failure
            self._pending.popleft()
            self._pending_bytes -= len(waiting.frame)
        if self._fd is None:
            return self._start_segment(self._next_seq, None)
        return None

    def _dropped_record(self, now_ns: int) -> _Pending:
        """The ``log.records_dropped`` record of this episode (with the next seq); the episode's count reset."""
        type_name, version = self._dropped_type
        fields = {
            "count": self._episode_dropped,
            "first_mono_ns": self._drop_first_ns,
            "last_mono_ns": self._drop_last_ns,
        }
        seq, ts = self._next_seq, self._clock.wall_ns()
        frame = self._encoder.encode(type_name, version, seq=seq, ts_ns=ts, mono_ns=now_ns, cause=None, fields=fields)
        self._next_seq += 1
        self._episode_dropped = 0
        return _Pending(frame, seq, ts)

    # -- group commit -----------------------------------------------------------------------------------------

    @property
    def needs_sync(self) -> bool:
        """Something was written (or a segment created, retired or deleted) since the last `sync`."""
        return self._dirty or self._dir_dirty or bool(self._retired) or self._sync_failed

    @property
    def degraded(self) -> bool:
        return self._degraded or self._sync_failed

    def sync(self) -> None:
        """``fdatasync`` what was written since the last sync (and the directory, for new or deleted
        segments); close segments retired by rotation. Errors degrade the log; they are never raised."""
        with self._sync_lock:
            self._sync_locked()

    def _sync_locked(self) -> None:
        with self._lock:
            fd = self._fd if self._dirty or self._sync_failed else None
            retired, self._retired = self._retired, []
            dir_fd = self._dir_fd if self._dir_dirty else None
            self._dirty = self._dir_dirty = False
        if fd is None and dir_fd is None and not retired:
            return
        failure = None
        for old in retired:
            failure = _sync_fd(old, os.fdatasync) or failure
            os.close(old)
        if fd is not None:
            failure = _sync_fd(fd, os.fdatasync) or failure
        if dir_fd is not None:
            failure = _sync_fd(dir_fd, os.fsync) or failure
        with self._lock:
            self._after_sync(failure)

    def _after_sync(self, failure: OSError | None) -> None:
        if failure is None:
            self._counts.syncs += 1
            if self._sync_failed and not self._degraded:
                self._log(logging.WARNING, "resumed: fdatasync works again")
            self._sync_failed = False
            return
        self._counts.sync_errors += 1
        self._last_error = f"fdatasync: {failure}"
        if not (self._degraded or self._sync_failed):
            self._log(logging.ERROR, f"degraded: {self._last_error}; records since the last sync may be lost")
        self._sync_failed = True
        self._dirty = self._dir_dirty = True

    # -- status and closing -----------------------------------------------------------------------------------

    @property
    def status(self) -> WriterStatus:
        with self._lock:
            counts = self._counts
            return WriterStatus(
                stream=self.stream,
                next_seq=self._next_seq,
                degraded=self._degraded or self._sync_failed,
                last_error=self._last_error,
                pending=len(self._pending),
                pending_bytes=self._pending_bytes,
                dropped=counts.dropped,
                records_written=counts.records,
                bytes_written=counts.bytes,
                syncs=counts.syncs,
                write_errors=counts.write_errors,
                sync_errors=counts.sync_errors,
                segments=len(self._closed_segments) + (self._active is not None),
            )

    def close(self) -> None:
        """Write what waits (one last try), sync, close the files and let another writer open the stream."""
        with self._sync_lock:
            with self._lock:
                if self._closed:
                    return
                self._retry_locked(force=True)
                if self._pending or self._episode_dropped:
                    lost = f"{len(self._pending)} records in memory and {self._episode_dropped} dropped are lost"
                    self._log(logging.ERROR, f"closed degraded: {lost}")
                self._closed = True
            self._sync_locked()
            with self._lock:
                self._release()

    def _release(self) -> None:
        for fd in (self._fd, *self._retired, self._dir_fd):
            if fd is not None:
                os.close(fd)
        self._fd, self._retired, self._dir_fd = None, [], None

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _log(self, level: int, text: str) -> None:
        logger.log(level, "event log %s/%s: %s", self.node, self.stream, text)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _write_all(fd: int, data: bytes) -> None:
    if os.write(fd, data) != len(data):
        raise OSError(errno.ENOSPC, f"short write of {len(data)} bytes")


def _sync_fd(fd: int, sync: Callable[[int], None]) -> OSError | None:
    try:
        sync(fd)
    except OSError as error:
        return error
    return None


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
