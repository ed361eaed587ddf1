"""Read IP datagrams out of packet captures: classic pcap and pcapng, without scapy.

Edge module (it reads files). `CaptureReader` takes an open binary stream and yields ``(time, datagram)``
for every IPv4 or IPv6 frame, where `time` is seconds since the epoch (None for a pcapng Simple Packet Block,
which has no timestamp) and `datagram` starts at the IP header. Frames of other protocols and link types are
counted in `skipped` and not yielded.

- Classic pcap: both byte orders, microsecond (0xA1B2C3D4) and nanosecond (0xA1B23C4D) magic, and the
  "modified" pcap of old Linux patches (0xA1B2CD34, longer record headers).
- pcapng: Section Header, Interface Description, Enhanced / Simple / obsolete Packet blocks; both byte orders
  (per section); per interface link type, ``if_tsresol`` and ``if_tsoffset``. Other blocks are skipped.
- Link types: Ethernet (with any number of 802.1Q / 802.1ad VLAN tags), Linux cooked SLL and SLL2, raw IP
  (101, and 12/14 as some systems write DLT_RAW; 228 IPv4, 229 IPv6), BSD null/loopback (0, host byte
  order) and OpenBSD loop (108, network byte order).

A stream that is not a capture raises `CaptureFormatError` when the reader is made; a structure that makes no
sense later (an impossible length, an undeclared interface) raises it during iteration. A file that ends in
the middle of a record — the writer was killed — is not an error: iteration stops after the last complete
record and `torn_tail` is set.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

import attrs

from ffo.errors import RemoteProtocolError

__all__ = ["CaptureFormatError", "CaptureReader", "Frame"]

Frame = tuple[float | None, bytes]
"""(seconds since the epoch or None, the IP datagram)."""

_MAX_RECORD = 1 << 28  # 256 MiB: anything larger is a corrupt length field, not a packet

_PCAP_MAGICS = {
    # magic as read little-endian -> (byte order, fraction units per second, record header size)
    0xA1B2C3D4: ("<", 1_000_000, 16),
    0xD4C3B2A1: (">", 1_000_000, 16),
    0xA1B23C4D: ("<", 1_000_000_000, 16),
    0x4D3CB2A1: (">", 1_000_000_000, 16),
    0xA1B2CD34: ("<", 1_000_000, 24),
    0x34CDB2A1: (">", 1_000_000, 24),
}
_SHB = 0x0A0D0D0A
_IDB, _OPB, _SPB, _EPB = 1, 2, 3, 6
_BYTE_ORDER_MAGIC = 0x1A2B3C4D

_ETHERTYPE_IPV4, _ETHERTYPE_IPV6 = 0x0800, 0x86DD
_VLAN_TAGS = frozenset({0x8100, 0x88A8, 0x9100})
_AF_INET = 2
_AF_INET6 = frozenset({10, 24, 28, 30})  # Linux, NetBSD/OpenBSD, FreeBSD, Darwin
_LINKTYPE_NULL, _LINKTYPE_ETHERNET, _LINKTYPE_LOOP = 0, 1, 108
_LINKTYPE_SLL, _LINKTYPE_SLL2 = 113, 276
_LINKTYPE_RAW = frozenset({12, 14, 101})
_LINKTYPE_IPV4, _LINKTYPE_IPV6 = 228, 229


class CaptureFormatError(RemoteProtocolError):
    """The stream is not a pcap or pcapng capture, or its structure is corrupt."""


@attrs.define
class _Interface:
    link_type: int
    units_per_second: int = 1_000_000
    offset_seconds: int = 0
    snap_length: int = 0


class CaptureReader:
    """Iterate over the IP datagrams of a pcap or pcapng capture read from `stream`."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.torn_tail = False
        """True when the stream ended inside a record (after iteration)."""
        self.skipped = 0
        """Frames that were not IPv4/IPv6 or had an unknown link type."""
        magic = stream.read(4)
        if len(magic) == 4 and int.from_bytes(magic, "little") == _SHB:
            self.format = "pcapng"
            self._first = magic
        elif len(magic) == 4 and int.from_bytes(magic, "little") in _PCAP_MAGICS:
            self.format = "pcap"
            self._first = magic
        else:
            raise CaptureFormatError(f"not a pcap or pcapng file (starts with {magic.hex() or 'nothing'})")

    def __iter__(self) -> Iterator[Frame]:
        frames = self._pcapng() if self.format == "pcapng" else self._pcap()
        for time, link_type, frame in frames:
            datagram = _ip_datagram(link_type, frame)
            if datagram is None:
                self.skipped += 1
            else:
                yield time, datagram

    def _read(self, size: int) -> bytes | None:
        """Exactly `size` bytes, or None at the end of the stream (marking a torn tail if some were read)."""
        data = self._stream.read(size)
        if len(data) == size:
            return data
        self.torn_tail = self.torn_tail or bool(data)
        return None

    def _pcap(self) -> Iterator[tuple[float | None, int, bytes]]:
        order, units, record_size = _PCAP_MAGICS[int.from_bytes(self._first, "little")]
        header = self._read(20)
        if header is None:
            self.torn_tail = True
            return
        link_type = struct.unpack(order + "HHiIII", header)[5] & 0xFFFF  # upper bits: FCS information
        record = struct.Struct(order + "IIII")
        while (head := self._read(record_size)) is not None:
            seconds, fraction, captured, _original = record.unpack_from(head)
            if captured > _MAX_RECORD:
                raise CaptureFormatError(f"record of {captured} bytes: corrupt capture")
            frame = self._read(captured)
            if frame is None:
                self.torn_tail = True
                return
            yield seconds + fraction / units, link_type, frame

    def _pcapng(self) -> Iterator[tuple[float | None, int, bytes]]:
        order = "<"
        interfaces: list[_Interface] = []
        first: bytes | None = self._first
        while True:
            block_type_raw = first if first is not None else self._read(4)
            first = None
            if block_type_raw is None:
                return
            length_raw = self._read(4)
            if length_raw is None:
                self.torn_tail = True
                return
            if int.from_bytes(block_type_raw, "little") == _SHB:
                order_raw = self._read(4)
                if order_raw is None:
                    self.torn_tail = True
                    return
                if int.from_bytes(order_raw, "little") == _BYTE_ORDER_MAGIC:
                    order = "<"
                elif int.from_bytes(order_raw, "big") == _BYTE_ORDER_MAGIC:
                    order = ">"
                else:
                    raise CaptureFormatError("pcapng section header with a bad byte-order magic")
                interfaces = []
                prefix = order_raw
            else:
                prefix = b""
            (block_type,) = struct.unpack(order + "I", block_type_raw)
            (length,) = struct.unpack(order + "I", length_raw)
            if length < 12 + len(prefix) or length % 4 or length > _MAX_RECORD:
                raise CaptureFormatError(f"pcapng block of {length} bytes: corrupt capture")
            rest = self._read(length - 8 - len(prefix))
            if rest is None:
                self.torn_tail = True
                return
            body = prefix + rest[:-4]
            if rest[-4:] != length_raw:
                raise CaptureFormatError("pcapng block lengths disagree: corrupt capture")
            if block_type == _IDB:
                interfaces.append(_interface(order, body))
            elif block_type in (_EPB, _OPB, _SPB):
                yield _packet(order, block_type, body, interfaces)


