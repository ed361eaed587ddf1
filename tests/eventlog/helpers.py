"""What the event log tests share: test-only message types, a writer factory, and reading a stream back."""

from __future__ import annotations

from pathlib import Path

import attrs

from ffo.bus.messages import message, upcaster
from ffo.clock import Clock, FakeClock
from ffo.eventlog.frame import MAGIC, decode_frame
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.reader import Corruption, read_stream
from ffo.eventlog.record import Record
from ffo.eventlog.writer import EventWriter

NODE = "n1"
WALL_EPOCH_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


@message("test.eventlog.tick", version=1)
@attrs.frozen(kw_only=True)
class Tick:
    """A small record, as most of a VRRP stream is."""

    n: int
    note: str = ""


@message("test.eventlog.sample", version=2)
@attrs.frozen(kw_only=True)
class Sample:
    """At v2: `unit` was added; v1 records (see test_record's stored sample) are upcast on read."""

    name: str
    value: int
    unit: str


@upcaster("test.eventlog.sample", from_version=1)
def _sample_v1_to_v2(fields: dict[str, object]) -> dict[str, object]:
    fields["unit"] = "ms"
    return fields


def fake_clock() -> FakeClock:
    return FakeClock(now_ns=1_000_000_000, wall_epoch_ns=WALL_EPOCH_NS)


def open_writer(directory: Path, clock: Clock | None = None, stream: str = "s", **policy: int) -> EventWriter:
    return EventWriter.open(
        directory, node=NODE, stream=stream, clock=clock or fake_clock(), policy=LogPolicy(**policy)
    )


def read_all(directory: Path) -> tuple[list[Record], list[Corruption]]:
    records: list[Record] = []
    damage: list[Corruption] = []
    for item in read_stream(directory):
        if isinstance(item, Record):
            records.append(item)
        else:
            damage.append(item)
    return records, damage


def read_clean(directory: Path) -> list[Record]:
    """The stream's records, asserting it reads without any damage and with gapless seqs."""
    records, damage = read_all(directory)
    assert damage == []
    assert [record.seq for record in records] == list(range(records[0].seq, records[0].seq + len(records)))
    return records


def segment_records(path: Path) -> list[Record]:
    """The records of one clean segment file, in file order."""
    data, offset, records = path.read_bytes(), len(MAGIC), []
    while offset < len(data):
        record, offset = decode_frame(data, offset)
        assert isinstance(record, Record), record
        records.append(record)
    return records
