"""The pure receive rules: classify what a raw socket handed over (no sockets, no namespaces)."""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys

from hypothesis import given
from hypothesis import strategies as st

from ffo.net.receive import (
    NetReason,
    Received,
    Rejected,
    RepeatCache,
    classify_ipv4,
    classify_ipv6,
    ipv4_repeat_key,
    parse_ipv6_ancillary,
    peer_table,
)
from ffo.vrrp.packet import ChecksumForm, Family, RejectReason, encode
from tests.net import craft

A = ipaddress.IPv4Address("192.0.2.11")
B = ipaddress.IPv4Address("192.0.2.12")
LL = ipaddress.IPv6Address("fe80::11")
ADV = craft.advertisement(51, 200)
ADV6 = craft.advertisement(51, 200, "fe80::100")


def datagram(payload: bytes, *, src: ipaddress.IPv4Address = A, ttl: int = 255, protocol: int = 112) -> bytes:
    return craft.ipv4_datagram(src, craft.GROUP4, payload, ttl=ttl, protocol=protocol)


def test_a_valid_ipv4_datagram_is_received_with_its_checksum_form() -> None:
    for form in ChecksumForm:
        got = classify_ipv4(datagram(craft.vrrp4(ADV, A, form=form)), {})
        assert got == Received(
            family=Family.IPV4, src=A, dst=craft.GROUP4, ttl=255, advertisement=ADV, checksum_form=form
        )


def test_the_codec_reasons_come_through_with_what_was_readable() -> None:
    got = classify_ipv4(datagram(craft.vrrp4(ADV, A), ttl=1), {})
    assert isinstance(got, Rejected)
    assert (got.reason, got.src, got.ttl, got.vrid) == (RejectReason.BAD_TTL, A, 1, 51)


def test_ip_header_problems_are_rejections_too() -> None:
    got = classify_ipv4(b"\x45\x00", {})
    assert isinstance(got, Rejected) and got.reason is RejectReason.TRUNCATED and got.src is None
    other = classify_ipv4(datagram(craft.vrrp4(ADV, A), protocol=17), {})
    assert isinstance(other, Rejected) and other.reason is NetReason.WRONG_PROTOCOL and other.src == A


def test_unicast_peers_filter_by_source_per_vrid() -> None:
    peers = peer_table({51: [B], 52: []})
    assert 52 not in peers  # no peers: multicast, any source
    refused = classify_ipv4(datagram(craft.vrrp4(ADV, A)), peers)
    assert isinstance(refused, Rejected) and refused.reason is NetReason.WRONG_SOURCE
    assert refused.advertisement == ADV and refused.vrid == 51
    accepted = classify_ipv4(datagram(craft.vrrp4(ADV, B), src=B), peers)
    assert isinstance(accepted, Received)
    other_vrid = classify_ipv4(datagram(craft.vrrp4(craft.advertisement(52), A)), peers)
    assert isinstance(other_vrid, Received)


def test_ipv6_needs_its_ancillary_data() -> None:
    payload = encode(ADV6, family=Family.IPV6, src=LL, dst=craft.GROUP6)
    got = classify_ipv6(payload, src=LL, dst=craft.GROUP6, hop_limit=255, peers={})
    assert isinstance(got, Received) and got.checksum_form is ChecksumForm.PSEUDO_HEADER
    for dst, hop_limit in [(None, 255), (craft.GROUP6, None)]:
        missing = classify_ipv6(payload, src=LL, dst=dst, hop_limit=hop_limit, peers={})
        assert isinstance(missing, Rejected) and missing.reason is NetReason.MISSING_ANCILLARY


def test_ancillary_data_is_parsed_as_the_kernel_lays_it_out() -> None:
    pktinfo = struct.pack("=16sI", craft.GROUP6.packed, 2)
    hop = (255).to_bytes(4, sys.byteorder)
    ancdata = [
        (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, hop),
        (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo),
        (socket.SOL_SOCKET, 99, b"ignored"),
    ]
    assert parse_ipv6_ancillary(ancdata) == (craft.GROUP6, 255)
    assert parse_ipv6_ancillary([]) == (None, None)


@given(st.binary(max_size=120))
def test_no_bytes_make_classification_raise(data: bytes) -> None:
    assert isinstance(classify_ipv4(data, {51: frozenset({B})}), Received | Rejected)
    got = classify_ipv6(data, src=LL, dst=craft.GROUP6, hop_limit=255, peers={})
    assert isinstance(got, Received | Rejected)


def test_the_repeat_key_ignores_only_the_ip_id_and_header_checksum() -> None:
    base = datagram(craft.vrrp4(ADV, A))
    renumbered = base[:4] + b"\x12\x34" + base[6:10] + b"\xab\xcd" + base[12:]
    assert ipv4_repeat_key(renumbered) == ipv4_repeat_key(base)
    for changed in (datagram(craft.vrrp4(ADV, A), ttl=254), datagram(craft.vrrp4(ADV, B), src=B)):
        assert ipv4_repeat_key(changed) != ipv4_repeat_key(base)


def test_the_repeat_cache_keeps_valid_judgements_only_and_stays_bounded() -> None:
    cache = RepeatCache(limit=2)
    valid = classify_ipv4(datagram(craft.vrrp4(ADV, A)), {})
    invalid = classify_ipv4(datagram(craft.vrrp4(ADV, A), ttl=1), {})
    cache.remember(b"bad", invalid)
    assert cache.get(b"bad") is None and len(cache) == 0
    cache.remember(b"a", valid)
    cache.remember(b"b", valid)
    assert cache.get(b"a") is valid and cache.hits == 1
    cache.remember(b"c", valid)  # full: emptied first
    assert len(cache) == 1 and cache.get(b"a") is None
