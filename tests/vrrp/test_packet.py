"""The VRRP codec: round trips, one test per rejection reason, and a fuzzed decoder."""

from __future__ import annotations

import struct
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ffo.errors import LocalProtocolError, RemoteProtocolError
from ffo.vrrp.ipheader import parse_ip
from ffo.vrrp.packet import (
    Advertisement,
    AdvertisementError,
    ChecksumForm,
    Decoded,
    Family,
    IPAddress,
    PacketRejected,
    RejectReason,
    decode,
    encode,
)
from tests.support.pcap import internet_checksum, ipv4, pseudo_header, vrrp_message

V4_SRC, V4_DST = IPv4Address("192.0.2.11"), IPv4Address("224.0.0.18")
V6_SRC, V6_DST = IPv6Address("fe80::11"), IPv6Address("ff02::12")
VIP4, VIP6 = IPv4Address("192.0.2.100"), IPv6Address("2001:db8::100")


def decode4(payload: bytes, ttl: int = 255) -> Decoded:
    return decode(payload, family=Family.IPV4, src=V4_SRC, dst=V4_DST, ttl=ttl)


def decode6(payload: bytes, ttl: int = 255) -> Decoded:
    return decode(payload, family=Family.IPV6, src=V6_SRC, dst=V6_DST, ttl=ttl)


def reference_checksum(message: bytes, src: IPAddress, dst: IPAddress, pseudo: bool) -> int:
    zeroed = message[:6] + b"\x00\x00" + message[8:]
    return internet_checksum((pseudo_header(src, dst, len(zeroed)) if pseudo else b"") + zeroed)


# --- round trips -------------------------------------------------------------------------------------------

ipv4s = st.ip_addresses(v=4).map(lambda a: IPv4Address(int(a)))
ipv6s = st.ip_addresses(v=6).map(lambda a: IPv6Address(int(a)))


@st.composite
def v3_adverts(draw: st.DrawFn, addresses: st.SearchStrategy[IPAddress]) -> Advertisement:
    return Advertisement(
        version=3,
        vrid=draw(st.integers(1, 255)),
        priority=draw(st.integers(0, 255)),
        interval_cs=draw(st.integers(1, 4095)),
        addresses=tuple(draw(st.lists(addresses, min_size=1, max_size=20))),
        reserved=draw(st.integers(0, 15)),
    )


@st.composite
def v2_adverts(draw: st.DrawFn) -> Advertisement:
    return Advertisement(
        version=2,
        vrid=draw(st.integers(1, 255)),
        priority=draw(st.integers(0, 255)),
        interval_cs=100 * draw(st.integers(1, 255)),
        addresses=tuple(draw(st.lists(ipv4s, min_size=1, max_size=20))),
        auth_type=draw(st.integers(0, 255)),
        auth_data=draw(st.binary(min_size=8, max_size=8)),
    )


@given(adv=v3_adverts(ipv4s), src=ipv4s, dst=ipv4s, form=st.sampled_from(ChecksumForm))
def test_v3_ipv4_round_trip(adv: Advertisement, src: IPv4Address, dst: IPv4Address, form: ChecksumForm) -> None:
    data = encode(adv, family=Family.IPV4, src=src, dst=dst, checksum_form=form)
    assert len(data) == 8 + 4 * len(adv.addresses)
    pseudo = form is ChecksumForm.PSEUDO_HEADER
    assert struct.unpack_from("!H", data, 6)[0] == reference_checksum(data, src, dst, pseudo)
    # If the pseudo-header's words sum to zero, both forms give the same bytes; decode names the default.
    ambiguous = reference_checksum(data, src, dst, True) == reference_checksum(data, src, dst, False)
    decoded = decode(data, family=Family.IPV4, src=src, dst=dst, ttl=255)
    assert decoded == Decoded(advertisement=adv, checksum_form=ChecksumForm.PSEUDO_HEADER if ambiguous else form)


@given(adv=v3_adverts(ipv6s), src=ipv6s, dst=ipv6s, form=st.sampled_from(ChecksumForm))
def test_v3_ipv6_round_trip(adv: Advertisement, src: IPv6Address, dst: IPv6Address, form: ChecksumForm) -> None:
    # IPv6 always carries the pseudo-header (RFC 8200 §8.1), whatever form is asked for.
    data = encode(adv, family=Family.IPV6, src=src, dst=dst, checksum_form=form)
    assert len(data) == 8 + 16 * len(adv.addresses)
    assert struct.unpack_from("!H", data, 6)[0] == reference_checksum(data, src, dst, True)
    decoded = decode(data, family=Family.IPV6, src=src, dst=dst, ttl=255)
    assert decoded == Decoded(advertisement=adv, checksum_form=ChecksumForm.PSEUDO_HEADER)


