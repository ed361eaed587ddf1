"""The durable event log: one append-only stream of records per actor (DESIGN §3).

Pure parts are re-exported here: the record and its message conversions (`ffo.eventlog.record`), the frame
format (`ffo.eventlog.frame`) and the policy (`ffo.eventlog.policy`). The parts that touch files are imported
from their modules, so that importing `ffo.eventlog` stays free of I/O:

- `ffo.eventlog.writer`: `EventWriter`, the single writer of a stream (append, rotation, retention, recovery);
- `ffo.eventlog.committer`: `run_group_commit`, the task that fsyncs in batches;
- `ffo.eventlog.reader`: `read_stream`, `read_merged`, `follow`, which report damage as `Corruption` items.

On disk: ``<state_dir>/events/<stream>/<first seq, 20 digits>.log``, each segment ``MAGIC`` then frames.
"""

from ffo.eventlog.frame import MAGIC, MAX_BODY_BYTES, FrameProblem, ProblemKind, decode_frame, encode_frame
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.record import (
    Record,
    RecordDecodeError,
    RecordDecodeReason,
    RecordEncodeError,
    RecordsDropped,
    fields_of,
    record_message,
)

__all__ = [
    "MAGIC",
    "MAX_BODY_BYTES",
    "FrameProblem",
    "LogPolicy",
    "ProblemKind",
    "Record",
    "RecordDecodeError",
    "RecordDecodeReason",
    "RecordEncodeError",
    "RecordsDropped",
    "decode_frame",
    "encode_frame",
    "fields_of",
    "record_message",
]
