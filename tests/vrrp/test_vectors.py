"""Real packets captured from keepalived (shared/vectors): each decodes, and re-encodes to the same bytes.

The expected counts and checksum forms are read from the vectors' own README table, so the two cannot drift.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ffo.pcapfile import CaptureReader
from ffo.vrrp.ipheader import IpDatagram, parse_ip
from ffo.vrrp.packet import IPPROTO_VRRP, ChecksumForm, Decoded, decode, encode

# This repository is checked out beside shared/ (<dir>/main next to <dir>/shared), in CI as well.
VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors"

pytestmark = pytest.mark.skipif(
    not (VECTORS / "README.md").is_file(),
    reason=f"no captured vectors at {VECTORS} (shared/ not beside the repo)",
)


def readme_table() -> dict[str, tuple[int, ChecksumForm]]:
    """file name -> (VRRP packet count, checksum form), from the README's table."""
    table = {}
    for line in (VECTORS / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].endswith(".pcap"):
            count = re.match(r"\d+", cells[3])
            assert count is not None, line
            form = ChecksumForm.PSEUDO_HEADER if "pseudo-header" in cells[4] else ChecksumForm.PLAIN
            assert "pseudo-header" in cells[4] or "message only" in cells[4], line
            table[cells[0]] = (int(count.group()), form)
    return table


def vrrp_packets(path: Path) -> list[tuple[IpDatagram, Decoded]]:
    with path.open("rb") as stream:
        reader = CaptureReader(stream)
        datagrams = [parse_ip(datagram) for _time, datagram in reader]
        assert not reader.torn_tail
    return [
        (ip, decode(ip.payload, family=ip.family, src=ip.src, dst=ip.dst, ttl=ip.ttl))
        for ip in datagrams
        if ip.protocol == IPPROTO_VRRP
    ]


def capture_names() -> list[str]:
    return sorted(path.name for path in VECTORS.glob("*.pcap")) if VECTORS.is_dir() else []


def test_readme_describes_every_capture() -> None:
    assert sorted(readme_table()) == capture_names()
    assert capture_names(), "no captures found"


@pytest.mark.parametrize("name", capture_names())
def test_capture_decodes_and_reencodes(name: str) -> None:
    count, form = readme_table()[name]
    packets = vrrp_packets(VECTORS / name)
    assert len(packets) == count
    for ip, decoded in packets:
        adv = decoded.advertisement
        assert decoded.checksum_form is form
        assert (adv.vrid, adv.version) == (51, 2 if "-v2-" in name else 3)
        again = encode(adv, family=ip.family, src=ip.src, dst=ip.dst, checksum_form=decoded.checksum_form)
        assert again == ip.payload
    priorities = [decoded.advertisement.priority for _ip, decoded in packets]
    assert priorities[-1] == 0  # keepalived's goodbye
    assert all(priority != 0 for priority in priorities[:-1])


def test_details_match_the_readme() -> None:
    def first(name: str) -> Decoded:
        return vrrp_packets(VECTORS / name)[0][1]

    multi = first("kl-v3-ipv4-multi.pcap").advertisement
    assert (multi.priority, multi.interval_cs, [str(a) for a in multi.addresses]) == (
        150,
        50,
        ["192.0.2.100", "192.0.2.101", "192.0.2.102"],
    )
    ipv6_ip, ipv6 = vrrp_packets(VECTORS / "kl-v3-ipv6.pcap")[0]
    assert (str(ipv6_ip.src), str(ipv6_ip.dst)) == ("fe80::ff:fe00:11", "ff02::12")
    assert [str(a) for a in ipv6.advertisement.addresses] == ["2001:db8::100"]
    unicast_ip, _ = vrrp_packets(VECTORS / "kl-v3-ipv4-unicast.pcap")[0]
    assert str(unicast_ip.dst) == "192.0.2.12"
    v2 = first("kl-v2-ipv4.pcap").advertisement
    assert (v2.priority, v2.interval_cs, v2.auth_type, v2.auth_data) == (200, 100, 0, bytes(8))


def test_v2_authentication_data_is_kept() -> None:
    packets = vrrp_packets(VECTORS / "kl-v2-ipv4-auth.pcap")
    for ip, decoded in packets:
        adv = decoded.advertisement
        assert (adv.auth_type, adv.auth_data) == (1, b"secret12")
        assert ip.payload.endswith(b"secret12")