@given(adv=v2_adverts(), src=ipv4s, dst=ipv4s, form=st.sampled_from(ChecksumForm))
def test_v2_round_trip(adv: Advertisement, src: IPv4Address, dst: IPv4Address, form: ChecksumForm) -> None:
    # VRRPv2 never has a pseudo-header (RFC 3768 §5.3.8), whatever form is asked for.
    data = encode(adv, family=Family.IPV4, src=src, dst=dst, checksum_form=form)
    assert len(data) == 8 + 4 * len(adv.addresses) + 8
    assert data[-8:] == adv.auth_data
    assert struct.unpack_from("!H", data, 6)[0] == reference_checksum(data, src, dst, False)
    decoded = decode(data, family=Family.IPV4, src=src, dst=dst, ttl=255)
    assert decoded == Decoded(advertisement=adv, checksum_form=ChecksumForm.PLAIN)


def test_wire_layout_v3() -> None:
    adv = Advertisement(version=3, vrid=51, priority=200, interval_cs=10, addresses=(VIP4,))
    data = encode(adv, family=Family.IPV4, src=V4_SRC, dst=V4_DST)
    # The first advertisement of shared/vectors/kl-v3-ipv4.pcap, byte for byte.
    assert data.hex() == "3133c801000aa1c1c0000264"


def test_bytes_like_payloads_decode() -> None:
    adv = Advertisement(version=2, vrid=51, priority=200, interval_cs=100, addresses=(VIP4,))
    data = encode(adv, family=Family.IPV4, src=V4_SRC, dst=V4_DST)
    assert decode4(memoryview(bytearray(data))).advertisement == adv  # type: ignore[arg-type]


def test_largest_message_round_trips() -> None:
    addresses = tuple(IPv6Address(f"2001:db8::{n:x}") for n in range(1, 256))
    adv = Advertisement(version=3, vrid=255, priority=255, interval_cs=4095, addresses=addresses, reserved=15)
    data = encode(adv, family=Family.IPV6, src=V6_SRC, dst=V6_DST)
    assert len(data) == 8 + 255 * 16
    assert decode6(data).advertisement == adv


def test_ambiguous_ipv4_checksum_is_reported_as_pseudo_header() -> None:
    adv = Advertisement(version=3, vrid=1, priority=100, interval_cs=100, addresses=(VIP4,))
    # A destination whose pseudo-header words sum to 0 (mod 0xFFFF): both forms have the same checksum.
    dst = IPv4Address((-(int(V4_SRC) + 12 + 112)) % 0xFFFF)
    plain = encode(adv, family=Family.IPV4, src=V4_SRC, dst=dst, checksum_form=ChecksumForm.PLAIN)
    assert plain == encode(adv, family=Family.IPV4, src=V4_SRC, dst=dst)
    decoded = decode(plain, family=Family.IPV4, src=V4_SRC, dst=dst, ttl=255)
    assert decoded.checksum_form is ChecksumForm.PSEUDO_HEADER


def test_ipv4_pseudo_header_uses_the_real_destination() -> None:
    adv = Advertisement(version=3, vrid=51, priority=200, interval_cs=10, addresses=(VIP4,))
    unicast = IPv4Address("192.0.2.12")
    data = encode(adv, family=Family.IPV4, src=V4_SRC, dst=unicast)
    assert decode(data, family=Family.IPV4, src=V4_SRC, dst=unicast, ttl=255).checksum_form.value == ("pseudo-header")
    with pytest.raises(PacketRejected) as caught:
        decode4(data)  # the same bytes, claimed to be sent to 224.0.0.18
    assert caught.value.reason is RejectReason.BAD_CHECKSUM


# --- rejections: one per reason ----------------------------------------------------------------------------


def _v3(**fields: object) -> bytes:
    return vrrp_message(**fields)  # type: ignore[arg-type]


def _ip_case(datagram: bytes) -> Callable[[], object]:
    return lambda: parse_ip(datagram)


