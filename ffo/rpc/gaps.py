"""The gap log of a replica area: which seqs of which replica stream were skipped on purpose, and why.

``<replica_dir>/gaps.log`` holds one JSON object per line (``node``, ``stream``, ``first_seq``, ``last_seq``,
``reason``), appended with one ``os.write`` and synced at once: a marker is on disk before the segment that
starts after its gap. Text, so that an operator can read it with ``cat``; one line per gap, so that a crash
can only tear the last line, which `recover_gaps` cuts off when the store opens. A line that does not parse
is logged and skipped by `read_gaps`; the seq break it described is still in the segments for the reader to
report.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Final

import attrs

from ffo.eventlog.frame import ProblemKind
from ffo.eventlog.writer import RecoveryReport

__all__ = ["GAPS_FILE", "Gap", "append_gap", "read_gaps", "recover_gaps"]

logger = logging.getLogger("ffo.rpc.replica")

GAPS_FILE: Final = "gaps.log"
_FILE_MODE: Final = 0o640


@attrs.frozen(kw_only=True)
class Gap:
    """Seqs `first_seq` .. `last_seq` of `node`'s `stream` are not in the replica, and never will be."""

    node: str
    stream: str
    first_seq: int
    last_seq: int
    reason: str


def append_gap(replica_dir: Path, gap: Gap) -> None:
    """Append `gap` to the gap log and sync it (and the directory, when the log is new), so that it is on
    disk before anything stored after the gap. Raises `OSError` when the disk fails."""
    path = replica_dir / GAPS_FILE
    created = not path.exists()
    line = json.dumps(attrs.asdict(gap), ensure_ascii=False, separators=(",", ":")) + "\n"
    data = line.encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, _FILE_MODE)
    try:
        size = os.fstat(fd).st_size
        written = os.write(fd, data)
        if written != len(data):
            os.ftruncate(fd, size)
            raise OSError(f"a short write to {path}: {written} of {len(data)} bytes")
        os.fdatasync(fd)
    finally:
        os.close(fd)
    if created:
        directory = os.open(replica_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def read_gaps(replica_dir: Path) -> list[Gap]:
    """The gaps recorded in `replica_dir`, oldest first (none if there is no gap log)."""
    try:
        lines = (replica_dir / GAPS_FILE).read_bytes().split(b"\n")
    except FileNotFoundError:
        return []
    gaps = []
    for number, line in enumerate(lines[:-1], start=1):  # the part after the last newline is torn or empty
        gap = _parse(line)
        if gap is None:
            logger.error("replica %s: line %d of %s is not a gap record; skipped", replica_dir, number, GAPS_FILE)
        else:
            gaps.append(gap)
    return gaps


def _parse(line: bytes) -> Gap | None:
    try:
        fields = json.loads(line)
    except ValueError:
        return None
    if type(fields) is not dict or set(fields) != {"node", "stream", "first_seq", "last_seq", "reason"}:
        return None
    names, seqs = (fields["node"], fields["stream"], fields["reason"]), (fields["first_seq"], fields["last_seq"])
    if not all(type(name) is str for name in names) or not all(type(seq) is int for seq in seqs):
        return None
    return Gap(**fields)


def recover_gaps(path: Path) -> RecoveryReport | None:
    """Cut a line torn by a crash off the end of the gap log; what was cut, if anything."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if not data or data.endswith(b"\n"):
        return None
    keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as file:
        file.truncate(keep)
        os.fdatasync(file.fileno())
    logger.warning("replica: truncated %s at byte %d, dropping a torn %d-byte line", path, keep, len(data) - keep)
    return RecoveryReport(
        segment=path, offset=keep, bytes_dropped=len(data) - keep, kind=ProblemKind.TRUNCATED, reason="a torn line"
    )
