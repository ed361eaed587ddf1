"""The replica area: other nodes' streams, as pulled by resync, stored in the event log's own format.

Layout: ``<replica_dir>/<node>/<stream>/<first seq, 20 digits>.log``, segments exactly like a node's own
(``MAGIC`` then the frames, byte for byte as the source stored them), so `ffo.eventlog.reader.read_stream`
and ``read_merged(<replica_dir>/<node>)`` read a replica unchanged, and `ffo.eventlog.ranges.read_range`
serves it to a third node: any peer can bring a node up to date on any other.

What is stored is what the source wrote, checked again here: every frame's length and checksum, its body
(`decode_frame`), and that it belongs to the node and stream it was asked for. Seqs must follow the stored
head: a seq already stored is re-delivery and is counted, not written again (storing is idempotent); a seq
beyond the next is a gap, and storing stops there without writing it. A gap is crossed only on purpose, by
`ReplicaStore.skip_to`, which appends a marker to ``<replica_dir>/gaps.log`` (one JSON object per line: node,
stream, first and last missing seq, reason) and starts a new segment at the seq after the gap. The reader
reports that seq break between segments as OUT_OF_SEQUENCE damage, and at a stream's very start it reports
nothing; `gaps` says which breaks were recorded on purpose, so no gap is ever papered over.

Each stream's files are kept by `ffo.rpc.replica_stream` under the writer's rules (`ffo.eventlog.writer`):
frames go to the kernel in ``os.write`` calls of up to 1 MiB on ``O_APPEND`` descriptors, and reach the disk
in batches when the caller runs `ReplicaStore.sync` (``fdatasync``; from a worker thread if it likes: a lock
guards the state and is never held across a sync). A gap marker is synced at once, before the segment
after it exists (`ffo.rpc.gaps`). On open, the newest segment of every replica stream is checked as the
writer does (`plan_segment_end`): a torn or corrupt tail is cut off and reported in `ReplicaStore.recovery`,
and every complete frame before it is kept.

One store per replica directory (``flock``); memory holds one write batch, never a stream.
"""

from __future__ import annotations

import enum
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import attrs

from ffo.errors import FfoError, LocalProtocolError, RemoteProtocolError
from ffo.eventlog.frame import FrameProblem, decode_frame
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.reader import list_streams
from ffo.eventlog.record import Record
from ffo.eventlog.writer import RecoveryReport
from ffo.rpc.gaps import GAPS_FILE, Gap, append_gap, read_gaps, recover_gaps
from ffo.rpc.replica_stream import ReplicaStream, SyncWork
from ffo.rpc.wire import is_safe_name

__all__ = [
    "Gap",
    "RejectReason",
    "Rejection",
    "ReplicaBusyError",
    "ReplicaNameError",
    "ReplicaStore",
    "SeqGap",
    "StoreResult",
]

logger = logging.getLogger("ffo.rpc.replica")

_DIR_MODE: Final = 0o750


class ReplicaBusyError(FfoError):
    """Another store (another process, or an unclosed one in this one) has the replica directory open."""


class ReplicaNameError(RemoteProtocolError):
    """A node or stream name that cannot be a replica: unsafe as a directory name, or this node's own."""


class RejectReason(enum.Enum):
    """Why a frame was refused; the value names a counter."""

    BAD_FRAME = "bad_frame"
    """Its length, checksum or body is wrong: not a record."""
    TRAILING_BYTES = "trailing_bytes"
    """A good frame followed by more bytes: not one frame."""
    WRONG_STREAM = "wrong_stream"
    """A record of another node or stream than the one being stored."""


@attrs.frozen(kw_only=True)
class Rejection:
    """A frame `ReplicaStore.store` refused, and why."""

    index: int
    """The frame's position in the batch."""
    reason: RejectReason
    detail: str


@attrs.frozen(kw_only=True)
class SeqGap:
    """Storing stopped at a frame whose seq is `got` where `expected` was due: seqs in between are missing."""

    expected: int
    got: int


@attrs.frozen(kw_only=True)
class StoreResult:
    """What `ReplicaStore.store` did with a batch."""

    stored: int
    duplicates: int
    """Frames whose seq was already stored (re-delivery): skipped."""
    rejected: tuple[Rejection, ...]
    """Frames refused and skipped; storing went on with the next."""
    gap: SeqGap | None
    """Storing stopped here: neither this frame nor any after it was looked at."""
    examined: int
    """How many frames of the batch were looked at (all of them, unless `gap`)."""
    head: int
    """The stream's last stored seq afterwards."""


