"""Write a simulated cluster's event streams to real event-log files, one node directory each.

`ffo sim --demo --events-dir DIR` uses it so that `ffo events`, `ffo replay` and `ffo why` can be tried on the
simulated failovers, and the golden-log tests read the files back through the real reader. Wall-clock times
are the simulated time after `wall_epoch_ns`.
"""

from __future__ import annotations

from pathlib import Path

from ffo.clock import FakeClock
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.writer import EventWriter
from ffo.sim.journal import MemoryJournal
from ffo.vrrp.record import VrrpRecord

VRRP_STREAM = "vrrp"


def write_journal(journal: MemoryJournal, root: Path, *, wall_epoch_ns: int) -> dict[str, Path]:
    """Each node's records into `root/<node>/events/vrrp/`; returns each node's state directory."""
    written: dict[str, Path] = {}
    for node, entries in sorted(journal.streams.items()):
        state_dir = root / node
        clock = FakeClock(wall_epoch_ns=wall_epoch_ns)
        with EventWriter.open(state_dir / "events" / VRRP_STREAM, node=node, stream=VRRP_STREAM, clock=clock) as writer:
            for entry in entries:
                writer.append(entry.record, mono_ns=entry.mono_ns, ts_ns=wall_epoch_ns + entry.mono_ns)
        written[node] = state_dir
    return written


class FileJournal(MemoryJournal):
    """A journal that appends each record to its node's `EventWriter` as the simulation runs, as the VRRP actor
    does: what a full disk does to a running node can be tested with the simulator."""

    def __init__(self, root: Path, *, wall_epoch_ns: int, policy: LogPolicy | None = None) -> None:
        super().__init__()
        self.root = root
        self.wall_epoch_ns = wall_epoch_ns
        self.policy = policy
        self.writers: dict[str, EventWriter] = {}
        self.clocks: dict[str, FakeClock] = {}

    def _append(self, node: str, now_ns: int, records: list[VrrpRecord]) -> None:
        super()._append(node, now_ns, records)
        writer = self.writers.get(node)
        clock = self.clocks.setdefault(node, FakeClock(wall_epoch_ns=self.wall_epoch_ns))
        if writer is None:
            directory = self.root / node / "events" / VRRP_STREAM
            writer = EventWriter.open(directory, node=node, stream=VRRP_STREAM, clock=clock, policy=self.policy)
            self.writers[node] = writer
        clock.set(max(clock.now_ns, now_ns))  # the writer's retries and rotation read this clock
        for record in records:
            writer.append(record, mono_ns=now_ns, ts_ns=self.wall_epoch_ns + now_ns)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
