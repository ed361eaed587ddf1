"""The converter: VRRP values round-trip through msgpack-native data; bad data names its field path."""

from __future__ import annotations

import enum
import ipaddress
from pathlib import Path
from typing import Literal, NewType

import attrs
import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ffo.bus import (
    TAG,
    ConversionError,
    RegistryError,
    UnsupportedTypeError,
    register_type_name,
    structure,
    type_name_of,
    unstructure,
)
from ffo.errors import LocalProtocolError
from ffo.vrrp.cause import Cause, CauseKind
from ffo.vrrp.effects import (
    AcquireVips,
    AnnounceVips,
    CancelTimer,
    Dropped,
    DropReason,
    Effect,
    ReleaseVips,
    SendAdvertisement,
    SetTimer,
    Transitioned,
)
from ffo.vrrp.inputs import (
    AdvertisementReceived,
    Input,
    InterfaceChanged,
    PriorityChanged,
    ShutdownRequested,
    Started,
    TimerExpired,
)
from ffo.vrrp.packet import Advertisement, Family, IPAddress
from ffo.vrrp.state import Role, TimerKind
from tests.test_purity import FORBIDDEN, imported_roots

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address

# -- strategies over the VRRP value types (also used by test_codec) ------------------------------------------------

ints64 = st.integers(-(2**63), 2**64 - 1)
addresses: st.SearchStrategy[IPAddress] = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))
v3_adverts = st.builds(
    Advertisement,
    version=st.just(3),
    vrid=st.integers(1, 255),
    priority=st.integers(0, 255),
    interval_cs=st.integers(1, 4095),
    addresses=st.one_of(
        st.lists(st.ip_addresses(v=4), min_size=1, max_size=6).map(tuple),
        st.lists(st.ip_addresses(v=6), min_size=1, max_size=6).map(tuple),
    ),
    reserved=st.integers(0, 15),
)
v2_adverts = st.builds(
    Advertisement,
    version=st.just(2),
    vrid=st.integers(1, 255),
    priority=st.integers(0, 255),
    interval_cs=st.integers(1, 255).map(lambda seconds: seconds * 100),
    addresses=st.lists(st.ip_addresses(v=4), min_size=1, max_size=6).map(tuple),
    auth_type=st.integers(0, 255),
    auth_data=st.binary(min_size=8, max_size=8),
)
causes = st.builds(
    Cause,
    kind=st.sampled_from(CauseKind),
    peer=st.none() | addresses,
    peer_priority=st.none() | st.integers(0, 255),
    local_priority=st.none() | st.integers(0, 255),
    interval_cs=st.none() | st.integers(1, 4095),
    last_heard_ns=st.none() | ints64,
    down_interval_ns=st.none() | ints64,
    deadline_ns=st.none() | ints64,
    fired_ns=st.none() | ints64,
)
vip_tuples = st.lists(addresses, max_size=6).map(tuple)
inputs: st.SearchStrategy[Input] = st.one_of(
    st.builds(Started),
    st.builds(ShutdownRequested),
    st.builds(AdvertisementReceived, source=addresses, advertisement=v3_adverts | v2_adverts),
    st.builds(TimerExpired, timer=st.sampled_from(TimerKind), deadline_ns=ints64, fired_ns=ints64),
    st.builds(PriorityChanged, priority=st.integers(1, 254), reason=st.text(max_size=20)),
    st.builds(InterfaceChanged, up=st.booleans()),
)
effects: st.SearchStrategy[Effect] = st.one_of(
    st.builds(Transitioned, from_role=st.sampled_from(Role), to_role=st.sampled_from(Role), cause=causes),
    st.builds(SendAdvertisement, priority=st.integers(0, 255), interval_cs=st.integers(1, 4095)),
    st.builds(SetTimer, timer=st.sampled_from(TimerKind), deadline_ns=ints64),
    st.builds(CancelTimer, timer=st.sampled_from(TimerKind)),
    st.builds(AcquireVips, vips=vip_tuples, accept=st.booleans()),
    st.builds(ReleaseVips, vips=vip_tuples),
    st.builds(AnnounceVips, vips=vip_tuples),
    st.builds(Dropped, reason=st.sampled_from(DropReason), detail=st.text(max_size=20)),
)


