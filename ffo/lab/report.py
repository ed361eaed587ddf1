"""What `ffo lab demo` prints after the fact: the measurements, the merged timeline and the `ffo why` paragraphs.

Every figure comes from a record, not from the demo's own polling: the takeover's time is the ``now_ns`` of the
new master's transition in its event log; the old master's last advertisement is the ``last_heard_ns`` in that
transition's cause (when the new master last heard it); the client's outage comes from the probe's replies
(`ffo.lab.outage`). The probe and the logs share CLOCK_MONOTONIC (namespaces share the clock), so all of it is
on one time line, printed relative to the cut.

The timeline lines are exactly `ffo events` lines (`ffo.cli.events.as_text`), merged across the nodes with the
lab's and the client's own lines in the same shape; the paragraphs are exactly what `ffo why` prints (the
command is run in-process through `ffo.cli.main`). Reusing the CLI's renderers is the point: the demo shows
what an operator would see with those commands after an incident.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import attrs

from ffo.cli.events import as_text, describe_loaded, iso
from ffo.cli.logsource import Loaded, load_records
from ffo.lab.cluster import LabCluster
from ffo.lab.demo import PROBE_PERIOD_NS, VIP_ADDRESS, DemoRun, Moment, vip_unreachable_reason
from ffo.lab.outage import measure_outage
from ffo.vrrp import timers
from ffo.vrrp.cause import CauseKind
from ffo.vrrp.effects import Transitioned
from ffo.vrrp.record import TransitionMade
from ffo.vrrp.state import Role

__all__ = ["Found", "find_transition", "render"]

Emit = Callable[[str], None]


@attrs.frozen(kw_only=True)
class Found:
    """A transition found in a node's log: its id (for `ffo why`), when its step ran, what it was."""

    node: str
    id: str
    now_ns: int
    transition: Transitioned
    cause_text: str


def find_transition(
    node: str, records: Iterable[Loaded], after_ns: int, before_ns: int | None = None, to_role: Role | None = None
) -> Found | None:
    """The node's first transition (to `to_role`, if given) whose step ran in (`after_ns`, `before_ns`)."""
    for loaded in records:
        message = loaded.message
        if (
            isinstance(message, TransitionMade)
            and after_ns < message.step.now_ns
            and (before_ns is None or message.step.now_ns < before_ns)
            and (to_role is None or message.transition.to_role is to_role)
        ):
            return Found(
                node=node,
                id=loaded.record.id,
                now_ns=message.step.now_ns,
                transition=message.transition,
                cause_text=describe_loaded(loaded).cause or "",
            )
    return None


def read_logs(cluster: LabCluster) -> dict[str, list[Loaded]]:
    """Every record of every node's log (damage is reported on stderr by the reader, as `ffo events` does)."""
    logs: dict[str, list[Loaded]] = {}
    for node in cluster.nodes:
        directory = cluster.state_dir(node) / "events"
        logs[node] = list(load_records(directory, "lab demo")) if directory.is_dir() else []
    return logs


