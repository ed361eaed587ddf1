"""The replica store: a peer's stream pulled through `read_range` and stored gives back the very records the
peer wrote; re-delivery is idempotent; gaps stop storing until skipped on purpose, and every skip is on
record; a torn tail is recovered on reopen; bad or foreign frames and unsafe names are refused."""

from __future__ import annotations

import errno
import os
import random
import tempfile
import threading
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ffo.errors import LocalProtocolError
from ffo.eventlog.frame import MAGIC, ProblemKind
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.ranges import read_range, stream_heads
from ffo.eventlog.reader import list_segments, read_merged, read_stream
from ffo.eventlog.record import Record
from ffo.rpc.replica import (
    Gap,
    RejectReason,
    ReplicaBusyError,
    ReplicaNameError,
    ReplicaStore,
    SeqGap,
)
from tests.eventlog.helpers import NODE, Sample, Tick, fake_clock, open_writer, read_all, read_clean

LOCAL = "local"


def write_source(directory: Path, count: int, *, stream: str = "s", **policy: int) -> list[Record]:
    """A stream as a node writes it (records of two types, some with causes), and its records read back."""
    clock = fake_clock()
    with open_writer(directory / stream, clock=clock, stream=stream, **policy) as writer:
        for n in range(count):
            clock.advance(1000 + n)
            message = Sample(name=f"m{n}", value=n, unit="ms") if n % 3 == 0 else Tick(n=n, note="é" * (n % 5))
            writer.append(message, cause=f"{stream}:{n}" if n % 2 else None)
    return read_clean(directory / stream)


def frames_of(directory: Path, from_seq: int = 1) -> list[bytes]:
    """The stored frames of a clean stream from `from_seq`, via `read_range`."""
    frames: list[bytes] = []
    while True:
        found = read_range(directory, from_seq, max_records=1000, max_bytes=1 << 20)
        assert found.damage is None
        frames += found.frames
        if not found.frames:
            break
        from_seq = found.next_seq
    return frames


def open_store(directory: Path, **policy: int) -> ReplicaStore:
    return ReplicaStore.open(directory, local_node=LOCAL, policy=LogPolicy(**policy))


def test_a_stream_pulled_in_batches_reads_back_identical(tmp_path: Path) -> None:
    source = tmp_path / "source" / "events"
    written = write_source(source, 300, segment_max_bytes=2000)
    other = write_source(source, 40, stream="vip")
    with open_store(tmp_path / "replica", segment_max_bytes=3000) as store:
        for stream in ("s", "vip"):
            next_seq = 1
            while True:
                found = read_range(source / stream, next_seq, max_records=17, max_bytes=1500)
                if not found.frames:
                    break
                result = store.store(NODE, stream, found.frames)
                assert (result.stored, result.duplicates, result.rejected, result.gap) == (
                    len(found.frames),
                    0,
                    (),
                    None,
                )
                next_seq = found.next_seq
        assert store.heads() == {(NODE, "s"): 300, (NODE, "vip"): 40}
        store.sync()
        assert not store.needs_sync
    replica = tmp_path / "replica" / NODE
    assert read_clean(replica / "s") == written  # every field of every record
    assert len(list_segments(replica / "s")) > 1
    assert list(read_merged(replica)) == list(read_merged(source))
    assert [item for item in read_merged(replica) if isinstance(item, Record) and item.stream == "vip"] == other
    assert stream_heads(replica) == {"s": 300, "vip": 40}


def test_re_delivery_is_counted_and_stored_once(tmp_path: Path) -> None:
    source = tmp_path / "events"
    written = write_source(source, 30)
    frames = frames_of(source / "s")
    with open_store(tmp_path / "replica") as store:
        assert store.store(NODE, "s", frames[:20]).stored == 20
        again = store.store(NODE, "s", frames[:20])
        assert (again.stored, again.duplicates, again.head) == (0, 20, 20)
        overlap = store.store(NODE, "s", frames[10:30])
        assert (overlap.stored, overlap.duplicates, overlap.head) == (10, 10, 30)
    assert read_clean(tmp_path / "replica" / NODE / "s") == written


