"""The node's VRRP core over a fake wire: real packets (encode/decode), a fake clock, records replayed."""

from __future__ import annotations

import heapq
import ipaddress
import itertools

import attrs
import pytest

from ffo.config import InstanceSettings
from ffo.vrrp.effects import AcquireVips, AnnounceVips, ReleaseVips
from ffo.vrrp.node import MULTICAST_GROUP, Action, Append, Send, VipCommand, VrrpNode
from ffo.vrrp.packet import Advertisement, ChecksumForm, Family, decode
from ffo.vrrp.record import TransitionMade, VrrpRecord
from ffo.vrrp.replay import replay

MS = 1_000_000
S = 1_000_000_000
VIP = ipaddress.IPv4Address("192.0.2.100")


def settings(priority: int, **changes: object) -> InstanceSettings:
    base = InstanceSettings(name="web", interface="eth0", vrid=51, priority=priority, vips=(VIP,), vip_prefixes=(24,))
    return attrs.evolve(base, **changes)


@attrs.define
class Wire:
    """Nodes on one segment: every Send reaches the other running nodes 100 µs later, as decoded packets."""

    nodes: dict[str, VrrpNode]
    addresses: dict[str, ipaddress.IPv4Address]
    now: int = 0
    down: set[str] = attrs.field(factory=set)
    queue: list[tuple[int, int, str, ipaddress.IPv4Address, bytes]] = attrs.field(factory=list)
    records: dict[str, list[VrrpRecord]] = attrs.field(factory=dict)
    vips: dict[str, list[VipCommand]] = attrs.field(factory=dict)
    forms: list[ChecksumForm | None] = attrs.field(factory=list)
    _sequence: itertools.count[int] = attrs.field(factory=itertools.count)

    def act(self, name: str, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Append):
                self.records.setdefault(name, []).append(action.record)
            elif isinstance(action, VipCommand):
                self.vips.setdefault(name, []).append(action)
            elif isinstance(action, Send) and name not in self.down:
                for other in self.nodes:
                    if other != name and other not in self.down:
                        entry = (self.now + 100_000, next(self._sequence), other, action.source, action.payload)
                        heapq.heappush(self.queue, entry)

    def run_until(self, end_ns: int) -> None:
        while True:
            deadlines = [
                (d, name) for name, node in self.nodes.items() if name not in self.down and (d := node.next_deadline())
            ]
            next_timer = min(deadlines) if deadlines else None
            next_packet = self.queue[0][0] if self.queue else None
            candidates = [t for t in (next_timer[0] if next_timer else None, next_packet) if t is not None]
            if not candidates or min(candidates) > end_ns:
                self.now = end_ns
                return
            if next_packet is not None and (next_timer is None or next_packet <= next_timer[0]):
                at, _, target, source, payload = heapq.heappop(self.queue)
                self.now = at
                if target in self.down:
                    continue
                decoded = decode(payload, family=Family.IPV4, src=source, dst=MULTICAST_GROUP[Family.IPV4], ttl=255)
                self.forms.append(decoded.checksum_form)
                self.act(target, self.nodes[target].received("eth0", Family.IPV4, source, decoded.advertisement, at))
            else:
                assert next_timer is not None
                self.now, name = next_timer
                self.act(name, self.nodes[name].timers_due(self.now + 50_000))  # woke 50 µs late

    def role(self, name: str) -> str:
        return str(self.nodes[name].instances["web"].state.role.value)


def cluster(*priorities: int, **changes: object) -> Wire:
    addresses = {f"n{i}": ipaddress.IPv4Address(f"192.0.2.{10 + i}") for i in range(1, len(priorities) + 1)}
    nodes = {
        name: VrrpNode((settings(priority, **changes),), {("eth0", Family.IPV4): addresses[name]})
        for name, priority in zip(addresses, priorities, strict=True)
    }
    wire = Wire(nodes=nodes, addresses=addresses)
    for name, node in nodes.items():
        wire.act(name, node.start(0))
    return wire


def test_the_highest_priority_becomes_master_and_takes_the_vips() -> None:
    wire = cluster(200, 100)
    wire.run_until(10 * S)
    assert (wire.role("n1"), wire.role("n2")) == ("MASTER", "BACKUP")
    assert [type(command.effect) for command in wire.vips["n1"]] == [AcquireVips, AnnounceVips]
    assert wire.vips["n1"][0].prefixes == (24,)
    assert "n2" not in wire.vips
    assert set(wire.forms) == {ChecksumForm.PSEUDO_HEADER}
    status = wire.nodes["n2"].status()[0]
    assert (status.state, status.master, status.vips) == ("BACKUP", "192.0.2.11", ("192.0.2.100/24",))
    assert status.counters["adverts_received"] >= 5


def test_a_silent_master_is_replaced_after_master_down_interval_and_the_lateness_is_measured() -> None:
    wire = cluster(200, 100)
    wire.run_until(10 * S)
    wire.down.add("n1")
    wire.run_until(20 * S)
    assert wire.role("n2") == "MASTER"
    takeover = [r for r in wire.records["n2"] if isinstance(r, TransitionMade)][-1]
    assert takeover.transition.cause.kind.value == "master_down"
    late = wire.nodes["n2"].status()[0].timer_lateness_ms
    assert late["p50"] == late["max"] == pytest.approx(0.05)


