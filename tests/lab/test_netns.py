"""The namespace lab: builds and removes exactly its namespaces, nodes reach each other, faults apply."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ffo.lab import Lab, LabError, NodeSpec, cleanup_stale, inside, list_namespaces
from ffo.lab.namespaces import namespace_pids, run_command
from tests.lab.support import PREFIX, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("require_netns")]


def lab_namespaces(lab: Lab) -> set[str]:
    return {name for name in list_namespaces() if name.startswith(lab.base + "-")}


def expected(lab: Lab) -> set[str]:
    return {lab.switch, *(lab.namespace(node) for node in lab.nodes)}


def test_up_creates_and_down_removes_exactly_its_namespaces() -> None:
    lab = Lab(PREFIX, nodes=2, with_client=True)
    with lab:
        assert lab_namespaces(lab) == expected(lab) == {f"{lab.base}-{r}" for r in ("sw", "n1", "n2", "client")}
        assert all(name.startswith(f"ffo-t-{os.getpid()}-") for name in expected(lab))
    assert lab_namespaces(lab) == set()
    lab.down()  # idempotent


def test_namespaces_are_removed_when_the_block_raises() -> None:
    lab = Lab(PREFIX, nodes=2)
    with pytest.raises(RuntimeError, match="boom"), lab:
        assert lab_namespaces(lab) == expected(lab)
        raise RuntimeError("boom")
    assert lab_namespaces(lab) == set()


def test_a_failed_build_removes_what_it_had_built(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = Lab(PREFIX, nodes=3)
    real = Lab._command

    def failing(self: Lab, command: list[str]) -> str:
        if "addr" in command and self.namespace("n2") in command:
            raise LabError("injected failure")
        return real(self, command)

    monkeypatch.setattr(Lab, "_command", failing)
    with pytest.raises(LabError, match="injected"):
        lab.up()
    assert lab_namespaces(lab) == set()


@pytest.mark.parametrize("family", [4, 6])
def test_nodes_and_client_reach_each_other_over_the_bridge(family: int) -> None:
    with Lab(PREFIX, nodes=2, ipv6=True, with_client=True) as lab:
        lab.wait_ipv6_ready()
        for source, target in [("n1", "n2"), ("n2", "n1"), ("client", "n1")]:
            address = lab.ipv4(target) if family == 4 else lab.ipv6(target)
            assert address is not None
            assert lab.ping(source, address), f"{source} cannot reach {target} at {address}"
        link_local = lab.link_local("n2")
        assert link_local is not None and link_local.is_link_local
        assert lab.ping("n1", link_local)


@pytest.mark.parametrize("where", ["switch", "node"])
def test_cut_stops_and_restore_brings_back_reachability(where: str) -> None:
    with Lab(PREFIX, nodes=2) as lab:
        target = lab.ipv4("n2")
        assert lab.ping("n1", target)
        lab.cut("n2", where=where)  # type: ignore[arg-type]
        assert not lab.ping("n1", target, timeout=0.6)
        lab.restore("n2", where=where)  # type: ignore[arg-type]
        wait_until(lambda: lab.ping("n1", target, timeout=0.5), what="reachability after restore")


def test_loss_drops_what_the_node_sends_and_clears() -> None:
    with Lab(PREFIX, nodes=2) as lab:
        target = lab.ipv4("n2")
        assert lab.ping("n1", target)
        lab.loss("n1", 100, "from")
        assert "direct-action" in lab.filters("n1", "ingress")
        assert not lab.ping("n1", target, timeout=0.6)
        assert "clsact" in lab.qdisc("n1", port=True)
        assert "clsact" not in lab.qdisc("n1")  # on the bridge port: the node's own interface is untouched
        lab.clear_loss("n1")
        assert lab.filters("n1", "ingress").strip() == ""
        wait_until(lambda: lab.ping("n1", target, timeout=0.5), what="reachability after clearing the loss")


def test_partial_loss_drops_some_but_not_all() -> None:
    """50 % each way: of 60 pings, P(none answered) and P(all answered) are both below 1e-7 (0.75^60, 0.25^60)."""
    with Lab(PREFIX, nodes=2) as lab:
        target = lab.ipv4("n2")
        assert lab.ping("n1", target)  # ARP resolved before the loss, so each ping is one request + one reply
        lab.loss("n2", 50, "both")
        answered = sum(lab.ping("n1", target, timeout=0.05) for _ in range(60))
        assert 0 < answered < 60


def test_netem_applies_delay_where_the_kernel_has_netem() -> None:
    with Lab(PREFIX, nodes=2) as lab:
        if not lab.netem_available():
            with pytest.raises(LabError, match="no netem"):
                lab.netem("n1", "delay 20ms")
            pytest.skip("this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM); Lab.loss covers random loss")
        lab.netem("n1", "delay 30ms")
        assert "netem" in lab.qdisc("n1")
        with lab.inside("n1"):
            from ffo.lab import ping

            rtt = ping(lab.ipv4("n2"), timeout=3.0)
        assert rtt is not None and rtt >= 0.03
        lab.clear_netem("n1")
        assert "netem" not in lab.qdisc("n1")


def test_exec_runs_in_the_node_and_down_stops_it() -> None:
    lab = Lab(PREFIX, nodes=1)
    with lab:
        process = lab.exec("n1", ["sleep", "60"])
        comm = Path(f"/proc/{process.pid}/comm")
        wait_until(lambda: comm.read_text().strip() == "sleep", what="ip netns exec to exec sleep (same PID)")
        assert process.pid in namespace_pids(lab.namespace("n1"))
        assert lab.run("n1", ["ip", "-br", "link", "show", "eth0"]).stdout.startswith("eth0")
    assert process.returncode is not None


def test_inside_enters_and_always_leaves() -> None:
    own = os.stat("/proc/thread-self/ns/net").st_ino
    with Lab(PREFIX, nodes=1) as lab:
        target = os.stat(f"/run/netns/{lab.namespace('n1')}").st_ino
        with lab.inside("n1"):
            assert os.stat("/proc/thread-self/ns/net").st_ino == target
        with pytest.raises(ValueError, match="inner"), inside(lab.namespace("n1")):
            raise ValueError("inner")
    assert os.stat("/proc/thread-self/ns/net").st_ino == own


def test_cleanup_stale_removes_dead_runs_and_keeps_live_ones() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"{PREFIX}-{dead.pid}-abcdef-n1"
    live = f"{PREFIX}-{os.getpid()}-abcdef-n1"
    for name in (stale, live):
        assert run_command(["ip", "netns", "add", name]).returncode == 0
    try:
        removed = cleanup_stale(PREFIX)
        assert stale in removed and live not in removed
        assert stale not in list_namespaces() and live in list_namespaces()
    finally:
        for name in (stale, live):
            run_command(["ip", "netns", "del", name])


def test_only_documentation_addresses_and_ffo_prefixes() -> None:
    with pytest.raises(ValueError, match="documentation"):
        NodeSpec(name="n1", ipv4="10.0.0.1/24")
    with pytest.raises(ValueError, match="documentation"):
        NodeSpec(name="n1", ipv4="192.0.2.1/24", ipv6="fd00::1/64")
    with pytest.raises(ValueError, match="ffo-"):
        Lab("test", nodes=1)
    with pytest.raises(ValueError, match="node name"):
        NodeSpec(name="a-very-long-node-name", ipv4="192.0.2.1/24")


@pytest.mark.parametrize("release", [False, True], ids=["atexit-net", "released"])
def test_a_process_that_exits_with_a_lab_up(release: bool) -> None:
    """The atexit safety net removes a lab left up; `release` keeps it for `cleanup_stale` (ffo lab up/down)."""
    script = "from ffo.lab import Lab; lab = Lab('ffo-t', nodes=1).up(); print(lab.base)"
    script += "; lab.release()" if release else ""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    base = result.stdout.strip()
    left = [name for name in list_namespaces() if name.startswith(base + "-")]
    try:
        assert sorted(left) == ([f"{base}-n1", f"{base}-sw"] if release else [])
        if release:
            assert set(cleanup_stale(PREFIX)) >= set(left)  # its owner is dead now
    finally:
        for name in left:
            run_command(["ip", "netns", "del", name])