def test_a_gap_stops_storing_until_it_is_skipped_on_record(tmp_path: Path) -> None:
    source = tmp_path / "events"
    written = write_source(source, 30)
    frames = frames_of(source / "s")
    replica = tmp_path / "replica"
    with open_store(replica) as store:
        assert store.store(NODE, "s", frames[:10]).head == 10
        result = store.store(NODE, "s", [frames[9], *frames[15:20]])
        assert (result.stored, result.duplicates, result.gap, result.examined) == (0, 1, SeqGap(expected=11, got=16), 1)
        assert store.heads() == {(NODE, "s"): 10}
        with pytest.raises(LocalProtocolError):
            store.skip_to(NODE, "s", 11, "nothing is missing")
        gap = store.skip_to(NODE, "s", 16, "the source lost them")
        assert gap == Gap(node=NODE, stream="s", first_seq=11, last_seq=15, reason="the source lost them")
        assert store.heads() == {(NODE, "s"): 15}
        assert store.store(NODE, "s", frames[15:]).stored == 15
    records, damage = read_all(replica / NODE / "s")
    assert records == written[:10] + written[15:]
    [hole] = damage  # the reader sees the break between segments; the store knows it was a recorded gap
    assert (hole.kind, hole.segment.name) == (ProblemKind.OUT_OF_SEQUENCE, "00000000000000000016.log")
    with open_store(replica) as store:
        assert store.gaps() == [gap]
        assert store.heads() == {(NODE, "s"): 30}
    served = read_range(replica / NODE / "s", 1, max_records=100, max_bytes=1 << 20)
    assert (len(served.frames), served.resume_seq) == (10, 16)


def test_a_stream_whose_start_is_gone_begins_at_a_recorded_gap(tmp_path: Path) -> None:
    source = tmp_path / "events"
    write_source(source, 12)
    frames = frames_of(source / "s")
    with open_store(tmp_path / "replica") as store:
        assert store.store(NODE, "s", frames[4:]).gap == SeqGap(expected=1, got=5)
        assert not (tmp_path / "replica" / NODE).exists()  # nothing stored, nothing created
        store.skip_to(NODE, "s", 3, "retention at the source")
        store.skip_to(NODE, "s", 5, "damage at the source")  # again before anything arrived
        assert store.store(NODE, "s", frames[4:]).stored == 8
        assert [(gap.first_seq, gap.last_seq) for gap in store.gaps()] == [(1, 2), (3, 4)]
    assert [first for first, _ in list_segments(tmp_path / "replica" / NODE / "s")] == [5]


def test_a_third_node_catches_up_through_a_replica_and_inherits_its_gaps(tmp_path: Path) -> None:
    source = tmp_path / "events"
    written = write_source(source, 40)
    frames = frames_of(source / "s")
    with open_store(tmp_path / "a") as holder:
        holder.store(NODE, "s", frames[:12])
        holder.skip_to(NODE, "s", 20, "lost at the source")
        holder.store(NODE, "s", frames[19:])
    with open_store(tmp_path / "b") as third:
        next_seq = 1
        while next_seq <= 40:
            found = read_range(tmp_path / "a" / NODE / "s", next_seq, max_records=5, max_bytes=1 << 20)
            result = third.store(NODE, "s", found.frames)
            assert result.gap is None
            next_seq = found.next_seq
            if found.damage is not None and found.resume_seq is not None and found.resume_seq > next_seq:
                third.skip_to(NODE, "s", found.resume_seq, found.damage.describe())
                next_seq = found.resume_seq
        assert [(gap.first_seq, gap.last_seq) for gap in third.gaps()] == [(13, 19)]
    assert read_all(tmp_path / "b" / NODE / "s")[0] == written[:12] + written[19:]


def test_a_torn_replica_tail_is_cut_on_reopen_and_committed_frames_stay(tmp_path: Path) -> None:
    source = tmp_path / "events"
    written = write_source(source, 25)
    frames = frames_of(source / "s")
    replica = tmp_path / "replica"
    with open_store(replica) as store:
        store.store(NODE, "s", frames[:20])
        store.skip_to(NODE, "other", 3, "to have a gap log")
    [(_, segment)] = list_segments(replica / NODE / "s")
    with segment.open("ab") as file:
        file.write(frames[20][:-4])  # a crash in the middle of a write
    with (replica / "gaps.log").open("ab") as file:
        file.write(b'{"node": "n1", "str')
    with open_store(replica) as store:
        cut_segment, cut_gaps = store.recovery
        assert (cut_segment.segment, cut_segment.bytes_dropped) == (segment, len(frames[20]) - 4)
        assert cut_segment.kind is ProblemKind.TRUNCATED
        assert (cut_gaps.segment.name, cut_gaps.bytes_dropped) == ("gaps.log", 19)
        assert store.heads() == {(NODE, "s"): 20, (NODE, "other"): 2}
        assert len(store.gaps()) == 1
        assert store.store(NODE, "s", frames[18:]).stored == 5
    assert read_clean(replica / NODE / "s") == written
    with open_store(replica) as store:
        assert store.recovery == ()