def test_a_graceful_shutdown_hands_over_within_skew_time() -> None:
    wire = cluster(200, 100)
    wire.run_until(10 * S)
    wire.act("n1", wire.nodes["n1"].shutdown(wire.now))
    assert [type(command.effect) for command in wire.vips["n1"]][-1] is ReleaseVips
    stopped_at = wire.now
    wire.down.add("n1")
    wire.queue = [entry for entry in wire.queue if entry[2] != "n1"]
    wire.run_until(11 * S)
    assert wire.role("n2") == "MASTER"
    takeover = [r for r in wire.records["n2"] if isinstance(r, TransitionMade)][-1]
    assert takeover.transition.cause.kind.value == "master_left"
    assert takeover.step.now_ns - stopped_at < 700 * MS  # Skew_Time at priority 100: 609 ms (+ delay + lateness)


def test_records_come_before_the_packets_and_vip_commands_of_their_step() -> None:
    node = VrrpNode((settings(255),), {("eth0", Family.IPV4): ipaddress.IPv4Address("192.0.2.11")})
    actions = node.start(0)  # the address owner becomes master at once
    kinds = [type(action) for action in actions]
    first_effect = min(kinds.index(Send), kinds.index(VipCommand))
    transition = next(
        i for i, a in enumerate(actions) if isinstance(a, Append) and isinstance(a.record, TransitionMade)
    )
    assert transition < first_effect


def test_both_nodes_streams_replay_without_divergence() -> None:
    wire = cluster(200, 150, 100)
    wire.run_until(10 * S)
    wire.down.add("n1")
    wire.run_until(20 * S)
    for name, node in wire.nodes.items():
        wire.act(name, node.shutdown(wire.now))
    for name, records in wire.records.items():
        result = replay((f"vrrp:{i}", record) for i, record in enumerate(records, 1))
        assert result.divergences == (), name
        assert result.transitions >= 2


def test_other_vrids_and_non_peers_are_counted_not_fed() -> None:
    peer = ipaddress.IPv4Address("192.0.2.12")
    node = VrrpNode(
        (settings(100, unicast_peers=(peer,)),), {("eth0", Family.IPV4): ipaddress.IPv4Address("192.0.2.11")}
    )
    node.start(0)
    other = Advertisement(version=3, vrid=52, priority=200, interval_cs=100, addresses=(VIP,))
    assert node.received("eth0", Family.IPV4, peer, other, S) == []
    ours = attrs.evolve(other, vrid=51)
    assert node.received("eth0", Family.IPV4, ipaddress.IPv4Address("192.0.2.99"), ours, S) == []
    assert node.counters["other_vrid:eth0"] == 1
    assert node.instances["web"].counters["dropped:not_a_peer"] == 1
    actions = node.received("eth0", Family.IPV4, peer, ours, S)
    assert node.instances["web"].counters["adverts_received"] == 1
    assert not any(isinstance(action, Send) for action in actions)


def test_unicast_peers_get_one_packet_each_and_the_plain_checksum_form_when_asked() -> None:
    peers = (ipaddress.IPv4Address("192.0.2.12"), ipaddress.IPv4Address("192.0.2.13"))
    node = VrrpNode(
        (settings(255, unicast_peers=peers, checksum_ipv4_pseudo_header=False),),
        {("eth0", Family.IPV4): ipaddress.IPv4Address("192.0.2.11")},
    )
    sends = [action for action in node.start(0) if isinstance(action, Send)]
    assert [send.destination for send in sends] == list(peers)
    for send in sends:
        decoded = decode(send.payload, family=Family.IPV4, src=send.source, dst=send.destination, ttl=255)
        assert decoded.checksum_form is ChecksumForm.PLAIN
        assert decoded.advertisement.priority == 255


def test_status_keeps_the_maximum_current_and_refreshes_percentiles_every_few_reports_staggered() -> None:
    """Summaries sort the whole lateness ring: each instance redoes it every LATENESS_REFRESH_REPORTS reports,
    not all in the same one; the maximum (the stall indicator) is never stale."""
    from ffo.vrrp.node import LATENESS_REFRESH_REPORTS

    many = tuple(attrs.evolve(settings(100), name=f"vr{i}", vrid=i) for i in range(1, 5))
    node = VrrpNode(many, {("eth0", Family.IPV4): ipaddress.IPv4Address("192.0.2.11")})
    for runtime in node.instances.values():
        runtime.timer_fired(1 * MS)
    assert [s.timer_lateness_ms["p50"] for s in node.status()] == [1.0] * 4
    refreshed_at: dict[str, list[int]] = {name: [] for name in node.instances}
    for report in range(1, 2 * LATENESS_REFRESH_REPORTS + 1):
        for runtime in node.instances.values():
            runtime.timer_fired(report * 10 * MS)
        for status in node.status():
            assert status.timer_lateness_ms["max"] == report * 10.0
            if status.timer_lateness_ms["p99"] == report * 10.0:
                refreshed_at[status.name].append(report)
    assert all(len(reports) == 2 for reports in refreshed_at.values()), refreshed_at
    assert len({reports[0] for reports in refreshed_at.values()}) == 4  # staggered: one instance per report