def _interface(order: str, body: bytes) -> _Interface:
    if len(body) < 8:
        raise CaptureFormatError("pcapng interface description block too short")
    link_type, _reserved, snap_length = struct.unpack_from(order + "HHI", body)
    interface = _Interface(link_type=link_type, snap_length=snap_length)
    offset = 8
    while offset + 4 <= len(body):
        code, size = struct.unpack_from(order + "HH", body, offset)
        value = body[offset + 4 : offset + 4 + size]
        if code == 0:  # opt_endofopt
            break
        if code == 9 and size >= 1:  # if_tsresol: 10**-n, or 2**-n when the top bit is set
            exponent = value[0]
            interface.units_per_second = 2 ** (exponent & 0x7F) if exponent & 0x80 else 10**exponent
        elif code == 14 and size >= 8:  # if_tsoffset, seconds
            (interface.offset_seconds,) = struct.unpack_from(order + "q", value)
        offset += 4 + (size + 3) // 4 * 4
    return interface


def _packet(order: str, block_type: int, body: bytes, interfaces: list[_Interface]) -> tuple[float | None, int, bytes]:
    if block_type == _SPB:
        if not interfaces or len(body) < 4:
            raise CaptureFormatError("pcapng simple packet block without an interface")
        (original,) = struct.unpack_from(order + "I", body)
        captured = min(original, len(body) - 4, interfaces[0].snap_length or original)
        return None, interfaces[0].link_type, body[4 : 4 + captured]
    if block_type == _EPB:
        if len(body) < 20:
            raise CaptureFormatError("pcapng enhanced packet block too short")
        index, high, low, captured, _original = struct.unpack_from(order + "IIIII", body)
        start = 20
    else:  # obsolete Packet Block
        if len(body) < 20:
            raise CaptureFormatError("pcapng packet block too short")
        index, _drops, high, low, captured, _original = struct.unpack_from(order + "HHIIII", body)
        start = 20
    if index >= len(interfaces):
        raise CaptureFormatError(f"pcapng packet on undeclared interface {index}")
    if start + captured > len(body):
        raise CaptureFormatError("pcapng packet longer than its block")
    interface = interfaces[index]
    time = ((high << 32) | low) / interface.units_per_second + interface.offset_seconds
    return time, interface.link_type, body[start : start + captured]