class _Report:
    """One demo run's report; `at` puts every monotonic time on the cut's time line."""

    def __init__(self, run: DemoRun, cluster: LabCluster, emit: Emit) -> None:
        assert run.cut is not None and run.old_master is not None
        self.run, self.cluster, self.emit = run, cluster, emit
        self.cut: Moment = run.cut
        self.old: str = run.old_master
        self.logs = read_logs(cluster)

    def at(self, ns: int) -> str:
        delta = ns - self.cut.mono_ns
        return f"t = {'+' if delta >= 0 else '-'}{timers.format_ns(abs(delta))}"

    def row(self, label: str, text: str) -> None:
        self.emit(f"  {label:20} {text}")

    def transition(
        self, node: str | None, after: Moment | None, before: Moment | None, to_role: Role | None = None
    ) -> Found | None:
        if node is None or after is None:
            return None
        return find_transition(node, self.logs[node], after.mono_ns, before.mono_ns if before else None, to_role)

    def failover(self) -> Found | None:
        run, old = self.run, self.old
        self.emit("")
        self.emit(f"failover: {old}'s cable pulled")
        self.row("master before", f"{old} (priority {self.cluster.node(old).priority})")
        issued = run.cut_issued or self.cut
        self.row("link cut", f"t = 0 = {iso(self.cut.wall_ns)} (`ip link set down` ran from {self.at(issued.mono_ns)})")
        until = run.restore_issued
        reaction = self.transition(old, issued, until)
        if reaction is not None:
            self.row(f"{old} itself", f"{self.at(reaction.now_ns)} ({reaction.id}): {self._change(reaction)}")
        takeover = self.transition(run.new_master, issued, until, Role.MASTER)
        if takeover is None:
            self.row("new master", "none found in the logs (see the problems below)")
        else:
            self._takeover_rows(takeover)
        self.outage(self.cut, run.restored)
        return takeover

    def _change(self, found: Found) -> str:
        change = found.transition
        return f"{change.from_role.name} -> {change.to_role.name}, {found.cause_text}"

    def _takeover_rows(self, takeover: Found) -> None:
        interval_cs = self.run.interval_cs
        priority = self.cluster.node(takeover.node).priority
        self.row("new master", f"{takeover.node} (priority {priority}) at {self.at(takeover.now_ns)} ({takeover.id})")
        skew = timers.skew_time_ns(priority, interval_cs, 3)
        bound = timers.master_down_interval_ns(priority, interval_cs, 3)
        interval = timers.format_ns(timers.cs_to_ns(interval_cs))
        rule = f"3 x {interval} + Skew_Time {timers.format_ns(skew)} = {timers.format_ns(bound)}"
        cause = takeover.transition.cause
        if cause.kind is CauseKind.MASTER_DOWN and cause.last_heard_ns is not None:
            gap = takeover.now_ns - cause.last_heard_ns
            heard = f"{self.at(cause.last_heard_ns)} (the last one {takeover.node} heard)"
            self.row(f"{self.old}'s last advert", heard)
            self.row("advert gap", f"{timers.format_ns(gap)}: from that advertisement to {takeover.node} MASTER")
            self.row("RFC bound", f"{rule}; gap - bound = {timers.format_ns(gap - bound)} (timer lateness)")
        else:
            self.row("why", takeover.cause_text)
            self.row("RFC bound", f"{rule} (for a silent master)")

    def preemption(self) -> Found | None:
        run, old = self.run, self.old
        if run.restored is None:
            return None
        self.emit("")
        self.emit(f"preemption: {old}'s cable plugged back in")
        self.row("link restored", self.at(run.restored.mono_ns))
        issued = run.restore_issued or run.restored
        back = self.transition(old, issued, run.end, Role.MASTER)
        if back is not None:
            self.row(f"{old} MASTER again", f"{self.at(back.now_ns)} ({back.id}): {back.cause_text}")
        stepdown = self.transition(run.new_master, issued, run.end, Role.BACKUP)
        if stepdown is not None:
            self.row(
                f"{stepdown.node} steps down", f"{self.at(stepdown.now_ns)} ({stepdown.id}): {stepdown.cause_text}"
            )
        self.outage(run.restored, run.end)
        return back

    def outage(self, start: Moment, end: Moment | None) -> None:
        outage = measure_outage(self.run.echoes, start.mono_ns, end.mono_ns if end is not None else None)
        if outage is None:
            sent = _echoes(len(self.run.echoes))
            self.row("client outage", f"not measured: {VIP_ADDRESS} never replied ({sent} sent)")
            if start is self.cut and self.run.vip is not None:  # the reason once, under the failover
                self.row("", f"({vip_unreachable_reason(self.run.vip)})")
        elif outage.end_ns is None:
            self.row("client outage", f"no reply since {self.at(outage.start_ns)} ({_echoes(outage.lost)} lost)")
        elif outage.lost == 0:
            gap = timers.format_ns(outage.end_ns - outage.start_ns)
            self.row("client outage", f"none: no echo lost (longest gap between replies {gap})")
        else:
            self.row(
                "client outage",
                f"{timers.format_ns(outage.end_ns - outage.start_ns)} without a reply, from "
                f"{self.at(outage.start_ns)} to {self.at(outage.end_ns)}: {_echoes(outage.lost)} lost "
                f"(one every {timers.format_ns(PROBE_PERIOD_NS)})",
            )

    def timeline(self) -> None:
        """The logs' lines from the election to the end, merged by wall time with the lab's and the client's."""
        start, end = self.run.elected or self.run.started, self.run.end
        lines: list[tuple[int, str]] = []
        for records in self.logs.values():
            for loaded in records:
                ts = loaded.record.ts_ns
                if ts >= start.wall_ns and (end is None or ts <= end.wall_ns):
                    lines.append((ts, as_text(loaded, describe_loaded(loaded))))
        for wall_ns, who, kind, text in self._own_lines():
            lines.append((wall_ns, f"{iso(wall_ns)}  {who}  {'-':<10} {'-':<10} {kind}  {text}"))
        self.emit("")
        self.emit(f"timeline: the nodes' event logs merged (ffo events --dir {self.cluster.root}/<node>/state),")
        self.emit("with the lab's actions and the client's replies")
        for _, text in sorted(lines, key=lambda pair: pair[0]):
            self.emit(f"  {text}")

    def _own_lines(self) -> list[tuple[int, str, str, str]]:
        """The lab's actions and the client's silences, as (wall ns, who, type, text)."""
        run, old = self.run, self.old
        offset = self.cut.wall_ns - self.cut.mono_ns  # monotonic -> wall, through one pair of readings
        own = [(self.cut.wall_ns, "lab", "lab.cut", f"{old}'s cable pulled (its bridge port down)")]
        if run.restored is not None:
            own.append((run.restored.wall_ns, "lab", "lab.restore", f"{old}'s cable plugged back in"))
        for start, end in ((run.cut, run.restored), (run.restored, run.end)):
            outage = measure_outage(run.echoes, start.mono_ns, end.mono_ns if end else None) if start else None
            if outage is None or outage.lost == 0:
                continue
            own.append((outage.start_ns + offset, "client", "probe.silent", f"last reply from {VIP_ADDRESS}"))
            if outage.end_ns is not None:
                text = f"{VIP_ADDRESS} replies again ({_echoes(outage.lost)} lost)"
                own.append((outage.end_ns + offset, "client", "probe.replied", text))
        return own

    def why(self, found: Found | None, question: str) -> None:
        if found is None:
            return
        state_dir = self.cluster.state_dir(found.node)
        self.emit("")
        self.emit(f"why did {found.node} {question}?  $ ffo why --dir {state_dir} {found.id}")
        for line in _why(state_dir, found.id):
            self.emit(f"  {line}" if line else "")


def _echoes(count: int) -> str:
    return f"{count} echo" if count == 1 else f"{count} echoes"


def render(run: DemoRun, cluster: LabCluster, emit: Emit) -> None:
    """Print the measurements, the merged timeline and the explanations of the demo `run`."""
    if run.cut is None or run.old_master is None:
        return
    report = _Report(run, cluster, emit)
    takeover = report.failover()
    back = report.preemption()
    report.timeline()
    report.why(takeover, "take over")
    report.why(back, "take over again")


def _why(state_dir: Path, event_id: str) -> Sequence[str]:
    """`ffo why --dir STATE_DIR EVENT`'s output, run in-process."""
    from ffo.cli.main import main  # the CLI entry point; imported at use to keep module imports acyclic

    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        main(["why", "--dir", str(state_dir), event_id])
    return output.getvalue().rstrip("\n").splitlines()
