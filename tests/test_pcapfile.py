"""The capture reader: pcap and pcapng, byte orders, timestamp resolutions, link types, bad files."""

from __future__ import annotations

import contextlib
import io
import struct
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ffo.errors import RemoteProtocolError
from ffo.pcapfile import CaptureFormatError, CaptureReader, Frame
from tests.support.pcap import ethernet, ipv4, ipv6, pcap_file, pcapng_file

V4 = ipv4("192.0.2.11", "224.0.0.18", bytes(12))
V6 = ipv6("fe80::11", "ff02::12", bytes(24))
ARP = ethernet(bytes(28), ethertype=0x0806)


def read(data: bytes) -> tuple[list[Frame], CaptureReader]:
    reader = CaptureReader(io.BytesIO(data))
    return list(reader), reader


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nanoseconds", [False, True])
def test_pcap(order: str, nanoseconds: bool) -> None:
    frames = [
        (1700000000.25, ethernet(V4)),
        (1700000000.5, ARP),
        (1700000001.125, ethernet(V6, vlans=(7, 8))),
    ]
    out, reader = read(pcap_file(frames, order=order, nanoseconds=nanoseconds))
    assert reader.format == "pcap"
    assert [time for time, _ in out] == [1700000000.25, 1700000001.125]
    assert out[0][1].startswith(V4)  # Ethernet padding is the IP layer's to trim
    assert out[1][1] == V6
    assert (reader.skipped, reader.torn_tail) == (1, False)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize(("tsresol", "time"), [(None, 1.5), (9, 1700000000.123456789), (0x80 | 10, 2.5)])
def test_pcapng(order: str, tsresol: int | None, time: float) -> None:
    out, reader = read(pcapng_file([(time, ethernet(V6)), (time, ARP)], order=order, tsresol=tsresol))
    assert reader.format == "pcapng"
    assert [datagram for _, datagram in out] == [V6]
    assert out[0][0] == pytest.approx(time, abs=1e-6)
    assert reader.skipped == 1


def test_pcapng_simple_packet_block_has_no_time() -> None:
    out, _ = read(pcapng_file([(1.0, ethernet(V4))], simple=True))
    assert out[0][0] is None
    assert out[0][1].startswith(V4)


def test_pcapng_two_sections_in_different_byte_orders() -> None:
    data = pcapng_file([(1.0, V4)], link_type=101, order="<") + pcapng_file([(2.0, V6)], link_type=229, order=">")
    assert read(data)[0] == [(1.0, V4), (2.0, V6)]


def _sll(datagram: bytes) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800 if datagram[0] >> 4 == 4 else 0x86DD) + datagram


def _sll2(datagram: bytes) -> bytes:
    ethertype = 0x0800 if datagram[0] >> 4 == 4 else 0x86DD
    return struct.pack("!HHIHBB8s", ethertype, 0, 2, 1, 0, 6, bytes(8)) + datagram


@pytest.mark.parametrize(
    ("link_type", "wrap"),
    [
        (1, ethernet),
        (113, _sll),
        (276, _sll2),
        (101, lambda d: d),
        (12, lambda d: d),
        (0, lambda d: struct.pack("<I", 2 if d[0] >> 4 == 4 else 10) + d),  # null, little-endian host
        (0, lambda d: struct.pack(">I", 2 if d[0] >> 4 == 4 else 30) + d),  # null, big-endian host
        (108, lambda d: struct.pack(">I", 2 if d[0] >> 4 == 4 else 24) + d),  # OpenBSD loop
    ],
)
def test_link_types(link_type: int, wrap: Callable[[bytes], bytes]) -> None:
    out, _ = read(pcap_file([(1.0, wrap(V4)), (2.0, wrap(V6))], link_type=link_type))
    assert [datagram[: len(V4)] for _, datagram in out[:1]] == [V4]
    assert out[1][1] == V6


def test_raw_ipv4_and_ipv6_link_types_skip_the_other_version() -> None:
    assert read(pcap_file([(1.0, V4), (2.0, V6)], link_type=228))[0] == [(1.0, V4)]
    assert read(pcap_file([(1.0, V4), (2.0, V6)], link_type=229))[0] == [(2.0, V6)]
    out, reader = read(pcap_file([(1.0, V4)], link_type=147))  # a user link type: unknown
    assert (out, reader.skipped) == ([], 1)


@pytest.mark.parametrize("data", [b"", b"GIF89a", b"\xd4\xc3\xb2", b"\x00" * 64])
def test_not_a_capture(data: bytes) -> None:
    with pytest.raises(CaptureFormatError, match="not a pcap or pcapng file") as caught:
        CaptureReader(io.BytesIO(data))
    assert isinstance(caught.value, RemoteProtocolError)


@pytest.mark.parametrize("make", [pcap_file, pcapng_file])
def test_torn_tail(make: Callable[[list[tuple[float, bytes]]], bytes]) -> None:
    data = make([(1.0, ethernet(V4)), (2.0, ethernet(V4))])
    out, reader = read(data[:-7])
    assert len(out) == 1
    assert reader.torn_tail
    out, reader = read(data)
    assert (len(out), reader.torn_tail) == (2, False)


def test_corrupt_lengths() -> None:
    data = bytearray(pcap_file([(1.0, ethernet(V4))]))
    data[24 + 8 : 24 + 12] = struct.pack("<I", 0xFFFFFFF0)
    with pytest.raises(CaptureFormatError):
        read(bytes(data))
    data = bytearray(pcapng_file([(1.0, ethernet(V4))]))
    data[-4:] = b"\x00\x00\x00\x01"  # the trailing copy of the block length
    with pytest.raises(CaptureFormatError):
        read(bytes(data))


@given(st.binary(max_size=200))
def test_random_bytes_after_a_magic(rest: bytes) -> None:
    for magic in (b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a"):
        with contextlib.suppress(CaptureFormatError):
            read(magic + rest)
