"""ffo.config: defaults, every validation rule (by path and reason), durations, files."""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ffo.config import (
    ConfigUnreadable,
    InstanceSettings,
    NodeConfig,
    RpcPeer,
    RpcSettings,
    load_config,
    loads_config,
    parse_config,
    parse_duration,
)
from ffo.errors import ConfigError
from ffo.vrrp.packet import Family

Data = dict[str, Any]


def minimal() -> Data:
    return {
        "node": {"name": "node-a"},
        "instance": [
            {"name": "v4", "interface": "eth0", "vrid": 51, "priority": 100, "vips": ["192.0.2.100"]},
        ],
    }


def problems(data: Data) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.problems


def with_instance(**changes: object) -> Data:
    data = minimal()
    data["instance"][0].update(changes)
    return data


def without_instance_key(key: str) -> Data:
    data = minimal()
    del data["instance"][0][key]
    return data


RPC: Data = {
    "listen": "tcp://*:5870",
    "secret_key_file": "/etc/ffo/keys/node-a.key_secret",
    "peers": [
        {"name": "node-b", "endpoint": "tcp://192.0.2.2:5870", "public_key_file": "/etc/ffo/keys/node-b.key"},
        {"name": "node-c", "endpoint": "tcp://[2001:db8::3]:5870", "public_key_file": "node-c.key"},
    ],
}


def with_rpc(**changes: object) -> Data:
    data = minimal()
    data["rpc"] = copy.deepcopy(RPC) | changes
    return data


def with_peer(**changes: object) -> Data:
    data = with_rpc()
    data["rpc"]["peers"][0].update(changes)
    return data


# ---------------------------------------------------------------------------------------------- valid configs


def test_defaults_are_applied() -> None:
    config = parse_config(minimal())
    assert config == NodeConfig(
        name="node-a",
        run_dir=Path("/run/ffo"),
        state_dir=Path("/var/lib/ffo"),
        realtime_priority=0,
        instances=(
            InstanceSettings(
                name="v4",
                interface="eth0",
                vrid=51,
                priority=100,
                vips=(IPv4Address("192.0.2.100"),),
                vip_prefixes=(32,),
                family=Family.IPV4,
                advert_interval_cs=100,
                version=3,
                preempt=True,
                accept=True,
                unicast_peers=(),
                use_vmac=False,
                checksum_ipv4_pseudo_header=True,
            ),
        ),
        rpc=None,
    )


def test_every_key_is_read() -> None:
    data: Data = {
        "node": {"name": "n1", "run_dir": "/tmp/run", "state_dir": "state", "realtime_priority": 50},
        "instance": [
            {
                "name": "v6",
                "interface": "bond0.100",
                "vrid": 255,
                "priority": 255,
                "vips": ["2001:db8::100/64", "fe80::1"],
                "advert_interval": "40.95s",
                "version": 3,
                "preempt": False,
                "accept": False,
                "unicast_peers": ["2001:db8::2", "fe80::2"],
                "use_vmac": True,
                "checksum_ipv4_pseudo_header": False,
            },
            {
                "name": "v2",
                "interface": "eth1",
                "vrid": 1,
                "priority": 1,
                "vips": ["198.51.100.7/25"],
                "version": 2,
                "advert_interval": "255s",
            },
        ],
        "rpc": RPC | {"insecure": True},
    }
    config = parse_config(data)
    assert (config.name, config.run_dir, config.state_dir, config.realtime_priority) == (
        "n1",
        Path("/tmp/run"),
        Path("state"),
        50,
    )
    v6, v2 = config.instances
    assert v6.family is Family.IPV6
    assert v6.vips == (IPv6Address("2001:db8::100"), IPv6Address("fe80::1"))
    assert v6.vip_prefixes == (64, 128)
    assert v6.advert_interval_cs == 4095
    assert (v6.preempt, v6.accept, v6.use_vmac, v6.checksum_ipv4_pseudo_header) == (False, False, True, False)
    assert v6.unicast_peers == (IPv6Address("2001:db8::2"), IPv6Address("fe80::2"))
    assert (v2.version, v2.advert_interval_cs, v2.vip_prefixes, v2.family) == (2, 25500, (25,), Family.IPV4)
    assert config.rpc == RpcSettings(
        listen="tcp://*:5870",
        secret_key_file=Path("/etc/ffo/keys/node-a.key_secret"),
        peers=(
            RpcPeer(
                name="node-b",
                endpoint="tcp://192.0.2.2:5870",
                public_key_file=Path("/etc/ffo/keys/node-b.key"),
            ),
            RpcPeer(name="node-c", endpoint="tcp://[2001:db8::3]:5870", public_key_file=Path("node-c.key")),
        ),
        insecure=True,
    )