def through_msgpack(data: object) -> object:
    """What a receiver gets: the data packed and unpacked with the codec's strict settings."""
    return msgpack.unpackb(msgpack.packb(data), raw=False, strict_map_key=True, max_ext_len=0)


# -- round trips ---------------------------------------------------------------------------------------------------


@given(inputs)
def test_inputs_round_trip_as_the_input_union(value: Input) -> None:
    data = through_msgpack(unstructure(value, Input))
    assert structure(data, Input) == value


@given(effects)
def test_effects_round_trip_as_the_effect_union(value: Effect) -> None:
    data = through_msgpack(unstructure(value, Effect))
    assert structure(data, Effect) == value


@given(st.one_of(inputs, effects))
def test_each_class_round_trips_untagged(value: object) -> None:
    data = through_msgpack(unstructure(value))
    assert TAG not in data  # type: ignore[operator]
    assert structure(data, type(value)) == value


def test_the_wire_form_of_a_transition_is_plain_and_tagged() -> None:
    cause = Cause(kind=CauseKind.MASTER_DOWN, peer=V4("192.0.2.11"), down_interval_ns=3_609_000_000)
    effect = Transitioned(from_role=Role.BACKUP, to_role=Role.MASTER, cause=cause)
    assert unstructure(effect, Effect) == {
        "_type": "vrrp.transitioned",
        "from_role": "BACKUP",
        "to_role": "MASTER",
        "cause": {
            "kind": "master_down",
            "peer": "192.0.2.11",
            "peer_priority": None,
            "local_priority": None,
            "interval_cs": None,
            "last_heard_ns": None,
            "down_interval_ns": 3_609_000_000,
            "deadline_ns": None,
            "fired_ns": None,
        },
    }
    assert type_name_of(Transitioned) == "vrrp.transitioned"


def test_missing_keys_take_the_attrs_defaults() -> None:
    data = {"version": 3, "vrid": 51, "priority": 200, "interval_cs": 100, "addresses": ["192.0.2.100"]}
    advert = structure(data, Advertisement)
    assert advert.auth_data == bytes(8) and advert.reserved == 0
    assert structure({"_type": "vrrp.dropped", "reason": "stale_timer"}, Effect) == Dropped(
        reason=DropReason.STALE_TIMER
    )


# -- errors name the path ------------------------------------------------------------------------------------------


def advert_received_data() -> dict[str, object]:
    advert = Advertisement(version=3, vrid=51, priority=200, interval_cs=100, addresses=(V4("192.0.2.100"),))
    data = unstructure(AdvertisementReceived(source=V4("192.0.2.11"), advertisement=advert))
    assert isinstance(data, dict)
    return data


def refusal(data: object, tp: object) -> str:
    with pytest.raises(ConversionError) as caught:
        structure(data, tp)
    return str(caught.value)


def test_a_bad_address_names_its_path() -> None:
    data = advert_received_data()
    data["advertisement"]["addresses"].append("192.0.2.300")  # type: ignore[index]
    assert refusal(data, AdvertisementReceived).startswith("advertisement.addresses[1]: not an IPv4 or IPv6 address")
    with pytest.raises(ConversionError) as caught:
        structure(data, AdvertisementReceived)
    assert caught.value.path == "advertisement.addresses[1]"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"priority": True}, "advertisement.priority: expected an int, got bool True"),
        ({"priority": 2.0}, "advertisement.priority: expected an int, got float 2.0"),
        ({"priority": "200"}, "advertisement.priority: expected an int, got str '200'"),
        ({"vrid": 0}, "advertisement: Advertisement refused it: vrid 0 is not in 1..255"),
        ({"addresses": "192.0.2.1"}, "advertisement.addresses: expected a list, got str '192.0.2.1'"),
        ({"addresses": [4]}, "advertisement.addresses[0]: expected an IPv4 or IPv6 address string, got int 4"),
        ({"auth_data": "x"}, "advertisement.auth_data: expected bytes, got str 'x'"),
        ({"extra": 1}, "advertisement.extra: unknown field of Advertisement"),
    ],
)
def test_a_wrong_field_is_refused_by_path_and_reason(change: dict[str, object], expected: str) -> None:
    data = advert_received_data()
    data["advertisement"].update(change)  # type: ignore[attr-defined]
    assert refusal(data, AdvertisementReceived) == expected