class ReplicaStore:
    """Other nodes' streams under one directory. Build it with `ReplicaStore.open`; close it (or ``with``)."""

    def __init__(self, *, directory: Path, local_node: str, policy: LogPolicy, dir_fd: int) -> None:
        self.directory = directory
        self.local_node = local_node
        self.policy = policy
        self.recovery: tuple[RecoveryReport, ...] = ()
        self._dir_fd: int | None = dir_fd
        self._streams: dict[tuple[str, str], ReplicaStream] = {}
        self._gaps: list[Gap] = []
        self._lock = threading.Lock()  # the state above; never held across fdatasync
        self._sync_lock = threading.Lock()  # one sync (or close) at a time
        self._dirty_dirs: set[Path] = set()
        self._closed = False

    @classmethod
    def open(cls, replica_dir: Path, *, local_node: str, policy: LogPolicy | None = None) -> ReplicaStore:
        """The store of `replica_dir` (created, mode 0750), every stream's newest segment recovered.

        Raises `ReplicaBusyError` if another store has it open, `OSError` if it cannot be created or read.
        """
        replica_dir.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        dir_fd = os.open(replica_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(dir_fd)
            raise ReplicaBusyError(f"{replica_dir}: another replica store has it open") from None
        store = cls(directory=replica_dir, local_node=local_node, policy=policy or LogPolicy(), dir_fd=dir_fd)
        try:
            store._recover()
        except BaseException:
            store._release()
            raise
        return store

    def _recover(self) -> None:
        reports = []
        for node_dir in list_streams(self.directory):
            if not self._acceptable(node_dir.name):
                logger.warning("replica %s: %s is not a peer's replica; left alone", self.directory, node_dir)
                continue
            for stream_dir in list_streams(node_dir):
                if is_safe_name(stream_dir.name):
                    state, report = ReplicaStream.recover(stream_dir, self.policy)
                    self._streams[node_dir.name, stream_dir.name] = state
                    reports += [report] if report is not None else []
        gaps_report = recover_gaps(self.directory / GAPS_FILE)
        reports += [gaps_report] if gaps_report is not None else []
        self.recovery = tuple(reports)
        self._gaps = read_gaps(self.directory)

    def _acceptable(self, name: str) -> bool:
        return is_safe_name(name) and name not in (self.local_node, GAPS_FILE)

    def _check_names(self, node: str, stream: str) -> None:
        if not self._acceptable(node):
            why = "this node's own name" if node == self.local_node else "not a safe directory name"
            raise ReplicaNameError(f"node {node!r}: {why}")
        if not is_safe_name(stream):
            raise ReplicaNameError(f"stream {stream!r}: not a safe directory name")

    # -- reading the state ----------------------------------------------------------------------------------------

    def heads(self) -> dict[tuple[str, str], int]:
        """(node, stream) → last stored seq, for every replica stream held."""
        with self._lock:
            return {key: state.head for key, state in self._streams.items()}

    def gaps(self) -> list[Gap]:
        """Every gap recorded by `skip_to`, oldest first."""
        with self._lock:
            return list(self._gaps)

    def stream_dir(self, node: str, stream: str) -> Path:
        """Where the replica of `node`'s `stream` is (or would be) stored; `ReplicaNameError` for bad names."""
        self._check_names(node, stream)
        return self.directory / node / stream

    # -- storing ---------------------------------------------------------------------------------------------------

    def store(self, node: str, stream: str, frames: Sequence[bytes]) -> StoreResult:
        """Store `frames` of `node`'s `stream` that follow its head, in order (see the module docstring).

        Raises `ReplicaNameError` for a node or stream that cannot be stored, and `OSError` when the disk
        fails; frames written before the failure stay stored, and `heads` says how far.
        """
        self._check_names(node, stream)
        with self._lock:
            if self._closed:
                raise LocalProtocolError(f"replica {self.directory}: store after close")
            state = self._streams.get((node, stream))
            try:
                return self._store(state, node, stream, frames)
            finally:
                state = self._streams.get((node, stream))
                if state is not None:
                    state.flush()

    def _store(self, state: ReplicaStream | None, node: str, stream: str, frames: Sequence[bytes]) -> StoreResult:
        head = 0 if state is None else state.head
        stored = duplicates = 0
        rejected: list[Rejection] = []
        gap, examined = None, len(frames)
        for index, frame in enumerate(frames):
            record, end = decode_frame(frame, 0)
            if not isinstance(record, Record) or (record.node, record.stream, end) != (node, stream, len(frame)):
                rejected.append(_rejection(index, frame, record, end=end, node=node, stream=stream))
            elif record.seq <= head:
                duplicates += 1
            elif record.seq > head + 1:
                gap, examined = SeqGap(expected=head + 1, got=record.seq), index
                break
            else:
                state = state or self._new_stream(node, stream)
                state.append(frame, record.seq)
                head, stored = record.seq, stored + 1
        if state is not None:
            state.flush()
        return StoreResult(
            stored=stored,
            duplicates=duplicates,
            rejected=tuple(rejected),
            gap=gap,
            examined=examined,
            head=0 if state is None else state.head,
        )

    def skip_to(self, node: str, stream: str, seq: int, reason: str) -> Gap:
        """Record that seqs head+1 .. `seq` - 1 of `node`'s `stream` are lost, and store on from `seq`.

        The marker is in ``gaps.log`` and on disk before the new segment at `seq` is created. `seq` must lie
        beyond the next seq due (`LocalProtocolError` otherwise: there is nothing to skip).
        """
        self._check_names(node, stream)
        with self._lock:
            if self._closed:
                raise LocalProtocolError(f"replica {self.directory}: skip_to after close")
            state = self._streams.get((node, stream))
            head = 0 if state is None else state.head
            if seq <= head + 1:
                raise LocalProtocolError(f"{node}/{stream}: skip to {seq}, but {head + 1} is due: nothing to skip")
            gap = Gap(node=node, stream=stream, first_seq=head + 1, last_seq=seq - 1, reason=reason)
            append_gap(self.directory, gap)
            self._gaps.append(gap)
            state = state or self._new_stream(node, stream)
            state.skip_to(seq)
            logger.warning("replica %s/%s: seqs %d..%d skipped: %s", node, stream, gap.first_seq, gap.last_seq, reason)
            return gap

    def _new_stream(self, node: str, stream: str) -> ReplicaStream:
        node_dir = self.directory / node
        if not node_dir.is_dir():
            node_dir.mkdir(mode=_DIR_MODE, exist_ok=True)
            self._dirty_dirs.add(self.directory)
        directory = node_dir / stream
        if not directory.is_dir():
            directory.mkdir(mode=_DIR_MODE, exist_ok=True)
            self._dirty_dirs.add(node_dir)
        state = ReplicaStream(directory, self.policy)
        self._streams[node, stream] = state
        return state

    # -- syncing and closing ---------------------------------------------------------------------------------------

    @property
    def needs_sync(self) -> bool:
        with self._lock:
            return bool(self._dirty_dirs) or any(state.needs_sync for state in self._streams.values())

    def sync(self) -> None:
        """``fdatasync`` every segment written since the last sync, and the directories that changed; close
        segments replaced since. Raises the first `OSError`; what failed is tried again by the next sync."""
        with self._sync_lock:
            self._sync_locked()

    def _sync_locked(self) -> None:
        with self._lock:
            work = [(state, state.take_sync_work()) for state in self._streams.values() if state.needs_sync]
            directories, self._dirty_dirs = self._dirty_dirs, set()
        failed: list[tuple[ReplicaStream, SyncWork]] = []
        failure: OSError | None = None
        for state, item in work:
            error = _sync_stream(item)
            if error is not None:
                failed.append((state, item))
                failure = failure or error
        for directory in directories:
            error = _sync_directory(directory)
            if error is not None:
                failure = failure or error
        if failure is not None:
            with self._lock:
                for state, item in failed:
                    state.sync_failed(item)
                self._dirty_dirs |= directories
            raise failure

    def close(self) -> None:
        """Sync, close every file and let another store open the directory."""
        with self._sync_lock:
            with self._lock:
                if self._closed:
                    return
                self._closed = True
            try:
                self._sync_locked()
            finally:
                with self._lock:
                    self._release()

    def _release(self) -> None:
        for state in self._streams.values():
            state.close()
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    def __enter__(self) -> ReplicaStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _rejection(
    index: int, frame: bytes, record: Record | FrameProblem, *, end: int, node: str, stream: str
) -> Rejection:
    """Why `frame` (decoded as `record`, ending at `end`) is not one whole good frame of `node`'s `stream`."""
    if not isinstance(record, Record):
        return Rejection(index=index, reason=RejectReason.BAD_FRAME, detail=f"{record.kind.value}: {record.detail}")
    if end != len(frame):
        detail = f"{len(frame) - end} bytes after the frame"
        return Rejection(index=index, reason=RejectReason.TRAILING_BYTES, detail=detail)
    if record.node != node or record.stream != stream:
        detail = f"a record of {record.node}/{record.stream} (seq {record.seq}), not of {node}/{stream}"
        return Rejection(index=index, reason=RejectReason.WRONG_STREAM, detail=detail)
    raise LocalProtocolError(f"frame {index} of {node}/{stream} was refused for no reason")


def _sync_stream(work: SyncWork) -> OSError | None:
    failure = None
    for fd in work.retired:
        failure = _sync(fd, os.fdatasync) or failure
        os.close(fd)
    if work.fd is not None:
        failure = _sync(work.fd, os.fdatasync) or failure
    if work.directory is not None:
        failure = _sync_directory(work.directory) or failure
    return failure


def _sync(fd: int, sync: Callable[[int], None]) -> OSError | None:
    try:
        sync(fd)
    except OSError as error:
        return error
    return None


def _sync_directory(directory: Path) -> OSError | None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        return error
    try:
        return _sync(fd, os.fsync)
    finally:
        os.close(fd)
