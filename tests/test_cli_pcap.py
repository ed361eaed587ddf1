"""`ffo pcap FILE [--json]`, run in-process through the CLI entry point."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import pytest

import ffo.cli.main
from ffo.vrrp.packet import Advertisement, Family, encode
from tests.support.pcap import ethernet, ipv4, ipv6, pcap_file, pcapng_file

KEYS = {
    "time",
    "src",
    "dst",
    "ttl",
    "version",
    "type",
    "vrid",
    "priority",
    "interval_cs",
    "addresses",
    "checksum_form",
    "valid",
    "reason",
}


@pytest.fixture(autouse=True)
def only_pcap(monkeypatch: pytest.MonkeyPatch) -> None:
    # The other subcommands are other modules' business: keep this test independent of them.
    monkeypatch.setattr(ffo.cli.main, "SUBCOMMANDS", ("pcap",))


def v3_ipv4(priority: int = 200) -> bytes:
    adv = Advertisement(version=3, vrid=51, priority=priority, interval_cs=100, addresses=(IPv4Address("192.0.2.100"),))
    return encode(adv, family=Family.IPV4, src=IPv4Address("192.0.2.11"), dst=IPv4Address("224.0.0.18"))


def v3_ipv6() -> bytes:
    adv = Advertisement(version=3, vrid=7, priority=100, interval_cs=10, addresses=(IPv6Address("2001:db8::1"),))
    return encode(adv, family=Family.IPV6, src=IPv6Address("fe80::11"), dst=IPv6Address("ff02::12"))


def v2_ipv4() -> bytes:
    adv = Advertisement(version=2, vrid=9, priority=50, interval_cs=300, addresses=(IPv4Address("192.0.2.9"),))
    return encode(adv, family=Family.IPV4, src=IPv4Address("192.0.2.11"), dst=IPv4Address("224.0.0.18"))


def frames() -> list[tuple[float, bytes]]:
    good = v3_ipv4()
    bad_checksum = good[:6] + bytes([good[6] ^ 0xFF]) + good[7:]
    return [
        (1000.5, ethernet(ipv4("192.0.2.11", "224.0.0.18", good))),
        (1001.5, ethernet(ipv4("192.0.2.11", "224.0.0.18", bad_checksum))),
        (1002.5, ethernet(ipv4("192.0.2.11", "224.0.0.18", good, ttl=64))),
        (
            1003.5,
            ethernet(ipv4("192.0.2.11", "192.0.2.12", b"\x00\x35\x00\x35\x00\x08\x00\x00", protocol=17)),
        ),
        (1004.5, ethernet(bytes(28), ethertype=0x0806)),  # ARP
        (1005.5, ethernet(ipv6("fe80::11", "ff02::12", v3_ipv6()))),
        (1006.5, ethernet(ipv4("192.0.2.11", "224.0.0.18", v2_ipv4()), vlans=(100,))),
    ]


def run_json(path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    assert ffo.cli.main.main(["pcap", "--json", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return [json.loads(line) for line in out.splitlines()]


def check_rows(rows: list[dict[str, Any]]) -> None:
    assert len(rows) == 5  # the UDP datagram and the ARP frame are skipped
    assert all(set(row) == KEYS for row in rows)
    good, bad_checksum, ttl64, v6, v2 = rows
    assert good == {
        "time": 1000.5,
        "src": "192.0.2.11",
        "dst": "224.0.0.18",
        "ttl": 255,
        "version": 3,
        "type": 1,
        "vrid": 51,
        "priority": 200,
        "interval_cs": 100,
        "addresses": ["192.0.2.100"],
        "checksum_form": "pseudo-header",
        "valid": True,
        "reason": None,
    }
    assert (bad_checksum["valid"], bad_checksum["reason"], bad_checksum["checksum_form"]) == (
        False,
        "bad_checksum",
        None,
    )
    assert (bad_checksum["vrid"], bad_checksum["priority"], bad_checksum["addresses"]) == (
        51,
        200,
        ["192.0.2.100"],
    )
    assert (ttl64["valid"], ttl64["reason"], ttl64["ttl"]) == (False, "bad_ttl", 64)
    assert (ttl64["vrid"], ttl64["checksum_form"]) == (51, "pseudo-header")
    assert (v6["src"], v6["dst"], v6["vrid"], v6["interval_cs"], v6["valid"]) == (
        "fe80::11",
        "ff02::12",
        7,
        10,
        True,
    )
    assert (v2["version"], v2["interval_cs"], v2["checksum_form"], v2["valid"]) == (2, 300, "plain", True)


def test_json_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mixed.pcap"
    path.write_bytes(pcap_file(frames()))
    check_rows(run_json(path, capsys))


def test_pcapng_big_endian_nanoseconds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mixed.pcapng"
    path.write_bytes(pcapng_file(frames(), order=">", tsresol=9))
    check_rows(run_json(path, capsys))


def test_pcapng_written_by_scapy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scapy_utils = pytest.importorskip("scapy.utils")
    layers = pytest.importorskip("scapy.layers.l2")
    path = tmp_path / "scapy.pcapng"
    writer = scapy_utils.PcapNgWriter(str(path))
    for time, frame in frames():
        packet = layers.Ether(frame)
        packet.time = time
        writer.write(packet)
    writer.close()
    check_rows(run_json(path, capsys))


def test_text_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mixed.pcap"
    path.write_bytes(pcap_file(frames()))
    assert ffo.cli.main.main(["pcap", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + 5
    assert lines[0].split()[:5] == ["time", "src", ">", "dst", "ttl"]
    assert lines[1].split() == [
        "1000.500000",
        "192.0.2.11",
        ">",
        "224.0.0.18",
        "255",
        "v3",
        "51",
        "200",
        "100cs",
        "192.0.2.100",
        "pseudo-header",
        "ok",
    ]
    assert lines[2].endswith("INVALID bad_checksum")
    assert lines[3].endswith("INVALID bad_ttl")
    assert " 3s " in lines[5]
    status_column = lines[0].index("status")
    assert all(line[status_column:].split()[0] in {"ok", "INVALID"} for line in lines[1:])


def test_keepalived_vector(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(__file__).resolve().parents[1] / ".." / "shared" / "vectors" / "kl-v3-ipv4.pcap"
    if not path.is_file():
        pytest.skip(f"no captured vectors at {path.parent} (shared/ not beside the repo)")
    rows = run_json(path, capsys)
    assert len(rows) == 13
    assert all(row["valid"] for row in rows)


@pytest.mark.parametrize("content", [None, b"", b"this is not a capture"])
def test_unreadable_file_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None) -> None:
    path = tmp_path / "capture.pcap"
    if content is not None:
        path.write_bytes(content)
    assert ffo.cli.main.main(["pcap", "--json", str(path)]) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1
    assert str(path) in err


def test_torn_tail_is_reported_and_still_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "torn.pcap"
    path.write_bytes(pcap_file(frames())[:-5])
    assert ffo.cli.main.main(["pcap", "--json", str(path)]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 4
    assert "ends inside a packet record" in err


def test_truncated_vrrp_packet_is_a_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A capture with a short snap length: the IP header says more than the frame holds.
    frame = ethernet(ipv4("192.0.2.11", "224.0.0.18", v3_ipv4()))[: 14 + 20 + 8]
    path = tmp_path / "snapped.pcap"
    path.write_bytes(pcap_file([(1.0, frame)]))
    (row,) = run_json(path, capsys)
    assert (row["valid"], row["reason"], row["vrid"], row["addresses"]) == (False, "truncated", 51, None)