def test_rpc_defaults() -> None:
    data = minimal()
    data["rpc"] = {"listen": "ipc:///run/ffo/rpc", "secret_key_file": "k"}
    assert parse_config(data).rpc == RpcSettings(listen="ipc:///run/ffo/rpc", secret_key_file=Path("k"))


def test_no_instances_is_allowed() -> None:
    assert parse_config({"node": {"name": "quiet"}}).instances == ()


@pytest.mark.parametrize(
    "first, second",
    [
        ({"vrid": 7}, {"vrid": 7, "vips": ["2001:db8::7"]}),  # same VRID, other family (RFC 9568 §1)
        ({"vrid": 7}, {"vrid": 7, "interface": "eth1", "vips": ["192.0.2.7"]}),  # same VRID, other link
    ],
)
def test_vrid_may_repeat_in_another_family_or_on_another_interface(first: Data, second: Data) -> None:
    data = minimal()
    data["instance"][0].update(first)
    data["instance"].append(data["instance"][0] | {"name": "other"} | second)
    assert len(parse_config(data).instances) == 2


def test_settings_derive_family_and_host_prefixes() -> None:
    settings = InstanceSettings(name="x", interface="eth0", vrid=1, priority=100, vips=(IPv6Address("2001:db8::1"),))
    assert (settings.family, settings.vip_prefixes, settings.advert_interval_cs) == (Family.IPV6, (128,), 100)


@pytest.mark.parametrize(
    "changes",
    [
        {"vrid": 0},
        {"priority": 256},
        {"advert_interval_cs": 4096},
        {"advert_interval_cs": 150, "version": 2},
        {"advert_interval_cs": 25600, "version": 2},
        {"vips": ()},
    ],
)
def test_settings_refuse_out_of_range_values(changes: dict[str, Any]) -> None:
    good = InstanceSettings(name="x", interface="eth0", vrid=1, priority=100, vips=(IPv4Address("192.0.2.1"),))
    with pytest.raises((ValueError, IndexError)):
        attrs.evolve(good, **changes)


# ---------------------------------------------------------------------------------------------- one rule each