def _ip_datagram(link_type: int, frame: bytes) -> bytes | None:
    """The IPv4/IPv6 datagram inside a link-layer frame, or None when it holds something else."""
    if link_type == _LINKTYPE_ETHERNET:
        return _by_ethertype(frame, 12)
    if link_type == _LINKTYPE_SLL:
        return _by_ethertype(frame, 14)
    if link_type == _LINKTYPE_SLL2:
        return frame[20:] if len(frame) >= 20 and _is_ip_ethertype(frame, 0) else None
    if link_type in _LINKTYPE_RAW:
        return frame if frame and frame[0] >> 4 in (4, 6) else None
    if link_type == _LINKTYPE_IPV4:
        return frame if frame and frame[0] >> 4 == 4 else None
    if link_type == _LINKTYPE_IPV6:
        return frame if frame and frame[0] >> 4 == 6 else None
    if link_type in (_LINKTYPE_NULL, _LINKTYPE_LOOP) and len(frame) >= 4:
        family = int.from_bytes(frame[:4], "big")
        if link_type == _LINKTYPE_NULL and family > 0xFFFF:  # written in the capturing host's byte order
            family = int.from_bytes(frame[:4], "little")
        return frame[4:] if family == _AF_INET or family in _AF_INET6 else None
    return None


def _by_ethertype(frame: bytes, offset: int) -> bytes | None:
    """The payload after the EtherType at `offset`, skipping VLAN tags, if it is IPv4 or IPv6."""
    while len(frame) >= offset + 2 and int.from_bytes(frame[offset : offset + 2], "big") in _VLAN_TAGS:
        offset += 4
    return frame[offset + 2 :] if _is_ip_ethertype(frame, offset) else None


def _is_ip_ethertype(frame: bytes, offset: int) -> bool:
    return len(frame) >= offset + 2 and int.from_bytes(frame[offset : offset + 2], "big") in (
        _ETHERTYPE_IPV4,
        _ETHERTYPE_IPV6,
    )
