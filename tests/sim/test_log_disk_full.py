"""A full disk under running VRRP nodes: failovers happen as usual, logging degrades loudly, then resumes."""

from __future__ import annotations

from pathlib import Path

from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.reader import read_stream
from ffo.eventlog.record import Record, RecordsDropped, record_message
from ffo.sim.cluster import Cluster
from ffo.sim.demo import demo_scenario
from ffo.sim.eventfiles import FileJournal
from ffo.vrrp.record import TransitionMade
from tests.eventlog.test_diskfull import fill, small_disk

__all__ = ["small_disk"]  # the fixture, imported to be used here


def test_nodes_keep_failing_over_while_their_disk_is_full(small_disk: Path) -> None:
    fill(small_disk / "filler")
    policy = LogPolicy(max_pending_bytes=2048, retry_interval_ns=1_000_000_000)
    journal = FileJournal(small_disk, wall_epoch_ns=0, policy=policy)
    cluster = Cluster(scenario=demo_scenario(100), journal=journal)
    assert cluster.run() is None  # every invariant held: the failovers did not wait for the log
    taken_over = sum(1 for entry in cluster.trace if "BACKUP -> MASTER" in entry.text)
    assert taken_over >= 4
    statuses = {node: writer.status for node, writer in journal.writers.items()}
    assert all(status.degraded and "No space left" in (status.last_error or "") for status in statuses.values())
    assert any(status.dropped > 0 for status in statuses.values())

    (small_disk / "filler").unlink()  # space returns
    for writer in journal.writers.values():
        assert writer.retry(force=True)
        assert not writer.status.degraded
    journal.close()
    for node in journal.writers:
        records = list(read_stream(small_disk / node / "events" / "vrrp"))
        assert all(isinstance(record, Record) for record in records), "no damage on disk"
        messages = [record_message(record) for record in records if isinstance(record, Record)]
        seqs = [record.seq for record in records if isinstance(record, Record)]
        assert seqs == list(range(1, len(seqs) + 1)), "gapless"
        if statuses[node].dropped:
            assert any(isinstance(message, RecordsDropped) for message in messages)
        assert any(isinstance(message, TransitionMade) for message in messages)
