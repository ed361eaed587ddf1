"""Write a simulated cluster's event streams to real event-log files, one node directory each.

`ffo sim --demo --events-dir DIR` uses it so that `ffo events`, `ffo replay` and `ffo why` can be tried on the
simulated failovers, and the golden-log tests read the files back through the real reader. Wall-clock times
are the simulated time after `wall_epoch_ns`.
"""

from __future__ import annotations

from pathlib import Path

from ffo.clock import FakeClock
from ffo.eventlog.writer import EventWriter
from ffo.sim.journal import MemoryJournal

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