RULES: list[tuple[str, Callable[[], Data], str, str]] = [
    # top level
    ("unknown top-level key", lambda: minimal() | {"colour": "red"}, "colour", "unknown key"),
    ("node missing", lambda: {"instance": minimal()["instance"]}, "node", "missing required key"),
    (
        "node not a table",
        lambda: minimal() | {"node": "a"},
        "node",
        'expected a table ([node]), got string "a"',
    ),
    (
        "[instance] instead of [[instance]]",
        lambda: minimal() | {"instance": minimal()["instance"][0]},
        "instance",
        "expected an array of tables ([[instance]]), got a table",
    ),
    (
        "instance not a table",
        lambda: minimal() | {"instance": [1]},
        "instance[0]",
        "expected a table, got integer 1",
    ),
    # [node]
    ("node.name missing", lambda: minimal() | {"node": {}}, "node.name", "missing required key"),
    (
        "node.name with a space",
        lambda: minimal() | {"node": {"name": "node a"}},
        "node.name",
        '"node a" is not a valid name (letters, digits, "_", "-" and ".", starting with a letter or digit; '
        "at most 64 characters)",
    ),
    (
        "node.name not a string",
        lambda: minimal() | {"node": {"name": 1}},
        "node.name",
        "expected a string, got integer 1",
    ),
    (
        "node.run_dir empty",
        lambda: minimal() | {"node": {"name": "a", "run_dir": ""}},
        "node.run_dir",
        '"" is not a file system path',
    ),
    (
        "node.state_dir not a string",
        lambda: minimal() | {"node": {"name": "a", "state_dir": ["x"]}},
        "node.state_dir",
        "expected a string, got an array",
    ),
    (
        "node.realtime_priority too high",
        lambda: minimal() | {"node": {"name": "a", "realtime_priority": 100}},
        "node.realtime_priority",
        "100 is not in 0..99",
    ),
    (
        "node.realtime_priority negative",
        lambda: minimal() | {"node": {"name": "a", "realtime_priority": -1}},
        "node.realtime_priority",
        "-1 is not in 0..99",
    ),
    (
        "node.realtime_priority boolean",
        lambda: minimal() | {"node": {"name": "a", "realtime_priority": True}},
        "node.realtime_priority",
        "expected an integer, got boolean true",
    ),
    (
        "unknown node key",
        lambda: minimal() | {"node": {"name": "a", "nmae": "b"}},
        "node.nmae",
        'unknown key (did you mean "name"?)',
    ),
    # required instance keys
    *[
        (
            f"instance.{key} missing",
            lambda key=key: without_instance_key(key),
            f"instance[0].{key}",
            "missing required key",
        )
        for key in ("name", "interface", "vrid", "priority", "vips")
    ],
    # [[instance]] values
    ("vrid too high", lambda: with_instance(vrid=300), "instance[0].vrid", "300 is not in 1..255"),
    ("vrid zero", lambda: with_instance(vrid=0), "instance[0].vrid", "0 is not in 1..255"),
    (
        "vrid a string",
        lambda: with_instance(vrid="51"),
        "instance[0].vrid",
        'expected an integer, got string "51"',
    ),
    (
        "vrid a boolean",
        lambda: with_instance(vrid=True),
        "instance[0].vrid",
        "expected an integer, got boolean true",
    ),
    (
        "vrid a float",
        lambda: with_instance(vrid=51.0),
        "instance[0].vrid",
        "expected an integer, got float 51.0",
    ),
    ("priority zero", lambda: with_instance(priority=0), "instance[0].priority", "0 is not in 1..255"),
    (
        "priority too high",
        lambda: with_instance(priority=256),
        "instance[0].priority",
        "256 is not in 1..255",
    ),
    ("version 4", lambda: with_instance(version=4), "instance[0].version", "4 is not in 2..3"),
    (
        "instance name empty",
        lambda: with_instance(name=""),
        "instance[0].name",
        '"" is not a valid name (letters, digits, "_", "-" and ".", starting with a letter or digit; '
        "at most 64 characters)",
    ),
    *[
        (
            f"interface {name!r}",
            lambda name=name: with_instance(interface=name),
            "instance[0].interface",
            f'"{name}" is not a valid interface name (at most 15 characters, no "/", ":" or white space)',
        )
        for name in ("", "eth0/1", "eth0:1", "eth 0", "a-very-long-name", "..")
    ],
    (
        "interval not a multiple of 10ms",
        lambda: with_instance(advert_interval="15ms"),
        "instance[0].advert_interval",
        '"15ms" is not a multiple of 10ms',
    ),
    (
        "interval zero",
        lambda: with_instance(advert_interval="0s"),
        "instance[0].advert_interval",
        '"0s" is not in 10ms..40.95s (VRRPv3 advertises 1..4095 centiseconds)',
    ),
    (
        "interval too long for 12 bits",
        lambda: with_instance(advert_interval="40.96s"),
        "instance[0].advert_interval",
        '"40.96s" is not in 10ms..40.95s (VRRPv3 advertises 1..4095 centiseconds)',
    ),
    (
        "interval without unit",
        lambda: with_instance(advert_interval="100"),
        "instance[0].advert_interval",
        '"100" has no unit (use ns, us, ms, s, m, h or d)',
    ),
    (
        "interval as a number",
        lambda: with_instance(advert_interval=1),
        "instance[0].advert_interval",
        'expected a duration string such as "1s" or "100ms", got integer 1',
    ),
    (
        "v2 interval not whole seconds",
        lambda: with_instance(version=2, advert_interval="1.5s"),
        "instance[0].advert_interval",
        '"1.5s" is not a whole number of seconds (VRRPv2 advertises whole seconds)',
    ),
    (
        "v2 interval too long",
        lambda: with_instance(version=2, advert_interval="256s"),
        "instance[0].advert_interval",
        '"256s" is not in 1s..255s (VRRPv2)',
    ),
    (
        "v2 with IPv6",
        lambda: with_instance(version=2, vips=["2001:db8::1"]),
        "instance[0].version",
        "VRRPv2 is IPv4 only, but the vips are IPv6",
    ),
    ("vips empty", lambda: with_instance(vips=[]), "instance[0].vips", "must list at least one address"),
    (
        "vips a string",
        lambda: with_instance(vips="192.0.2.1"),
        "instance[0].vips",
        'expected an array, got string "192.0.2.1"',
    ),
    (
        "vips too many",
        lambda: with_instance(vips=[f"10.0.{i // 256}.{i % 256}" for i in range(1, 257)]),
        "instance[0].vips",
        "256 addresses; an advertisement carries at most 255",
    ),
    (
        "vip not an address",
        lambda: with_instance(vips=["192.0.2.1", "192.0.2.300"]),
        "instance[0].vips[1]",
        '"192.0.2.300" is not an IPv4 or IPv6 address (with an optional /prefix)',
    ),
    (
        "vip not a string",
        lambda: with_instance(vips=[3232235521]),
        "instance[0].vips[0]",
        "expected an address string, got integer 3232235521",
    ),
    (
        "vips in two families",
        lambda: with_instance(vips=["192.0.2.1", "192.0.2.2", "2001:db8::1"]),
        "instance[0].vips[2]",
        "2001:db8::1 is IPv6, but 192.0.2.1 is IPv4; one instance has one family (use two instances)",
    ),
    (
        "vip twice",
        lambda: with_instance(vips=["192.0.2.1/24", "192.0.2.1"]),
        "instance[0].vips[1]",
        "192.0.2.1 is listed twice",
    ),
    (
        "vip multicast",
        lambda: with_instance(vips=["224.0.0.18"]),
        "instance[0].vips[0]",
        "224.0.0.18 is a multicast address",
    ),
    (
        "vip unspecified",
        lambda: with_instance(vips=["::"]),
        "instance[0].vips[0]",
        ":: is the unspecified address",
    ),
    (
        "vip loopback",
        lambda: with_instance(vips=["127.0.0.1"]),
        "instance[0].vips[0]",
        "127.0.0.1 is a loopback address",
    ),
    (
        "unicast peer in the other family",
        lambda: with_instance(unicast_peers=["192.0.2.2", "2001:db8::2"]),
        "instance[0].unicast_peers[1]",
        "2001:db8::2 is IPv6, but the vips are IPv4",
    ),
    (
        "unicast peer with a prefix",
        lambda: with_instance(unicast_peers=["192.0.2.2/24"]),
        "instance[0].unicast_peers[0]",
        '"192.0.2.2/24" is not an IPv4 or IPv6 address',
    ),
    (
        "unicast peer twice",
        lambda: with_instance(unicast_peers=["192.0.2.2", "192.0.2.2"]),
        "instance[0].unicast_peers[1]",
        "192.0.2.2 is listed twice",
    ),
    (
        "unicast peers not an array",
        lambda: with_instance(unicast_peers="192.0.2.2"),
        "instance[0].unicast_peers",
        'expected an array, got string "192.0.2.2"',
    ),
    *[
        (
            f"{key} not a boolean",
            lambda key=key: with_instance(**{key: "yes"}),
            f"instance[0].{key}",
            'expected a boolean (true or false), got string "yes"',
        )
        for key in ("preempt", "accept", "use_vmac", "checksum_ipv4_pseudo_header")
    ],
    ("unknown instance key", lambda: with_instance(colour="red"), "instance[0].colour", "unknown key"),
    (
        "misspelt instance key",
        lambda: with_instance(prority=100),
        "instance[0].prority",
        'unknown key (did you mean "priority"?)',
    ),
    # [rpc]
    ("rpc not a table", lambda: minimal() | {"rpc": 1}, "rpc", "expected a table ([rpc]), got integer 1"),
    (
        "rpc.listen missing",
        lambda: minimal() | {"rpc": {"secret_key_file": "k"}},
        "rpc.listen",
        "missing required key",
    ),
    (
        "rpc.secret_key_file missing",
        lambda: minimal() | {"rpc": {"listen": "tcp://*:1"}},
        "rpc.secret_key_file",
        "missing required key",
    ),
    (
        "rpc.listen not an endpoint",
        lambda: with_rpc(listen="0.0.0.0:5870"),
        "rpc.listen",
        '"0.0.0.0:5870" is not a ZeroMQ endpoint (tcp://HOST:PORT or ipc://PATH)',
    ),
    (
        "rpc.listen port 0",
        lambda: with_rpc(listen="tcp://*:0"),
        "rpc.listen",
        'port 0 is not in 1..65535 (or "*")',
    ),
    (
        "rpc.insecure not a boolean",
        lambda: with_rpc(insecure=1),
        "rpc.insecure",
        "expected a boolean (true or false), got integer 1",
    ),
    ("unknown rpc key", lambda: with_rpc(peer=[]), "rpc.peer", 'unknown key (did you mean "peers"?)'),
    (
        "rpc.peers not an array",
        lambda: with_rpc(peers={"name": "b"}),
        "rpc.peers",
        "expected an array of tables ([[rpc.peers]]), got a table",
    ),
    (
        "peer endpoint not an endpoint",
        lambda: with_peer(endpoint="192.0.2.2"),
        "rpc.peers[0].endpoint",
        '"192.0.2.2" is not a ZeroMQ endpoint (tcp://HOST:PORT or ipc://PATH)',
    ),
    (
        "peer endpoint with a wildcard port",
        lambda: with_peer(endpoint="tcp://192.0.2.2:*"),
        "rpc.peers[0].endpoint",
        "port * is not in 1..65535",
    ),
    (
        "peer endpoint port too high",
        lambda: with_peer(endpoint="tcp://192.0.2.2:65536"),
        "rpc.peers[0].endpoint",
        "port 65536 is not in 1..65535",
    ),
    (
        "peer without a public key",
        lambda: with_rpc(peers=[{"name": "b", "endpoint": "tcp://h:1"}]),
        "rpc.peers[0].public_key_file",
        "missing required key",
    ),
    (
        "peer named like this node",
        lambda: with_peer(name="node-a"),
        "rpc.peers[0].name",
        '"node-a" is this node\'s own name (node.name)',
    ),
    (
        "peer named twice",
        lambda: with_peer(name="node-c"),
        "rpc.peers[1].name",
        '"node-c" is already the name of rpc.peers[0]',
    ),
    ("unknown peer key", lambda: with_peer(key="x"), "rpc.peers[0].key", "unknown key"),
]