CASES: dict[RejectReason, Callable[[], object]] = {
    RejectReason.TRUNCATED: lambda: decode4(_v3()[:7]),
    RejectReason.BAD_VERSION: lambda: decode4(_v3(version=4)),
    RejectReason.BAD_TYPE: lambda: decode4(_v3(type_=2)),
    RejectReason.BAD_VRID: lambda: decode4(_v3(vrid=0)),
    RejectReason.BAD_CHECKSUM: lambda: decode4(_v3(checksum=0x1234)),
    RejectReason.BAD_TTL: lambda: decode4(_v3(), ttl=64),
    RejectReason.ZERO_INTERVAL: lambda: decode4(_v3(word=0xF000)),
    RejectReason.ZERO_ADDRESS_COUNT: lambda: decode4(_v3(count=0, addresses=())),
    RejectReason.ADDRESS_COUNT_MISMATCH: lambda: decode4(_v3(count=2)),
    RejectReason.WRONG_FAMILY: lambda: decode6(
        _v3(version=2, word=1, addresses=(VIP6,), trailer=bytes(8), pseudo=False)
    ),
    RejectReason.BAD_IP_HEADER: _ip_case(bytes([0x50]) + bytes(39)),
    RejectReason.FRAGMENTED: _ip_case(ipv4("192.0.2.11", "224.0.0.18", _v3(), fragment=0x2000)),
}


@pytest.mark.parametrize("reason", list(RejectReason), ids=lambda r: r.value)
def test_each_reason(reason: RejectReason) -> None:
    with pytest.raises(PacketRejected) as caught:
        CASES[reason]()
    assert caught.value.reason is reason
    assert isinstance(caught.value, RemoteProtocolError)
    assert str(caught.value).startswith(f"{reason.value}: ")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (_v3(version=2, word=0x0100, trailer=bytes(8), pseudo=False), RejectReason.ZERO_INTERVAL),
        (_v3(version=2, word=1, pseudo=False), RejectReason.ADDRESS_COUNT_MISMATCH),  # no auth data
        (_v3(version=2, word=1, trailer=bytes(8)), RejectReason.BAD_CHECKSUM),  # v2 has no pseudo-header
        (_v3(trailer=b"\x00"), RejectReason.ADDRESS_COUNT_MISMATCH),  # one byte too many
        (_v3(count=0), RejectReason.ZERO_ADDRESS_COUNT),
        (_v3(version=0), RejectReason.BAD_VERSION),
        (_v3(version=15, type_=15), RejectReason.BAD_VERSION),
        (_v3(type_=0), RejectReason.BAD_TYPE),
        (b"", RejectReason.TRUNCATED),
    ],
)
def test_more_rejections(message: bytes, reason: RejectReason) -> None:
    with pytest.raises(PacketRejected) as caught:
        decode4(message)
    assert caught.value.reason is reason


def test_ipv6_has_no_plain_checksum() -> None:
    message = _v3(addresses=(VIP6,), src=V6_SRC, dst=V6_DST, pseudo=False)
    with pytest.raises(PacketRejected) as caught:
        decode6(message)
    assert caught.value.reason is RejectReason.BAD_CHECKSUM


def test_rejection_keeps_the_readable_fields() -> None:
    with pytest.raises(PacketRejected) as caught:
        decode4(_v3(priority=200, word=10), ttl=64)
    header = caught.value.header
    assert header is not None
    assert (header.version, header.type, header.vrid, header.priority, header.count) == (3, 1, 51, 200, 1)
    assert header.interval_cs == 10
    assert header.checksum_form is ChecksumForm.PSEUDO_HEADER
    assert header.addresses == (VIP4,)


def test_rejection_of_a_bad_checksum_has_no_form() -> None:
    with pytest.raises(PacketRejected) as caught:
        decode4(_v3(count=2, checksum=0))
    header = caught.value.header
    assert header is not None
    assert header.checksum_form is None
    assert header.addresses is None  # the count does not match the size
    assert caught.value.reason is RejectReason.BAD_CHECKSUM


def test_rejection_of_a_stub_has_no_header() -> None:
    with pytest.raises(PacketRejected) as caught:
        decode4(b"\x31\x33")
    assert caught.value.header is None


# --- fuzzing: only PacketRejected, and whatever is accepted re-encodes to the same bytes -------------------


def _check_decode(payload: bytes, family: Family, src: IPAddress, dst: IPAddress, ttl: int) -> None:
    try:
        decoded = decode(payload, family=family, src=src, dst=dst, ttl=ttl)
    except PacketRejected as exc:
        assert isinstance(exc.reason, RejectReason)
        return
    again = encode(decoded.advertisement, family=family, src=src, dst=dst, checksum_form=decoded.checksum_form)
    # 0x0000 and 0xFFFF are the same one's-complement zero: a sender may use either.
    same_sum = {again[6:8], payload[6:8]} <= {b"\x00\x00", b"\xff\xff"}
    assert again == payload or (again[:6] == payload[:6] and again[8:] == payload[8:] and same_sum)