def test_missing_required_fields_and_wrong_shapes_are_refused() -> None:
    data = advert_received_data()
    del data["advertisement"]["vrid"]  # type: ignore[attr-defined]
    assert refusal(data, AdvertisementReceived) == "advertisement.vrid: missing"
    assert refusal([], AdvertisementReceived) == "expected a map, got list []"
    assert refusal({"up": 1}, InterfaceChanged) == "up: expected a bool, got int 1"
    assert refusal({"priority": 255}, PriorityChanged).startswith("PriorityChanged refused it: 'priority' must be")


def test_enums_match_value_and_type() -> None:
    assert structure("adver", TimerKind) is TimerKind.ADVER
    assert structure(4, Family) is Family.IPV4
    assert refusal(True, Family).startswith("expected a Family value (4, 6), got bool True")
    assert refusal("4", Family).startswith("expected a Family value")
    assert refusal(["adver"], TimerKind).startswith("expected a TimerKind value")
    with pytest.raises(ConversionError):
        unstructure("adver", TimerKind)


def test_tagged_unions_need_a_known_tag() -> None:
    assert refusal({"up": True}, Input) == "_type: missing: the union tag (one of 'vrrp.started', " + (
        "'vrrp.shutdown_requested', 'vrrp.advertisement_received', 'vrrp.timer_expired', "
        "'vrrp.priority_changed', 'vrrp.interface_changed')"
    )
    assert refusal({"_type": "vrrp.dropped", "reason": "stale_timer"}, Input).startswith(
        "_type: unknown type 'vrrp.dropped'"
    )
    assert refusal({"_type": 3}, Input).startswith("_type: unknown type 3")
    assert refusal({"_type": "vrrp.interface_changed", "up": True, "x": 1}, Input) == (
        "x: unknown field of InterfaceChanged"
    )
    with pytest.raises(ConversionError, match="expected one of"):
        unstructure(Started(), Effect)


def test_unstructure_refuses_values_that_do_not_match_their_annotations() -> None:
    with pytest.raises(ConversionError) as caught:
        unstructure(AcquireVips(vips=(V4("192.0.2.1"), "192.0.2.2"), accept=True))  # type: ignore[arg-type]
    assert str(caught.value) == "vips[1]: expected an IPv4 or IPv6 address, got str '192.0.2.2'"
    with pytest.raises(ConversionError, match=r"^vips: expected a tuple, got list"):
        unstructure(ReleaseVips(vips=[V4("192.0.2.1")]))  # type: ignore[arg-type]
    with pytest.raises(ConversionError, match=r"^deadline_ns: 18446744073709551616 does not fit a 64-bit integer"):
        unstructure(SetTimer(timer=TimerKind.ADVER, deadline_ns=2**64))
    with pytest.raises(ConversionError, match=r"^priority: expected an int, got bool"):
        unstructure(SendAdvertisement(priority=True, interval_cs=100))
    assert unstructure(SendAdvertisement(priority=Family.IPV6, interval_cs=100)) == {"priority": 6, "interval_cs": 100}


# -- the other shapes ----------------------------------------------------------------------------------------------

Port = NewType("Port", int)


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen(kw_only=True)
class Node:
    """A recursive class: converters refer to themselves while they are compiled."""

    name: str
    children: tuple[Node, ...] = ()


@attrs.frozen(kw_only=True)
class Shapes:
    pair: tuple[int, str]
    table: dict[str, IPAddress]
    mode: Literal["fast", "slow"]
    port: Port
    ratio: float
    colour: Colour | None
    only_v6: V6
    tree: Node
    _private: int = 0