@pytest.mark.parametrize("make, path, reason", [rule[1:] for rule in RULES], ids=[rule[0] for rule in RULES])
def test_each_rule_names_its_path_and_reason(make: Callable[[], Data], path: str, reason: str) -> None:
    assert problems(make()) == [(path, reason)]


# ------------------------------------------------------------------------------------------- across instances


def two_instances(**second: object) -> Data:
    data = minimal()
    data["instance"].append(data["instance"][0] | {"name": "other", "vrid": 52, "vips": ["192.0.2.200"]} | second)
    return data


def test_instance_names_are_unique() -> None:
    assert problems(two_instances(name="v4")) == [("instance[1].name", '"v4" is already the name of instance[0]')]


def test_interface_vrid_family_is_unique() -> None:
    assert problems(two_instances(vrid=51)) == [
        ("instance[1].vrid", "VRID 51 on eth0 (IPv4) is already used by instance[0]")
    ]


def test_a_vip_belongs_to_one_instance() -> None:
    assert problems(two_instances(vips=["192.0.2.200", "192.0.2.100/24"])) == [
        ("instance[1].vips[1]", "192.0.2.100 is already a VIP of instance[0]")
    ]


# ---------------------------------------------------------------------------------------------- all at once


def test_every_problem_is_reported_at_once() -> None:
    data = minimal() | {"colour": "red"}
    data["node"]["realtime_priority"] = "high"
    data["instance"][0].update(vrid=300, advert_interval="15ms", colour="blue", vips=["192.0.2.1", "nope"])
    data["instance"].append({"name": "b", "interface": "eth0", "priority": 0, "vips": ["2001:db8::1"], "version": 2})
    data["rpc"] = {"listen": "tcp://*:1", "peers": [{"name": "x", "endpoint": "bad", "public_key_file": "k"}]}
    assert problems(data) == [
        ("node.realtime_priority", 'expected an integer, got string "high"'),
        ("instance[0].vrid", "300 is not in 1..255"),
        ("instance[0].vips[1]", '"nope" is not an IPv4 or IPv6 address (with an optional /prefix)'),
        ("instance[0].advert_interval", '"15ms" is not a multiple of 10ms'),
        ("instance[0].colour", "unknown key"),
        ("instance[1].vrid", "missing required key"),
        ("instance[1].priority", "0 is not in 1..255"),
        ("instance[1].version", "VRRPv2 is IPv4 only, but the vips are IPv6"),
        ("rpc.secret_key_file", "missing required key"),
        ("rpc.peers[0].endpoint", '"bad" is not a ZeroMQ endpoint (tcp://HOST:PORT or ipc://PATH)'),
        ("colour", "unknown key"),
    ]