def test_a_torn_segment_header_is_rewritten(tmp_path: Path) -> None:
    source = tmp_path / "events"
    written = write_source(source, 5)
    frames = frames_of(source / "s")
    replica = tmp_path / "replica"
    with open_store(replica, segment_max_bytes=len(MAGIC) + len(frames[0])) as store:
        store.store(NODE, "s", frames[:3])
    _, newest = list_segments(replica / NODE / "s")[-1]
    newest.write_bytes(MAGIC[:3])
    with open_store(replica) as store:
        assert store.heads() == {(NODE, "s"): 2}
        assert store.store(NODE, "s", frames).stored == 3
    assert read_clean(replica / NODE / "s") == written


def test_bad_and_foreign_frames_are_refused_and_named(tmp_path: Path) -> None:
    source = tmp_path / "events"
    written = write_source(source, 10)
    write_source(source, 10, stream="vip")
    frames = frames_of(source / "s")
    corrupt = bytearray(frames[3])
    corrupt[-1] ^= 0x01
    with open_store(tmp_path / "replica") as store:
        result = store.store(NODE, "s", [*frames[:3], bytes(corrupt), frames[3], frames[4] + b"\x00", frames[4]])
        assert (result.stored, result.head, result.gap) == (5, 5, None)
        assert [(item.index, item.reason) for item in result.rejected] == [
            (3, RejectReason.BAD_FRAME),
            (5, RejectReason.TRAILING_BYTES),
        ]
        assert "bad_checksum" in result.rejected[0].detail
        foreign = store.store(NODE, "s", frames_of(source / "vip")[5:6])
        assert [item.reason for item in foreign.rejected] == [RejectReason.WRONG_STREAM]
        assert "n1/vip" in foreign.rejected[0].detail
        disguised = store.store("n2", "s", frames[5:6])
        assert [item.reason for item in disguised.rejected] == [RejectReason.WRONG_STREAM]
        # a refused frame that was due leaves a gap behind it: what follows is not stored
        gapped = store.store(NODE, "s", [bytes(corrupt[:10]), *frames[6:]])
        assert (gapped.stored, gapped.gap) == (0, SeqGap(expected=6, got=7))
        assert store.store(NODE, "s", frames[5:]).stored == 5
    assert read_clean(tmp_path / "replica" / NODE / "s") == written
    assert not (tmp_path / "replica" / "n2").exists()


@pytest.mark.parametrize("node", ["", ".", "..", "../up", "a/b", "x\n", LOCAL, "gaps.log", "n" * 65])
def test_unsafe_and_own_names_are_refused(tmp_path: Path, node: str) -> None:
    with open_store(tmp_path / "replica") as store:
        with pytest.raises(ReplicaNameError):
            store.store(node, "s", [])
        if node not in (LOCAL, "gaps.log"):  # a stream may have those names, not a node
            with pytest.raises(ReplicaNameError):
                store.store("peer", node, [])
        with pytest.raises(ReplicaNameError):
            store.skip_to(node, "s", 5, "never")
        with pytest.raises(ReplicaNameError):
            store.stream_dir(node, "s")
    assert [path.name for path in (tmp_path / "replica").iterdir()] == []


def test_one_store_per_replica_directory(tmp_path: Path) -> None:
    store = open_store(tmp_path / "replica")
    with pytest.raises(ReplicaBusyError, match="another replica store"):
        open_store(tmp_path / "replica")
    store.close()
    store.close()
    with pytest.raises(LocalProtocolError):
        store.store("peer", "s", [])
    open_store(tmp_path / "replica").close()


def test_retention_deletes_the_oldest_whole_segments(tmp_path: Path) -> None:
    source = tmp_path / "events"
    written = write_source(source, 200)
    with open_store(tmp_path / "replica", segment_max_bytes=1000, retain_bytes=4000) as store:
        store.store(NODE, "s", frames_of(source / "s"))
    segments = list_segments(tmp_path / "replica" / NODE / "s")
    assert sum(path.stat().st_size for _, path in segments) <= 4000 + 1000
    kept = read_clean(tmp_path / "replica" / NODE / "s")
    assert kept == written[-len(kept) :] and kept[0].seq == segments[0][0] > 1


