"""One event log record, and the turn from a registered message to a record's fields and back (pure).

A record is what an actor wrote to its own stream (DESIGN §3): who (`node`, `stream`), where in the stream
(`seq`: 1, 2, 3... gapless per stream, across segments and restarts), when (`ts_ns`, wall clock, for people;
`mono_ns`, the monotonic clock, which orders one host's events), what (`type` and schema `version` of a
registered bus message, and its `fields` as plain msgpack-native data), and why (`cause`: the id of the record
or bus message that led to it, e.g. ``"vrrp:41"``).

The log stores fields unstructured, exactly as written, so a reader that does not know a type (or knows a
newer version of it) still reads the record; only `record_message` needs the class, and it upcasts old
versions first (eventsourcing's ``upcast_vX_vY``, STYLE convention 7). What it cannot read is a
`RecordDecodeError` with a reason the caller counts, never a crash.
"""

from __future__ import annotations

import copy
import enum

import attrs

from ffo.bus.convert import ConversionError, structure, unstructure
from ffo.bus.messages import UnknownTypeError, UnknownVersionError, message, registration, registration_of, upcast
from ffo.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "Record",
    "RecordDecodeError",
    "RecordDecodeReason",
    "RecordEncodeError",
    "RecordsDropped",
    "fields_of",
    "record_message",
]


# slots=False on purpose: the reader builds one Record per stored record, and with a __dict__ it can fill all
# nine attributes at once (`ffo.eventlog.frame`), in half the time of the generated __init__. So: no validators
# here (they would be bypassed), and keep it a dict class.
@attrs.frozen(kw_only=True, slots=False)
class Record:
    """One entry of a stream, as stored: the fields are plain data, not yet the message class."""

    node: str
    """The node that wrote it."""
    stream: str
    """The stream (the writing actor's name): one directory of segments, one writer."""
    seq: int
    """Position in the stream, from 1, without gaps."""
    ts_ns: int
    """Wall clock, ns since the epoch: for display; it can jump."""
    mono_ns: int
    """CLOCK_MONOTONIC of the writing host, ns: orders the host's events (it restarts at boot)."""
    type: str
    """The stable name of a registered message (``vrrp.transition_made``)."""
    version: int
    """The schema version the fields were written with."""
    cause: str | None
    """The id of what led to it (``"vrrp:41"``, or a bus message id), if anything did."""
    fields: dict[str, object]
    """The message's fields, unstructured (msgpack-native), at `version`."""

    @property
    def id(self) -> str:
        """How other records and `ffo why` name this one: ``<stream>:<seq>``."""
        return f"{self.stream}:{self.seq}"


class RecordDecodeReason(enum.Enum):
    """Why a stored record could not be turned into its message; the value names its counter."""

    UNKNOWN_TYPE = "unknown_type"
    """No class is registered under its type name here (a newer node wrote it, or a plugin is not loaded)."""
    UNKNOWN_VERSION = "unknown_version"
    """Newer than the class here, or older than its upcasters reach."""
    BAD_FIELDS = "bad_fields"
    """The fields do not make the class, even after upcasting."""


class RecordDecodeError(RemoteProtocolError):
    """A record this node cannot read as a message: the data's fault (a file is input), so count and go on."""

    def __init__(self, record_id: str, reason: RecordDecodeReason, detail: str) -> None:
        super().__init__(record_id, reason, detail)
        self.record_id = record_id
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.record_id}: {self.reason.value}: {self.detail}"


class RecordEncodeError(LocalProtocolError, ValueError):
    """Our own record cannot be stored (fields that are not msgpack-native, a record over the size bound)."""


@message("log.records_dropped", version=1)
@attrs.frozen(kw_only=True)
class RecordsDropped:
    """The log was degraded (disk full or failing) and `count` records were dropped, not stored.

    Written when the log resumes, after the records it kept in memory: the gap in time is visible here
    (`first_mono_ns` to `last_mono_ns`, on the writer's monotonic clock), while the seqs stay gapless because
    a dropped record never got one.
    """

    count: int
    first_mono_ns: int
    last_mono_ns: int


def record_message(record: Record) -> object:
    """The message `record` stores, as an instance of its registered class at its current version.

    Raises `RecordDecodeError` (unknown type, unknown version, bad fields). The record is not changed: fields
    that need upcasting are copied first, as upcasters may change their argument.
    """
    try:
        kind = registration(record.type)
        fields = record.fields
        if record.version != kind.version:
            fields = upcast(record.type, record.version, copy.deepcopy(fields))
        return structure(fields, kind.cls)
    except UnknownTypeError as error:
        raise RecordDecodeError(record.id, RecordDecodeReason.UNKNOWN_TYPE, str(error)) from None
    except UnknownVersionError as error:
        raise RecordDecodeError(record.id, RecordDecodeReason.UNKNOWN_VERSION, str(error)) from None
    except ConversionError as error:
        detail = f"{record.type} v{record.version}: {error}"
        raise RecordDecodeError(record.id, RecordDecodeReason.BAD_FIELDS, detail) from None
    except RecursionError:
        detail = f"{record.type} v{record.version}: nested too deeply"
        raise RecordDecodeError(record.id, RecordDecodeReason.BAD_FIELDS, detail) from None


def fields_of(message: object) -> tuple[str, int, dict[str, object]]:
    """The type name, current version and unstructured fields of a registered message, ready to store.

    A class that is not a registered message is a `NotAMessageError`, and a value that does not match its
    annotations a `RecordEncodeError`: both are bugs of the caller, not conditions of the disk.
    """
    kind = registration_of(type(message))
    try:
        fields = unstructure(message)
    except ConversionError as error:
        raise RecordEncodeError(f"{kind.name}: {error}") from None
    if type(fields) is not dict:
        raise RecordEncodeError(f"{kind.name}: unstructured to a {type(fields).__name__}, not a map")
    return kind.name, kind.version, fields