def test_config_error_message_lists_every_problem() -> None:
    with pytest.raises(ConfigError, match=r"(?s)instance\[0\]\.vrid: 0 is not in 1\.\.255.*priority"):
        parse_config(with_instance(vrid=0, priority=0))


# ---------------------------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    "text, ns",
    [
        ("10ms", 10_000_000),
        ("1s", 1_000_000_000),
        ("1.5s", 1_500_000_000),
        ("250us", 250_000),
        ("250µs", 250_000),
        ("2m", 120_000_000_000),
        ("1h", 3_600_000_000_000),
        ("7ns", 7),
        ("0s", 0),
        ("0.01s", 10_000_000),
        ("40.95s", 40_950_000_000),
        ("1.000000001s", 1_000_000_001),
        ("007ms", 7_000_000),
    ],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", '"" is not a duration (write a number and a unit, e.g. "10ms", "1.5s")'),
        ("s", '"s" is not a duration (write a number and a unit, e.g. "10ms", "1.5s")'),
        ("-1s", '"-1s" is not a duration (write a number and a unit, e.g. "10ms", "1.5s")'),
        (".5s", '".5s" is not a duration (write a number and a unit, e.g. "10ms", "1.5s")'),
        ("1.s", '"1.s" has an unknown unit ".s" (use ns, us, ms, s, m, h or d)'),
        ("15", '"15" has no unit (use ns, us, ms, s, m, h or d)'),
        ("1sec", '"1sec" has an unknown unit "sec" (use ns, us, ms, s, m, h or d)'),
        ("1 s", '"1 s" has an unknown unit " s" (use ns, us, ms, s, m, h or d)'),
        ("1S", '"1S" has an unknown unit "S" (use ns, us, ms, s, m, h or d)'),
        ("1e3ms", '"1e3ms" has an unknown unit "e3ms" (use ns, us, ms, s, m, h or d)'),
        ("1.5ns", '"1.5ns" is not a whole number of nanoseconds'),
        ("9" * 70 + "s", f'"{"9" * 70}s" is not a duration (write a number and a unit, e.g. "10ms", "1.5s")'),
    ],
)
def test_parse_duration_refuses(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == reason


UNITS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


@given(st.integers(min_value=0, max_value=10**15), st.sampled_from(sorted(UNITS)))
def test_parse_duration_of_formatted_integers_round_trips(count: int, unit: str) -> None:
    assert parse_duration(f"{count}{unit}") == count * UNITS[unit]


@given(st.integers(min_value=0, max_value=10**15))
def test_parse_duration_of_decimal_seconds_round_trips(ns: int) -> None:
    assert parse_duration(f"{ns // 10**9}.{ns % 10**9:09d}s") == ns


@given(st.integers(min_value=1, max_value=4095))
def test_every_v3_interval_is_accepted_in_centiseconds(cs: int) -> None:
    text = f"{cs * 10}ms"
    assert parse_config(with_instance(advert_interval=text)).instances[0].advert_interval_cs == cs


# ---------------------------------------------------------------------------------------------- files


MINIMAL_TOML = """\
[node]
name = "node-a"

[[instance]]
name = "v4"
interface = "eth0"
vrid = 51
priority = 100
vips = ["192.0.2.100"]
"""


def test_loads_config_reads_toml() -> None:
    assert loads_config(MINIMAL_TOML) == parse_config(minimal())


def test_toml_syntax_error_names_line_and_column() -> None:
    with pytest.raises(ConfigError) as caught:
        loads_config(MINIMAL_TOML + "vrid 52\n", source="ffo.toml")
    assert caught.value.problems == [("ffo.toml:10:6", "invalid TOML: Expected '=' after a key in a key/value pair")]


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "ffo.toml"
    path.write_text(MINIMAL_TOML, encoding="utf-8")
    assert load_config(path) == parse_config(minimal())


def test_load_config_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ffo.toml"
    path.write_text("[node\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [(where, reason)] = caught.value.problems
    assert where.startswith(f"{path}:1:")
    assert reason.startswith("invalid TOML: ")


@pytest.mark.parametrize("name", ["missing.toml", "."])
def test_unreadable_file_is_its_own_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigUnreadable) as caught:
        load_config(tmp_path / name)
    assert str(tmp_path) in str(caught.value)
    assert not isinstance(caught.value, ConfigError)


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "ffo.toml"
    path.write_bytes(b'[node]\nname = "\xff"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [(str(path), "is not UTF-8 text (byte 15)")]


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ffo.toml"


def test_example_config_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert [(i.vrid, i.family, i.vips[0], i.interface) for i in config.instances] == [
        (51, Family.IPV4, IPv4Address("192.0.2.100"), "eth0"),
        (52, Family.IPV6, IPv6Address("2001:db8::100"), "eth0"),
    ]
    assert config.rpc is None


def test_example_rpc_section_is_valid_once_uncommented() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    start = text.index("# [rpc]")
    uncommented = text[:start] + "\n".join(line.removeprefix("# ") for line in text[start:].splitlines())
    rpc = loads_config(uncommented).rpc
    assert rpc is not None
    assert [peer.name for peer in rpc.peers] == ["node-b"]


def test_config_module_is_pure() -> None:
    """STYLE.md convention 1: no sockets, clocks, randomness, event loop, ZeroMQ or netlink."""
    source = Path(__file__).resolve().parent.parent / "ffo" / "config.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"socket", "time", "random", "asyncio", "zmq", "pyroute2"}


# ---------------------------------------------------------------------------------------------- [events]


def test_events_defaults_and_directory() -> None:
    config = parse_config(minimal())
    assert config.events.fsync_interval_ns == 10_000_000
    assert config.events.segment_max_bytes == 64 << 20
    assert config.events.retain_age_ns == 30 * 86400 * 1_000_000_000
    assert config.events_dir == Path("/var/lib/ffo/events")


def test_events_settings_are_read_with_units() -> None:
    data = minimal() | {
        "events": {
            "fsync_interval": "50ms",
            "segment_max_bytes": "8MiB",
            "retain_bytes": 1 << 20,
            "retain_age": "7d",
            "run_flush_interval": "10s",
        }
    }
    events = parse_config(data).events
    assert (events.fsync_interval_ns, events.segment_max_bytes, events.retain_bytes) == (50_000_000, 8 << 20, 1 << 20)
    assert (events.retain_age_ns, events.run_flush_interval_ns) == (7 * 86400 * 10**9, 10 * 10**9)


def test_bad_events_settings_name_the_key() -> None:
    data = minimal() | {"events": {"fsync_interval": "fast", "segment_max_bytes": "12 parsecs", "retain": 1}}
    assert problems(data) == [
        ("events.fsync_interval", '"fast" is not a duration (write a number and a unit, e.g. "10ms", "1.5s")'),
        ("events.segment_max_bytes", '"12 parsecs" has an unknown unit "parsecs" (use B, KiB, MiB, GiB or TiB)'),
        ("events.retain", 'unknown key (did you mean "retain_age"?)'),
    ]
