"""Interop on the wire with keepalived: ffo's socket decodes keepalived's advertisements, and keepalived obeys ffo's.

keepalived (the Debian package, 2.2.7 here) runs in node n1's namespace in the foreground with its own config,
pid files and no syslog, so it never meets a system instance; it is stopped by its PID. ffo's socket listens on
n2. Both directions are checked with default checksum settings on both sides: keepalived's advertisement
decodes with the pseudo-header form, and an ffo advertisement with a higher priority makes keepalived leave
MASTER and remove its VIP (which it does only for an advertisement that passed its own checksum check).
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ffo.lab import Lab, stop_process
from ffo.net import Received, Rejected
from ffo.vrrp.packet import Advertisement, ChecksumForm, Family
from tests.lab.support import receive, wait_until
from tests.net.conftest import OpenSocket

pytestmark = [
    pytest.mark.netns,
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed"),
]

VIPS = {Family.IPV4: "192.0.2.100/24", Family.IPV6: "2001:db8::100/64"}
CONFIG = """\
global_defs {{
    router_id ffo_interop
    vrrp_version 3
}}
vrrp_instance ffo_interop {{
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 200
    advert_int 1
    virtual_ipaddress {{
        {vip}
    }}
}}
"""


class Keepalived:
    """One keepalived, VRRP only, in the foreground inside a lab node; its console log in `log`."""

    def __init__(self, lab: Lab, node: str, family: Family, directory: Path) -> None:
        config = directory / "keepalived.conf"
        config.write_text(CONFIG.format(vip=VIPS[family]))
        self.log = directory / "keepalived.log"
        argv = ["keepalived", "--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp"]
        argv += ["--use-file", str(config), "--pid", str(directory / "k.pid"), "--vrrp_pid", str(directory / "v.pid")]
        with self.log.open("wb") as log:
            self.process = lab.exec(node, argv, stdout=log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture
def start_keepalived(lab: Lab, tmp_path: Path) -> Iterator[Callable[[Family], Keepalived]]:
    started: list[Keepalived] = []

    def start(family: Family) -> Keepalived:
        started.append(Keepalived(lab, "n1", family, tmp_path))
        return started[-1]

    yield start
    for daemon in started:
        daemon.stop()


def has_vip(lab: Lab, family: Family) -> bool:
    vip = VIPS[family].split("/")[0]
    return any(entry.get("local") == vip for entry in lab.addresses("n1"))


@pytest.mark.parametrize("family", [Family.IPV4, Family.IPV6], ids=["ipv4", "ipv6"])
def test_keepalived_and_ffo_understand_each_other(
    lab: Lab, open_socket: OpenSocket, start_keepalived: Callable[[Family], Keepalived], family: Family
) -> None:
    sock = open_socket("n2", family)
    daemon = start_keepalived(family)
    source = lab.ipv4("n1") if family is Family.IPV4 else lab.link_local("n1")
    vip = ipaddress.ip_interface(VIPS[family]).ip

    def from_keepalived(got: list[Received | Rejected]) -> bool:
        return any(isinstance(d, Received) and d.src == source for d in got)

    got = receive(sock, from_keepalived, timeout=12, what="keepalived's first advertisement")
    advert = next(d for d in got if isinstance(d, Received) and d.src == source)
    assert advert.advertisement == Advertisement(version=3, vrid=51, priority=200, interval_cs=100, addresses=(vip,))
    assert advert.ttl == 255
    assert advert.checksum_form is ChecksumForm.PSEUDO_HEADER
    assert sock.statistics().rejected == {}, daemon.output()

    wait_until(lambda: has_vip(lab, family), what="keepalived (MASTER) to add its VIP")
    stronger = Advertisement(version=3, vrid=51, priority=250, interval_cs=100, addresses=(vip,))
    deadline = time.monotonic() + 8
    while sock.send(stronger) and has_vip(lab, family):
        assert time.monotonic() < deadline, f"keepalived kept its VIP:\n{daemon.output()}"
        time.sleep(0.1)  # the pace of our advertisements, not a wait for correctness
    assert not has_vip(lab, family), f"could not send: {sock.statistics()}"
    assert daemon.process.poll() is None, daemon.output()
    assert "Entering BACKUP STATE" in daemon.output()