def test_other_shapes_round_trip() -> None:
    value = Shapes(
        pair=(1, "a"),
        table={"web": V4("192.0.2.1"), "db": V6("2001:db8::1")},
        mode="slow",
        port=Port(7400),
        ratio=2,  # an int is a float
        colour=None,
        only_v6=V6("2001:db8::2"),
        tree=Node(name="root", children=(Node(name="leaf"),)),
        private=3,
    )
    data = through_msgpack(unstructure(value))
    assert data == {
        "pair": [1, "a"],
        "table": {"web": "192.0.2.1", "db": "2001:db8::1"},
        "mode": "slow",
        "port": 7400,
        "ratio": 2.0,
        "colour": None,
        "only_v6": "2001:db8::2",
        "tree": {"name": "root", "children": [{"name": "leaf", "children": []}]},
        "_private": 3,
    }
    assert structure(data, Shapes) == value


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"pair": [1, 2]}, "pair[1]: expected a str, got int 2"),
        ({"pair": [1]}, "pair: expected 2 items, got 1"),
        ({"table": {"web": "::1", "db": 1}}, "table['db']: expected an IPv4 or IPv6 address string, got int 1"),
        ({"mode": "medium"}, "mode: expected one of 'fast', 'slow', got str 'medium'"),
        ({"port": True}, "port: expected an int, got bool True"),
        ({"ratio": "1"}, "ratio: expected a float, got str '1'"),
        ({"colour": "green"}, "colour: expected a Colour value ('red', 'blue'), got str 'green'"),
        ({"only_v6": "192.0.2.1"}, "only_v6: not an IPv6 address: '192.0.2.1'"),
        ({"tree": {"name": "r", "children": [{"name": 1}]}}, "tree.children[0].name: expected a str, got int 1"),
    ],
)
def test_other_shapes_name_their_paths(change: dict[str, object], expected: str) -> None:
    data = {
        "pair": [1, "a"],
        "table": {},
        "mode": "fast",
        "port": 1,
        "ratio": 0.5,
        "colour": "red",
        "only_v6": "::1",
        "tree": {"name": "r"},
    }
    assert isinstance(structure(data, Shapes), Shapes)
    assert refusal({**data, **change}, Shapes) == expected


@attrs.frozen
class NotNamed:
    x: int


@attrs.frozen
class HasTagField:
    _type: int


@attrs.frozen
class Plain:
    x: int


@attrs.frozen
class Unannotated:
    x = attrs.field()  # type: ignore[var-annotated]


@pytest.mark.parametrize(
    "tp",
    [
        list[int],
        set[int],
        dict[int, str],
        int | str,
        tuple,
        object,
        Literal[Colour.RED],
        NotNamed | Plain,
        Unannotated,
        tuple[int, ...] | str,
    ],
    ids=repr,
)
def test_types_without_a_wire_form_are_bugs(tp: object) -> None:
    with pytest.raises(UnsupportedTypeError) as caught:
        structure(None, tp)
    assert isinstance(caught.value, LocalProtocolError)


def test_a_union_member_cannot_have_a_tag_field() -> None:
    register_type_name(HasTagField, "test.convert.has_tag_field")
    register_type_name(Plain, "test.convert.plain")
    with pytest.raises(UnsupportedTypeError, match="has a field named '_type'"):
        structure({}, HasTagField | Plain)


def test_type_names_are_unique() -> None:
    register_type_name(Plain, "test.convert.plain")  # the same pair again is fine
    with pytest.raises(RegistryError):
        register_type_name(NotNamed, "test.convert.plain")
    with pytest.raises(RegistryError):
        register_type_name(Plain, "test.convert.other")


def test_the_bus_core_is_pure() -> None:
    root = Path(__file__).resolve().parents[2] / "ffo" / "bus"
    for module in ("convert.py", "messages.py", "envelope.py", "codec.py", "__init__.py"):
        assert not imported_roots(root / module) & FORBIDDEN, module
