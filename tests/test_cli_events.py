"""`ffo events`, `ffo replay` and `ffo why` on real event-log files written from a simulated cluster."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import attrs
import pytest

from ffo.actors.events import ActorChanged
from ffo.cli.main import main
from ffo.clock import FakeClock
from ffo.eventlog.writer import EventWriter
from ffo.sim.cluster import Cluster
from ffo.sim.demo import WALL_EPOCH_NS, demo_scenario
from ffo.sim.eventfiles import write_journal
from ffo.sim.journal import MemoryJournal
from ffo.vrrp.record import InstanceConfigured, TransitionMade
from ffo.vrrp.state import Role

JSON_KEYS = {"time", "mono_ns", "node", "stream", "seq", "type", "instance", "cause", "cause_data"}


@pytest.fixture(scope="module")
def journal() -> MemoryJournal:
    journal = MemoryJournal()
    assert Cluster(scenario=demo_scenario(100), journal=journal).run() is None
    return journal


@pytest.fixture
def logs(tmp_path: Path, journal: MemoryJournal) -> dict[str, Path]:
    return write_journal(journal, tmp_path, wall_epoch_ns=WALL_EPOCH_NS)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_events_prints_every_record_in_order_with_causes(
    logs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = run(capsys, "events", "--dir", str(logs["n2"]))
    assert (code, err) == (0, "")
    assert len(lines) == 10
    assert lines[0].startswith("2026-12-01T00:00:00.") and "vrrp:1" in lines[0]
    takeover = next(line for line in lines if "BACKUP -> MASTER" in line)
    assert "vrrp.transition" in takeover and "— no advertisement from 192.0.2.11 for 3.414 s" in takeover


def test_events_json_has_the_contract_keys(logs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, "events", "--dir", str(logs["n2"] / "events"), "--json")
    assert code == 0
    objects = [json.loads(line) for line in lines]
    assert all(set(obj) >= JSON_KEYS for obj in objects)
    assert [obj["seq"] for obj in objects] == list(range(1, 11))
    transition = next(obj for obj in objects if obj["type"] == "vrrp.transition" and obj["seq"] == 4)
    assert transition["time"] == "2026-12-01T00:00:13.635402Z"
    assert transition["instance"] == "vi" and transition["node"] == "n2"
    assert transition["cause_data"]["kind"] == "master_down"
    assert transition["cause_data"]["peer"] == "192.0.2.11"
    assert transition["cause"].startswith("no advertisement from 192.0.2.11")


def test_events_filters(logs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, lines, _ = run(capsys, "events", "--dir", str(logs["n2"]), "--type", "transition")
    assert len(lines) == 4 and all("vrrp.transition" in line for line in lines)
    _, lines, _ = run(capsys, "events", "--dir", str(logs["n2"]), "--since", "2026-12-01T00:00:20Z")
    assert [line.split()[2] for line in lines] == [f"vrrp:{seq}" for seq in range(5, 11)]
    _, lines, _ = run(capsys, "events", "--dir", str(logs["n2"]), "--until", "2026-12-01T00:00:01Z")
    assert len(lines) == 2
    _, lines, _ = run(capsys, "events", "--dir", str(logs["n2"]), "--instance", "other")
    assert lines == []
    code, _, err = run(capsys, "events", "--dir", str(logs["n2"]), "--since", "yesterday-ish")
    assert code == 2 and "neither an ISO 8601 time nor a duration" in err


def test_events_reports_a_torn_tail_and_still_prints_every_complete_record(
    logs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    (segment,) = (logs["n2"] / "events" / "vrrp").glob("*.log")
    segment.write_bytes(segment.read_bytes()[:-7])
    code, lines, err = run(capsys, "events", "--dir", str(logs["n2"]))
    assert code == 0
    assert len(lines) == 9
    assert "torn" in err or "tail" in err


def test_events_on_a_missing_directory_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "events", "--dir", str(tmp_path / "nothing"))
    assert code == 3 and "no event log here" in err


def test_replay_reproduces_every_node(logs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    for node, state_dir in logs.items():
        code, lines, _ = run(capsys, "replay", "--dir", str(state_dir))
        assert code == 0, lines
        assert lines[-1].endswith(" transitions, 0 divergences"), node
    _, lines, _ = run(capsys, "replay", "--dir", str(logs["n2"]))
    assert lines[-1] == "replayed 10 events, 4 transitions, 0 divergences"


def test_replay_finds_a_recorded_transition_the_machine_would_not_make(
    tmp_path: Path, journal: MemoryJournal, capsys: pytest.CaptureFixture[str]
) -> None:
    # A log whose n2 claims it took over at priority 150 although its config said 250: the machine disagrees.
    tampered = MemoryJournal(streams={"n2": list(journal.streams["n2"])})
    entries = tampered.streams["n2"]
    first = entries[0].record
    assert isinstance(first, InstanceConfigured)
    entries[0] = attrs.evolve(entries[0], record=attrs.evolve(first, config=attrs.evolve(first.config, priority=250)))
    written = write_journal(tampered, tmp_path, wall_epoch_ns=WALL_EPOCH_NS)
    code, lines, _ = run(capsys, "replay", "--dir", str(written["n2"]))
    assert code == 1
    assert lines[0].startswith("divergence at vrrp:2")
    assert "recorded:" in lines[1] and any("replayed:" in line for line in lines)
    assert lines[-1].endswith("divergences") and not lines[-1].endswith(" 0 divergences")


def test_replay_what_if(logs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, "replay", "--dir", str(logs["n2"]), "--set", "priority=210", "--instance", "vi")
    assert code == 0
    text = "\n".join(lines)
    assert "as recorded:" in text and "with priority=210:" in text
    assert "advertises priority 200 < our 210 and preemption is on" in text
    code, _, err = run(capsys, "replay", "--dir", str(logs["n2"]), "--set", "colour=blue")
    assert code == 2 and "colour" in err
    code, _, err = run(capsys, "replay", "--dir", str(logs["n2"]), "--set", "priority=300")
    assert code == 2 and "priority" in err


def test_why_explains_a_takeover_and_the_last_transition(
    logs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = run(capsys, "why", "--dir", str(logs["n2"]), "vrrp:4")
    text = " ".join(lines)
    assert code == 0
    assert "went BACKUP -> MASTER because no advertisement from 192.0.2.11" in text
    assert "3 advertisements from 192.0.2.11 missed" in text
    code, lines, _ = run(capsys, "why", "--dir", str(logs["n1"]), "--last")
    assert code == 0 and "MASTER -> INITIALIZE because shutdown requested" in " ".join(lines)
    code, _, err = run(capsys, "why", "--dir", str(logs["n2"]), "vrrp:3")
    assert code == 2 and "not a transition" in err
    code, _, err = run(capsys, "why", "--dir", str(logs["n2"]), "vrrp:99")
    assert code == 2 and "no such" in err


def test_why_names_what_other_actors_did_because_of_the_transition(
    tmp_path: Path, journal: MemoryJournal, capsys: pytest.CaptureFixture[str]
) -> None:
    written = write_journal(journal, tmp_path, wall_epoch_ns=WALL_EPOCH_NS)
    takeover = next(
        seq
        for seq, entry in enumerate(journal.streams["n2"], 1)
        if isinstance(entry.record, TransitionMade) and entry.record.transition.to_role is Role.MASTER
    )
    clock = FakeClock(now_ns=14 * 10**9, wall_epoch_ns=WALL_EPOCH_NS)
    with EventWriter.open(written["n2"] / "events" / "kernel", node="n2", stream="kernel", clock=clock) as writer:
        change = ActorChanged(actor="vip", from_state="ready", to_state="ready", pid=4242, incarnation=1, reason="x")
        writer.append(change, cause=f"vrrp:{takeover}")
    code, lines, _ = run(capsys, "why", "--dir", str(written["n2"]), f"vrrp:{takeover}")
    assert code == 0
    assert "Elsewhere on the node: kernel:1 kernel.actor_changed actor vip" in " ".join(lines)


def test_events_follow_prints_records_as_they_are_written(tmp_path: Path) -> None:
    events_dir = tmp_path / "events"
    clock = FakeClock(wall_epoch_ns=WALL_EPOCH_NS)
    with EventWriter.open(events_dir / "kernel", node="n9", stream="kernel", clock=clock) as writer:
        writer.append(
            ActorChanged(actor="a", from_state="starting", to_state="ready", pid=1, incarnation=1, reason="x")
        )
        follower = subprocess.Popen(
            [sys.executable, "-m", "ffo.cli.main", "events", "--dir", str(tmp_path), "--follow"],
            stdout=subprocess.PIPE,
            text=True,
        )
        watchdog = threading.Timer(30, follower.kill)  # a follower that never prints must not hang the suite
        watchdog.start()
        try:
            assert follower.stdout is not None
            assert "kernel:1" in follower.stdout.readline()  # what was there
            clock.advance(10**9)
            writer.append(
                ActorChanged(actor="a", from_state="ready", to_state="stopped", pid=1, incarnation=1, reason="y")
            )
            assert "kernel:2" in follower.stdout.readline()  # what came later (readline blocks until it does)
        finally:
            watchdog.cancel()
            follower.kill()
            follower.wait()
