"""The pieces of `ffo lab` that need no namespace: the node plan and configs, the lab record, PID checks,
the probe's packets, the outage arithmetic, and the CLI's usage errors and simulated fallback."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from ffo.cli import lab as cli_lab
from ffo.cli.main import main
from ffo.config import loads_config
from ffo.lab import layout
from ffo.lab.cluster import LabCluster
from ffo.lab.daemons import is_running, start_ticks
from ffo.lab.demo import DemoRun, Moment, VipSight
from ffo.lab.layout import DaemonRecord, LabState
from ffo.lab.outage import measure_outage
from ffo.lab.probe import Echo, echo_request, parse_echo_reply
from ffo.lab.report import render

MS = 1_000_000


def test_priorities_descend_from_200_to_100() -> None:
    assert [node.priority for node in layout.plan_nodes(3)] == [200, 150, 100]
    assert [node.priority for node in layout.plan_nodes(2)] == [200, 100]
    assert [node.priority for node in layout.plan_nodes(1)] == [200]
    assert [node.address for node in layout.plan_nodes(3)] == ["192.0.2.11", "192.0.2.12", "192.0.2.13"]
    with pytest.raises(ValueError, match=r"1\.\.16"):
        layout.plan_nodes(0)


def test_each_node_config_is_valid_and_keeps_its_files_in_the_lab_dir(tmp_path: Path) -> None:
    node = layout.plan_nodes(2)[1]
    config = loads_config(layout.config_text(node, "50ms", tmp_path))
    assert config.name == "n2"
    assert config.run_dir == tmp_path / "n2" / "run"
    assert config.state_dir == tmp_path / "n2" / "state"
    (instance,) = config.instances
    assert (instance.name, instance.vrid, instance.priority, instance.interface) == ("web", 51, 100, "eth0")
    assert [str(vip) for vip in instance.vips] == ["192.0.2.100"]


def test_the_lab_record_round_trips_and_a_missing_one_is_none(tmp_path: Path) -> None:
    assert layout.load_state(tmp_path) is None
    state = LabState(
        nodes=layout.plan_nodes(2),
        client="client",
        client_address="192.0.2.250",
        advert_interval="100ms",
        daemons=(DaemonRecord(node="n1", pid=4242, start_ticks=17),),
    )
    layout.save_state(state, tmp_path)
    assert layout.load_state(tmp_path) == state
    (tmp_path / "lab.json").write_text("{not json")
    assert layout.load_state(tmp_path) is None


def test_a_recorded_pid_counts_only_with_its_start_time() -> None:
    ticks = start_ticks(os.getpid())
    assert ticks is not None
    assert is_running(DaemonRecord(node="n1", pid=os.getpid(), start_ticks=ticks))
    assert not is_running(DaemonRecord(node="n1", pid=os.getpid(), start_ticks=ticks + 1))  # a recycled PID


def test_echo_request_checksums_to_zero_and_replies_are_matched_on_identifier() -> None:
    request = echo_request(0x1234, 7)
    padded = request + b"\0" * (len(request) % 2)
    words = struct.unpack(f"!{len(padded) // 2}H", padded)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF
    reply = bytes([0x45]) + bytes(19) + b"\x00" + request[1:]  # a 20-byte IPv4 header, then type 0
    assert parse_echo_reply(reply, 0x1234) == 7
    assert parse_echo_reply(reply, 0x4321) is None
    assert parse_echo_reply(bytes([0x45]) + bytes(19) + request, 0x1234) is None  # a request, not a reply


def echoes(replies: dict[int, int | None]) -> list[Echo]:
    """Echoes sent every 10 ms from t = 0; `replies` maps the send time (ms) to the reply delay (ms)."""
    return [
        Echo(seq=i + 1, sent_ns=sent * MS, replied_ns=None if delay is None else (sent + delay) * MS)
        for i, (sent, delay) in enumerate(sorted(replies.items()))
    ]


def test_outage_is_the_longest_silence_ending_after_the_fault() -> None:
    probe = echoes({t: (None if 100 <= t < 400 else 1) for t in range(0, 600, 10)})
    outage = measure_outage(probe, at_ns=95 * MS)
    assert outage is not None
    assert (outage.start_ns, outage.end_ns, outage.lost) == (91 * MS, 401 * MS, 30)


def test_a_late_move_of_the_vip_is_still_the_outage_of_its_fault() -> None:
    probe = echoes({t: (None if 300 <= t < 330 else 1) for t in range(0, 600, 10)})
    outage = measure_outage(probe, at_ns=100 * MS)  # the link came back at 100 ms; the VIP moved at 300 ms
    assert outage is not None
    assert (outage.start_ns, outage.end_ns, outage.lost) == (291 * MS, 331 * MS, 3)


def test_no_reply_at_all_is_no_outage_and_no_reply_after_is_open_ended() -> None:
    assert measure_outage(echoes(dict.fromkeys(range(0, 100, 10))), at_ns=50 * MS) is None
    outage = measure_outage(echoes({t: (1 if t < 50 else None) for t in range(0, 100, 10)}), at_ns=45 * MS)
    assert outage is not None
    assert (outage.start_ns, outage.end_ns, outage.lost) == (41 * MS, None, 5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lab", "up", "--nodes", "0"], "--nodes: 0 is not in 1..16"),
        (["lab", "demo", "--nodes", "1"], "--nodes: 1 is not in 2..16"),
        (["lab", "demo", "--advert-interval", "15ms"], "not a multiple of 10ms"),
    ],
)
def test_bad_arguments_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_without_namespaces_up_and_down_cannot_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_lab, "netns_unavailable", lambda: "network namespaces need root")
    assert main(["lab", "up"]) == 3
    assert main(["lab", "down"]) == 3
    assert "need root" in capsys.readouterr().err


def test_without_namespaces_the_demo_is_the_simulated_one_and_says_so_first(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_lab, "netns_unavailable", lambda: "network namespaces need root")
    assert main(["lab", "demo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "namespaces are unavailable here (network namespaces need root)" in lines[0]
    assert "SIMULATED" in lines[0]
    assert any("why?" in line for line in lines)


def test_a_vip_that_never_answers_is_said_so_with_the_reason(tmp_path: Path) -> None:
    """The report of a run whose client never got a reply (a daemon without a VIP actor): no outage figure,
    the reason instead; with no event logs, no invented takeover either. No namespace is built."""
    cluster = LabCluster(2, "100ms", root=tmp_path)
    moment = [Moment(mono_ns=t * MS, wall_ns=1_796_083_200 * 10**9 + t * MS) for t in (0, 1000, 1010, 2000, 2010, 3000)]
    run = DemoRun(interval_cs=10, started=moment[0], elected=moment[0], old_master="n1", new_master="n2")
    run.vip = VipSight(master="n1", reachable=False, holders=(), vip_actor=False)
    run.cut_issued, run.cut, run.restore_issued, run.restored, run.end = moment[1:]
    run.echoes = tuple(Echo(seq=i, sent_ns=t * MS) for i, t in enumerate(range(0, 3000, 10), 1))
    lines: list[str] = []
    render(run, cluster, lines.append)
    text = "\n".join(lines)
    assert "not measured: 192.0.2.100 never replied (300 echoes sent)" in text
    assert "n1's daemon runs no VIP actor" in text
    assert "new master           none found in the logs" in text
    assert "lab.cut  n1's cable pulled" in text
