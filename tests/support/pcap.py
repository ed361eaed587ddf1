"""Hand-made packets and capture files for the codec, capture reader and `ffo pcap` tests.

Written independently of the code under test: the checksum is the plain RFC 1071 loop, headers are packed
field by field, so a test comparing the two checks both.
"""

from __future__ import annotations

import ipaddress
import struct

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NODE, GROUP, VIP = (ipaddress.IPv4Address(a) for a in ("192.0.2.11", "224.0.0.18", "192.0.2.100"))


def internet_checksum(data: bytes) -> int:
    """RFC 1071, the slow obvious way: sum 16-bit words with end-around carry, then complement."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for index in range(0, len(data), 2):
        total += (data[index] << 8) | data[index + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header(src: IPAddress, dst: IPAddress, length: int, protocol: int = 112) -> bytes:
    """The IPv4 (RFC 768 layout) or IPv6 (RFC 8200 §8.1) pseudo-header."""
    if src.version == 4:
        return src.packed + dst.packed + struct.pack("!BBH", 0, protocol, length)
    return src.packed + dst.packed + struct.pack("!I3xB", length, protocol)


def vrrp_message(
    *,
    version: int = 3,
    type_: int = 1,
    vrid: int = 51,
    priority: int = 100,
    count: int | None = None,
    word: int = 100,
    addresses: tuple[IPAddress, ...] = (VIP,),
    trailer: bytes = b"",
    src: IPAddress = NODE,
    dst: IPAddress = GROUP,
    pseudo: bool = True,
    checksum: int | None = None,
) -> bytes:
    """Any VRRP message, well-formed or not, with a correct checksum unless `checksum` is given.

    `word` is bytes 4-5: (rsvd << 12 | max adver int) for v3, (auth type << 8 | adver int) for v2; `trailer`
    follows the addresses (v2 authentication data, or junk). `pseudo` selects the checksum form.
    """
    body = b"".join(a.packed for a in addresses) + trailer
    n = len(addresses) if count is None else count
    header = struct.pack("!BBBBH", version << 4 | type_, vrid, priority, n, word)
    if checksum is None:
        covered = header + b"\x00\x00" + body
        prefix = pseudo_header(src, dst, len(covered)) if pseudo else b""
        checksum = internet_checksum(prefix + covered)
    return header + struct.pack("!H", checksum) + body


def ipv4(src: str, dst: str, payload: bytes, *, ttl: int = 255, protocol: int = 112, fragment: int = 0) -> bytes:
    """An IPv4 datagram (no options) with a correct header checksum; `fragment` is the flags/offset word."""
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0xC0,
        20 + len(payload),
        1,
        fragment,
        ttl,
        protocol,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    header = header[:10] + struct.pack("!H", internet_checksum(header)) + header[12:]
    return header + payload


def ipv6(
    src: str,
    dst: str,
    payload: bytes,
    *,
    hop_limit: int = 255,
    next_header: int = 112,
    extensions: bytes = b"",
) -> bytes:
    """An IPv6 datagram; `extensions` (already chained, ending in `next_header`'s successor) go first."""
    return (
        struct.pack("!IHBB", 6 << 28, len(extensions) + len(payload), next_header, hop_limit)
        + ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(dst).packed
        + extensions
        + payload
    )


def ethernet(datagram: bytes, *, vlans: tuple[int, ...] = (), ethertype: int | None = None) -> bytes:
    """An Ethernet II frame, padded to the 60-byte minimum like a real one, optionally 802.1Q-tagged."""
    if ethertype is None:
        ethertype = 0x0800 if datagram[0] >> 4 == 4 else 0x86DD
    tags = b"".join(struct.pack("!HH", 0x8100, vlan) for vlan in vlans)
    frame = bytes.fromhex("00005e000133") + bytes.fromhex("020000000011") + tags
    frame += struct.pack("!H", ethertype) + datagram
    return frame.ljust(60, b"\x00")


def pcap_file(
    frames: list[tuple[float, bytes]], *, link_type: int = 1, order: str = "<", nanoseconds: bool = False
) -> bytes:
    """A classic pcap file."""
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    units = 1_000_000_000 if nanoseconds else 1_000_000
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, link_type)
    for time, frame in frames:
        seconds = int(time)
        fraction = round((time - seconds) * units)
        out += struct.pack(order + "IIII", seconds, fraction, len(frame), len(frame)) + frame
    return out


def _block(order: str, block_type: int, body: bytes) -> bytes:
    body = body.ljust((len(body) + 3) // 4 * 4, b"\x00")
    length = 12 + len(body)
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def pcapng_file(
    frames: list[tuple[float, bytes]],
    *,
    link_type: int = 1,
    order: str = "<",
    tsresol: int | None = None,
    simple: bool = False,
) -> bytes:
    """A pcapng file: one section, one interface (`tsresol` as the if_tsresol option), EPBs or SPBs."""
    out = _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    options = b""
    if tsresol is not None:
        options = struct.pack(order + "HHB3x", 9, 1, tsresol) + struct.pack(order + "HH", 0, 0)
    out += _block(order, 1, struct.pack(order + "HHI", link_type, 0, 0) + options)
    units = 10**6 if tsresol is None else (2 ** (tsresol & 0x7F) if tsresol & 0x80 else 10**tsresol)
    for time, frame in frames:
        if simple:
            out += _block(order, 3, struct.pack(order + "I", len(frame)) + frame)
            continue
        ticks = round(time * units)
        head = struct.pack(order + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
        out += _block(order, 6, head + frame)
    return out
