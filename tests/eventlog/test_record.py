"""Records to messages and back (pure): upcasting a stored v1 sample, and what cannot be read is counted."""

from __future__ import annotations

import attrs
import pytest

from ffo.bus.messages import Heartbeat, NotAMessageError
from ffo.eventlog.frame import decode_frame
from ffo.eventlog.record import (
    Record,
    RecordDecodeError,
    RecordDecodeReason,
    RecordEncodeError,
    RecordsDropped,
    fields_of,
    record_message,
)
from tests.eventlog.helpers import Sample

# A test.eventlog.sample record written at v1 ({"name", "value"}; v2 added "unit"), exactly as it is stored:
# the frame is kept as bytes so that a change of the frame format or of the upcaster shows here.
STORED_V1_FRAME = bytes.fromhex(
    "a16cacc14f00000099a36c6231a773656e736f7273b4746573742e6576656e746c6f672e73616d706c650129cf18867251edfa0000"
    "cf000000012a05f200a7767272703a343082a46e616d65a3727474a576616c75650c"
)


def stored(**change: object) -> Record:
    parts: dict[str, object] = {
        "node": "lb1",
        "stream": "sensors",
        "seq": 3,
        "ts_ns": 1,
        "mono_ns": 2,
        "type": "test.eventlog.sample",
        "version": 2,
        "cause": None,
        "fields": {"name": "rtt", "value": 12, "unit": "us"},
    }
    return Record(**{**parts, **change})  # type: ignore[arg-type]


def test_the_stored_v1_sample_is_upcast_to_the_current_class() -> None:
    record, _ = decode_frame(STORED_V1_FRAME, 0)
    assert isinstance(record, Record)
    assert (record.id, record.type, record.version, record.cause) == (
        "sensors:41",
        "test.eventlog.sample",
        1,
        "vrrp:40",
    )
    assert record_message(record) == Sample(name="rtt", value=12, unit="ms")
    assert record.fields == {"name": "rtt", "value": 12}, "upcasting must not change the stored record"


def test_a_current_record_is_structured_as_is() -> None:
    assert record_message(stored()) == Sample(name="rtt", value=12, unit="us")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"type": "test.eventlog.never_registered"}, RecordDecodeReason.UNKNOWN_TYPE),
        ({"version": 3}, RecordDecodeReason.UNKNOWN_VERSION),
        ({"version": 0}, RecordDecodeReason.UNKNOWN_VERSION),
        ({"fields": {"name": "rtt", "value": "12", "unit": "us"}}, RecordDecodeReason.BAD_FIELDS),
        ({"fields": {"name": "rtt", "value": 12, "unit": "us", "extra": 1}}, RecordDecodeReason.BAD_FIELDS),
        ({"version": 1, "fields": {"name": "rtt"}}, RecordDecodeReason.BAD_FIELDS),
    ],
)
def test_what_cannot_be_read_is_a_decode_error_with_a_reason(
    change: dict[str, object], reason: RecordDecodeReason
) -> None:
    with pytest.raises(RecordDecodeError) as caught:
        record_message(stored(**change))
    assert caught.value.reason is reason
    assert caught.value.record_id == "sensors:3"
    assert str(caught.value).startswith(f"sensors:3: {reason.value}: ")


def test_fields_of_a_message() -> None:
    beat = Heartbeat(actor="vrrp", pid=7, seq=1, loop_lag_ns=5)
    assert fields_of(beat) == ("actor.heartbeat", 1, {"actor": "vrrp", "pid": 7, "seq": 1, "loop_lag_ns": 5})
    assert fields_of(RecordsDropped(count=2, first_mono_ns=1, last_mono_ns=3))[:2] == ("log.records_dropped", 1)


def test_fields_of_anything_else_is_our_bug() -> None:
    @attrs.frozen
    class Unregistered:
        x: int

    with pytest.raises(NotAMessageError):
        fields_of(Unregistered(1))
    with pytest.raises(RecordEncodeError):
        fields_of(Heartbeat(actor="vrrp", pid="7", seq=1, loop_lag_ns=5))  # type: ignore[arg-type]
