"""What a simulated node's VRRP actor would write to its event stream, kept in memory.

Each node gets the actor's `Recorder`, so the simulator produces the same records a daemon writes: the
golden-log test replays them (`ffo.vrrp.replay`) for many seeds, and `ffo sim --events-dir` writes them to
real event-log segments for `ffo events`, `ffo replay` and `ffo why`. A crash loses the recorder's open run,
as a killed process would.
"""

from __future__ import annotations

from typing import Protocol

import attrs

from ffo.vrrp.record import Recorder, Step, VrrpRecord
from ffo.vrrp.state import InstanceConfig, InstanceState


class Journal(Protocol):
    """The cluster's hooks for recording; node names identify the streams."""

    def started(self, node: str, config: InstanceConfig, now_ns: int) -> None: ...

    def stepped(self, node: str, before: InstanceState, after: InstanceState, step: Step) -> None: ...

    def crashed(self, node: str) -> None: ...

    def finished(self, now_ns: int) -> None: ...


@attrs.frozen(kw_only=True)
class JournalEntry:
    """One record as the actor would append it: when (its monotonic time), and what."""

    mono_ns: int
    record: VrrpRecord


@attrs.define
class MemoryJournal:
    """Per node, the records its VRRP actor would have appended, in order."""

    run_flush_ns: int | None = None
    streams: dict[str, list[JournalEntry]] = attrs.field(factory=dict)
    _recorders: dict[str, Recorder] = attrs.field(factory=dict)

    def _recorder(self, node: str, instance: str) -> Recorder:
        recorder = self._recorders.get(node)
        if recorder is None:
            recorder = Recorder(instance=instance)
            if self.run_flush_ns is not None:
                recorder.run_flush_ns = self.run_flush_ns
            self._recorders[node] = recorder
        return recorder

    def _append(self, node: str, now_ns: int, records: list[VrrpRecord]) -> None:
        stream = self.streams.setdefault(node, [])
        stream += [JournalEntry(mono_ns=now_ns, record=record) for record in records]

    def started(self, node: str, config: InstanceConfig, now_ns: int) -> None:
        self._append(node, now_ns, self._recorder(node, config.name).configured(config))

    def stepped(self, node: str, before: InstanceState, after: InstanceState, step: Step) -> None:
        recorder = self._recorder(node, before.config.name)
        records = recorder.observe(before, step.input, step.now_ns, after, step.effects)
        records += recorder.flush(step.now_ns)
        self._append(node, step.now_ns, records)

    def crashed(self, node: str) -> None:
        recorder = self._recorders.get(node)
        if recorder is not None:
            recorder.discard()

    def finished(self, now_ns: int) -> None:
        for node, recorder in self._recorders.items():
            self._append(node, now_ns, recorder.close())