def test_a_failing_write_is_undone_and_storing_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "events"
    written = write_source(source, 30)
    frames = frames_of(source / "s")
    real_write = os.write
    with open_store(tmp_path / "replica") as store:
        store.store(NODE, "s", frames[:10])
        [(_, segment)] = list_segments(tmp_path / "replica" / NODE / "s")
        size = segment.stat().st_size
        for fault in ("short", "error"):

            def write(fd: int, data: bytes, fault: str = fault) -> int:
                if fault == "error":
                    raise OSError(errno.ENOSPC, "No space left on device")
                return real_write(fd, data[: len(data) // 2])  # a full disk takes part of a write

            monkeypatch.setattr(os, "write", write)
            with pytest.raises(OSError, match=r"short write|No space"):
                store.store(NODE, "s", frames[10:20])
            monkeypatch.setattr(os, "write", real_write)
            assert store.heads() == {(NODE, "s"): 10}
            assert segment.stat().st_size == size  # no torn frame left behind
        assert store.store(NODE, "s", frames[5:]).stored == 20
    assert read_clean(tmp_path / "replica" / NODE / "s") == written


def test_a_failing_sync_is_raised_and_done_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "events"
    write_source(source, 10)
    real_fdatasync = os.fdatasync

    def fdatasync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    with open_store(tmp_path / "replica") as store:
        store.store(NODE, "s", frames_of(source / "s"))
        assert store.needs_sync
        monkeypatch.setattr(os, "fdatasync", fdatasync)
        with pytest.raises(OSError, match="Input/output"):
            store.sync()
        assert store.needs_sync
        monkeypatch.setattr(os, "fdatasync", real_fdatasync)
        store.sync()
        assert not store.needs_sync


def test_syncing_in_a_thread_while_storing_and_rotating(tmp_path: Path) -> None:
    source = tmp_path / "events"
    written = write_source(source, 400)
    frames = frames_of(source / "s")
    done = threading.Event()
    with open_store(tmp_path / "replica", segment_max_bytes=700) as store:

        def sync_until_done() -> None:
            while not done.is_set():
                store.sync()

        syncer = threading.Thread(target=sync_until_done)
        syncer.start()
        try:
            for start in range(0, len(frames), 7):
                assert store.store(NODE, "s", frames[start : start + 7]).gap is None
        finally:
            done.set()
            syncer.join()
    assert read_clean(tmp_path / "replica" / NODE / "s") == written
    assert len(list_segments(tmp_path / "replica" / NODE / "s")) > 10


@cache
def source() -> tuple[tuple[bytes, ...], tuple[Record, ...]]:
    """One source stream's frames and records, for every example of the property test below (written once)."""
    with tempfile.TemporaryDirectory() as directory:
        records = write_source(Path(directory), 120, segment_max_bytes=1500)
        return tuple(frames_of(Path(directory) / "s")), tuple(records)


@settings(max_examples=40, deadline=None)
@given(
    deliveries=st.lists(st.tuples(st.integers(0, 119), st.integers(1, 40)), max_size=30),
    seed=st.integers(0, 2**32 - 1),
    batch=st.integers(1, 50),
)
def test_any_order_of_overlapping_deliveries_converges_to_the_same_stream(
    deliveries: list[tuple[int, int]], seed: int, batch: int
) -> None:
    frames, written = source()
    shuffler = random.Random(seed)
    with tempfile.TemporaryDirectory() as directory:
        replica = Path(directory)
        with open_store(replica, segment_max_bytes=2000) as store:
            for start, length in deliveries:  # whatever arrives, in any order, duplicated or early
                delivered = list(frames[start : start + length])
                if shuffler.random() < 0.3:
                    shuffler.shuffle(delivered)
                result = store.store(NODE, "s", delivered)
                assert result.rejected == ()
                assert result.stored + result.duplicates == result.examined
            while (head := store.heads().get((NODE, "s"), 0)) < len(frames):  # then catching up in batches
                result = store.store(NODE, "s", frames[head : head + batch])
                assert (result.stored, result.gap) == (min(batch, len(frames) - head), None)
            assert store.gaps() == []
        records, damage = read_all(replica / NODE / "s")
        assert damage == []
        assert tuple(records) == written
        assert list(read_stream(replica / NODE / "s", from_seq=100)) == list(written[99:])