@given(payload=st.binary(max_size=80), ttl=st.integers(0, 255), v6=st.booleans())
@example(payload=b"\x31\x33\xc8\x01\x00\x0a\xa1\xc1\xc0\x00\x02\x64", ttl=255, v6=False)
def test_random_bytes(payload: bytes, ttl: int, v6: bool) -> None:
    if v6:
        _check_decode(payload, Family.IPV6, V6_SRC, V6_DST, ttl)
    else:
        _check_decode(payload, Family.IPV4, V4_SRC, V4_DST, ttl)


@given(data=st.data(), pseudo=st.booleans())
def test_random_headers_with_good_checksums(data: st.DataObject, pseudo: bool) -> None:
    # Mostly plausible headers with a correct checksum, so that every check after the checksum is reached.
    version = data.draw(st.sampled_from([2, 3]) | st.integers(0, 15), label="version")
    count = data.draw(st.integers(0, 12), label="count")
    size = 4 * count + (8 if version == 2 else 0) + data.draw(st.sampled_from([0, 0, 0, -1, 1, 4]), label="delta")
    message = vrrp_message(
        version=version,
        type_=data.draw(st.just(1) | st.integers(0, 15), label="type"),
        vrid=data.draw(st.integers(0, 255), label="vrid"),
        count=count,
        word=data.draw(st.integers(0, 0xFFFF), label="word"),
        addresses=(),
        trailer=data.draw(st.binary(min_size=max(size, 0), max_size=max(size, 0)), label="body"),
        pseudo=pseudo,
    )
    _check_decode(message, Family.IPV4, V4_SRC, V4_DST, 255)


@given(
    adv=v3_adverts(ipv4s) | v2_adverts(),
    position=st.integers(0, 200),
    value=st.integers(0, 255),
    cut=st.integers(0, 200),
    extra=st.binary(max_size=4),
)
def test_mutated_valid_packets(adv: Advertisement, position: int, value: int, cut: int, extra: bytes) -> None:
    data = bytearray(encode(adv, family=Family.IPV4, src=V4_SRC, dst=V4_DST))
    data[position % len(data)] = value
    _check_decode(bytes(data), Family.IPV4, V4_SRC, V4_DST, 255)
    _check_decode(bytes(data[: cut % (len(data) + 1)]) + extra, Family.IPV4, V4_SRC, V4_DST, 255)


# --- building advertisements ------------------------------------------------------------------------------

GOOD = {"version": 3, "vrid": 51, "priority": 100, "interval_cs": 100, "addresses": (VIP4,)}


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 1},
        {"vrid": 0},
        {"vrid": 256},
        {"priority": -1},
        {"priority": 256},
        {"interval_cs": 0},
        {"interval_cs": 4096},
        {"addresses": ()},
        {"addresses": [VIP4]},
        {"addresses": (VIP4, VIP6)},
        {"addresses": (VIP4,) * 256},
        {"reserved": 16},
        {"auth_type": 1},
        {"version": 2, "interval_cs": 150},
        {"version": 2, "interval_cs": 0},
        {"version": 2, "addresses": (VIP6,)},
        {"version": 2, "auth_data": b"short"},
        {"version": 2, "reserved": 1},
        {"version": 2, "auth_type": 256},
    ],
)
def test_invalid_advertisements_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(AdvertisementError) as caught:
        Advertisement(**{**GOOD, **changes})  # type: ignore[arg-type]
    assert isinstance(caught.value, LocalProtocolError)
    assert isinstance(caught.value, ValueError)


def test_encode_refuses_a_family_mix() -> None:
    adv = Advertisement(**GOOD)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        encode(adv, family=Family.IPV6, src=V6_SRC, dst=V6_DST)
    with pytest.raises(LocalProtocolError):
        encode(adv, family=Family.IPV4, src=V6_SRC, dst=V4_DST)
    with pytest.raises(LocalProtocolError):
        decode(b"", family=Family.IPV4, src=V4_SRC, dst=V6_DST, ttl=255)


def test_family_of_an_advertisement() -> None:
    assert Advertisement(**GOOD).family is Family.IPV4  # type: ignore[arg-type]
