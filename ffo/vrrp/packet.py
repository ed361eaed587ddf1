"""The VRRP advertisement codec: VRRPv3 (RFC 9568) over IPv4 and IPv6, VRRPv2 (RFC 3768) over IPv4.

Sans-IO, like h11's readers and writers: `decode` takes the VRRP message (the IP payload) plus what the IP
layer told us (family, source, destination, TTL / hop limit) and returns an `Advertisement`; `encode` does the
reverse. No sockets, no clock, no logging.

Two-level validation, as in FRR's ``vrrpd/vrrp_packet.c``: this module checks *syntax* only, everything RFC
9568 §7.1 says a receiver MUST discard for reasons visible in the packet itself — TTL / hop limit 255,
version, type, a complete message of exactly the announced size, the checksum, VRID ≠ 0, interval ≠ 0, address
count ≠ 0. *Meaning* (is this VRID configured here, does a VRRPv2 interval match ours, are we the address
owner) is the state machine's job. Every rejection raises `PacketRejected` with a `RejectReason`; whatever
bytes come in, `decode` raises nothing else. The checks run in FRR's order (TTL, size, version, checksum,
type, exact size), then the field values: a damaged packet is reported as ``bad_checksum`` rather than as
whatever field the damage happened to hit.

Checksum (the Internet checksum, RFC 1071, over the VRRP message with the checksum field zeroed):

- VRRPv2: the VRRP message only (RFC 3768 §5.3.8) — `ChecksumForm.PLAIN`.
- VRRPv3 over IPv6: with the RFC 8200 §8.1 pseudo-header (source, destination, upper-layer length, next header
  112) — `ChecksumForm.PSEUDO_HEADER`. There is no other form.
- VRRPv3 over IPv4: RFC 5798's wording led keepalived, FRR and Wireshark to prepend the IPv4 pseudo-header
  (source, destination, zero, protocol 112, length), while Cisco and Juniper sum the message alone; RFC 9568
  (§5.2.8 and its change list) now covers the plain form too. `decode` accepts either and reports in
  `Decoded.checksum_form` which one matched (the pseudo-header form is tried first); neither →
  ``bad_checksum``.
  `encode` sends the pseudo-header form by default, as keepalived and FRR do, so that ffo interoperates with
  them out of the box; a per-instance setting (``checksum_ipv4_pseudo_header = false``) selects the plain form
  for peers that want it. The pseudo-header uses the packet's real destination, unicast ones included (what
  keepalived does since its issue #642; FRR always uses 224.0.0.18).

Speed: the one's-complement sum of 16-bit words equals the message read as one big-endian integer modulo
0xFFFF (2**16 ≡ 1 mod 0xFFFF), so the sum is one ``int.from_bytes`` and one ``%`` rather than a Python loop;
an address's pseudo-header words are likewise ``int(address)``. ``tools/bench_codec.py`` measures the rates.
"""

from __future__ import annotations

import enum
import ipaddress
import struct

import attrs

from ffo.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "Advertisement",
    "AdvertisementError",
    "ChecksumForm",
    "Decoded",
    "Family",
    "HeaderFields",
    "IPAddress",
    "PacketRejected",
    "RejectReason",
    "decode",
    "encode",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

IPPROTO_VRRP = 112
"""The IP protocol / IPv6 next-header number of VRRP."""
VRRP_TTL = 255
"""RFC 9568 §5.1.1.3 / §5.1.2.3: sent with TTL / hop limit 255; anything else is discarded (§7.1)."""
TYPE_ADVERTISEMENT = 1
"""RFC 9568 §5.2.2: the only VRRP packet type."""

_HEADER = struct.Struct("!BBBBHH")  # version|type, VRID, priority, count, word, checksum
_HEADER_SIZE = 8
_AUTH_SIZE = 8  # VRRPv2 authentication data (RFC 3768 §5.3.10)
_ADDRESS_SIZE = {4: 4, 6: 16}


class Family(enum.IntEnum):
    """An address family, valued as the IP version (so ``address.version == family`` works)."""

    IPV4 = 4
    IPV6 = 6


_IPV4, _IPV6 = Family.IPV4, Family.IPV6  # module globals: an Enum class attribute lookup costs ~0.2 µs


class ChecksumForm(enum.Enum):
    """Which bytes the VRRP checksum covers (see the module docstring)."""

    PSEUDO_HEADER = "pseudo-header"
    """The IP pseudo-header, then the message: VRRPv3 over IPv6 always, over IPv4 as keepalived/FRR do."""
    PLAIN = "plain"
    """The VRRP message alone: VRRPv2 always; VRRPv3 over IPv4 as Cisco/Juniper do (allowed by RFC 9568)."""


_PSEUDO_HEADER, _PLAIN = ChecksumForm.PSEUDO_HEADER, ChecksumForm.PLAIN


class RejectReason(enum.Enum):
    """Why a packet was discarded; the value is the name used in the CLI's JSON and in counters."""

    TRUNCATED = "truncated"
    BAD_VERSION = "bad_version"
    BAD_TYPE = "bad_type"
    BAD_VRID = "bad_vrid"
    BAD_CHECKSUM = "bad_checksum"
    BAD_TTL = "bad_ttl"
    ZERO_INTERVAL = "zero_interval"
    ZERO_ADDRESS_COUNT = "zero_address_count"
    ADDRESS_COUNT_MISMATCH = "address_count_mismatch"
    WRONG_FAMILY = "wrong_family"
    BAD_IP_HEADER = "bad_ip_header"
    FRAGMENTED = "fragmented"
    """An IP fragment: VRRP messages are never fragmented (at most 4,088 bytes, far below any IPv6 MTU)."""


class AdvertisementError(LocalProtocolError, ValueError):
    """An `Advertisement` was built with values the protocol cannot carry: a bug in the caller."""


@attrs.frozen(kw_only=True)
class Advertisement:
    """One VRRP advertisement, as carried on the wire (RFC 9568 §5.2, RFC 3768 §5.3).

    Validated on construction (`AdvertisementError`), so every instance can be encoded.
    """

    version: int
    """2 or 3."""
    vrid: int
    """Virtual Router Identifier, 1..255 (§5.2.3)."""
    priority: int
    """0..255: 255 = address owner, 0 = the Active (Master) router is leaving (§5.2.4)."""
    interval_cs: int
    """v3: Max Advertise Interval, 1..4095 centiseconds (§5.2.7). v2: Adver Int seconds x 100 (100..25500)."""
    addresses: tuple[IPAddress, ...]
    """The virtual addresses, 1..255 of them, all of the packet's own family (§5.2.9)."""
    auth_type: int = 0
    """VRRPv2 only (RFC 3768 §5.3.6): sent as given, ignored by receivers (RFC 9568 §8.4 keeps no auth)."""
    auth_data: bytes = bytes(_AUTH_SIZE)
    """VRRPv2 only: exactly 8 bytes, kept so that a received packet re-encodes to the same bytes."""
    reserved: int = 0
    """VRRPv3 only: the 4-bit Reserve field; sent as 0, ignored on receipt, kept to re-encode exactly."""

    def __attrs_post_init__(self) -> None:
        problem = _advertisement_problem(self)
        if problem is not None:
            raise AdvertisementError(problem)

    @property
    def family(self) -> Family:
        """The family of the addresses (and so of the packet)."""
        return Family(self.addresses[0].version)


def _advertisement_problem(adv: Advertisement) -> str | None:
    addresses = adv.addresses
    if adv.version not in (2, 3):
        return f"version {adv.version} is not 2 or 3"
    if not 1 <= adv.vrid <= 255:
        return f"vrid {adv.vrid} is not in 1..255"
    if not 0 <= adv.priority <= 255:
        return f"priority {adv.priority} is not in 0..255"
    if type(addresses) is not tuple or not 1 <= len(addresses) <= 255:
        return "addresses must be a tuple of 1..255 addresses"
    version = addresses[0].version
    if len(addresses) > 1 and any(a.version != version for a in addresses):
        return "addresses mix IPv4 and IPv6"
    if adv.version == 3:
        if not 1 <= adv.interval_cs <= 4095:
            return f"interval {adv.interval_cs} cs is not in 1..4095"
        if not 0 <= adv.reserved <= 15:
            return f"reserved {adv.reserved} does not fit 4 bits"
        if adv.auth_type != 0 or adv.auth_data != bytes(_AUTH_SIZE):
            return "VRRPv3 has no authentication fields"
        return None
    if version != 4:
        return "VRRPv2 carries IPv4 addresses only"
    if not 100 <= adv.interval_cs <= 25500 or adv.interval_cs % 100:
        return f"VRRPv2 interval {adv.interval_cs} cs is not whole seconds 1..255"
    if not 0 <= adv.auth_type <= 255:
        return f"auth type {adv.auth_type} is not in 0..255"
    if type(adv.auth_data) is not bytes or len(adv.auth_data) != _AUTH_SIZE:
        return "auth data must be exactly 8 bytes"
    if adv.reserved != 0:
        return "VRRPv2 has no reserved field"
    return None


@attrs.frozen(kw_only=True)
class Decoded:
    """A valid advertisement and the checksum form its sender used."""

    advertisement: Advertisement
    checksum_form: ChecksumForm


@attrs.frozen(kw_only=True)
class HeaderFields:
    """What could be read from a rejected packet, for logs and ``ffo pcap`` (None where it could not)."""

    version: int
    type: int
    vrid: int
    priority: int
    count: int
    interval_cs: int | None
    """Centiseconds (v2: seconds x 100); None when the version is unknown."""
    checksum: int
    checksum_form: ChecksumForm | None
    """The form that matched; None when neither did or the version is unknown."""
    addresses: tuple[IPAddress, ...] | None
    """None unless the message has exactly the size its address count announces."""


class PacketRejected(RemoteProtocolError):  # noqa: N818 - the name other modules use
    """A received packet that must be discarded: `reason`, a human `detail`, and the readable `header`."""

    def __init__(self, reason: RejectReason, detail: str, header: HeaderFields | None = None) -> None:
        super().__init__(reason, detail, header)
        self.reason = reason
        self.detail = detail
        self.header = header

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


def _sum(data: bytes) -> int:
    """The one's-complement sum of `data`'s 16-bit words, modulo 0xFFFF (0 means it verifies)."""
    if len(data) & 1:
        data += b"\x00"
    return int.from_bytes(data, "big") % 0xFFFF


def _pseudo_sum(src: IPAddress, dst: IPAddress, length: int) -> int:
    # IPv4 (RFC 768 layout): src, dst, zero, protocol, length. IPv6 (RFC 8200 §8.1): src, dst, 32-bit length,
    # three zero bytes, next header. An address's words sum to int(address) modulo 0xFFFF in both cases.
    return int(src) + int(dst) + length + IPPROTO_VRRP


def _checksum_form(payload: bytes, version: int, family: Family, src: IPAddress, dst: IPAddress) -> ChecksumForm | None:
    plain = _sum(payload)
    if version == 2:
        return _PLAIN if plain == 0 else None
    if (plain + _pseudo_sum(src, dst, len(payload))) % 0xFFFF == 0:
        return _PSEUDO_HEADER
    if family == _IPV4 and plain == 0:
        return _PLAIN
    return None


def _expected_size(version: int, count: int, family: Family) -> int:
    return _HEADER_SIZE + count * _ADDRESS_SIZE[family] + (_AUTH_SIZE if version == 2 else 0)


def _read_addresses(payload: bytes, count: int, family: Family) -> tuple[IPAddress, ...]:
    if family == _IPV4:
        return tuple(map(ipaddress.IPv4Address, struct.unpack_from(f"!{count}I", payload, _HEADER_SIZE)))
    return tuple(
        ipaddress.IPv6Address(int.from_bytes(payload[offset : offset + 16], "big"))
        for offset in range(_HEADER_SIZE, _HEADER_SIZE + 16 * count, 16)
    )


def _header_fields(payload: bytes, family: Family, src: IPAddress, dst: IPAddress) -> HeaderFields | None:
    """Everything readable from a packet that is being rejected (slow path: rejections only)."""
    if len(payload) < _HEADER_SIZE:
        return None
    first, vrid, priority, count, word, checksum = _HEADER.unpack_from(payload)
    version = first >> 4
    known = version == 3 or (version == 2 and family == _IPV4)
    interval: int | None = None
    if known:
        interval = word & 0x0FFF if version == 3 else (word & 0xFF) * 100
    addresses = None
    if known and count and len(payload) == _expected_size(version, count, family):
        addresses = _read_addresses(payload, count, family)
    return HeaderFields(
        version=version,
        type=first & 0x0F,
        vrid=vrid,
        priority=priority,
        count=count,
        interval_cs=interval,
        checksum=checksum,
        checksum_form=_checksum_form(payload, version, family, src, dst) if known else None,
        addresses=addresses,
    )


def _check_family(family: Family, src: IPAddress, dst: IPAddress) -> None:
    if src.version != family or dst.version != family:
        raise LocalProtocolError(f"source {src} and destination {dst} must both be IPv{int(family)}")


def decode(payload: bytes, *, family: Family, src: IPAddress, dst: IPAddress, ttl: int) -> Decoded:
    """Decode and check one VRRP message (the IP payload); raise `PacketRejected` if it must be discarded.

    `ttl` is the IPv4 TTL or the IPv6 hop limit the packet arrived with; `src` and `dst` are its IP addresses
    (needed for the pseudo-header checksum). Raises nothing but `PacketRejected` for any `payload`; a `src` or
    `dst` not of `family` is the caller's bug (`LocalProtocolError`).
    """
    _check_family(family, src, dst)
    if type(payload) is not bytes:  # a bytearray or memoryview from recvmsg_into
        payload = bytes(payload)
    try:
        (first, vrid, priority, count, word, _checksum), form = _checked(payload, family, src, dst, ttl)
    except PacketRejected as exc:
        raise PacketRejected(exc.reason, exc.detail, _header_fields(payload, family, src, dst)) from None
    if first >> 4 == 3:
        advertisement = Advertisement(
            version=3,
            vrid=vrid,
            priority=priority,
            interval_cs=word & 0x0FFF,
            addresses=_read_addresses(payload, count, family),
            reserved=word >> 12,
        )
    else:
        advertisement = Advertisement(
            version=2,
            vrid=vrid,
            priority=priority,
            interval_cs=(word & 0xFF) * 100,
            addresses=_read_addresses(payload, count, family),
            auth_type=word >> 8,
            auth_data=payload[-_AUTH_SIZE:],
        )
    return Decoded(advertisement=advertisement, checksum_form=form)


def _checked(
    payload: bytes, family: Family, src: IPAddress, dst: IPAddress, ttl: int
) -> tuple[tuple[int, ...], ChecksumForm]:
    """The header fields and checksum form of a packet that passes every check, in FRR's order."""
    size = len(payload)
    if ttl != VRRP_TTL:
        raise PacketRejected(RejectReason.BAD_TTL, f"TTL/hop limit {ttl}, must be 255")
    if size < _HEADER_SIZE:
        raise PacketRejected(RejectReason.TRUNCATED, f"{size} bytes, shorter than the 8-byte VRRP header")
    fields = _HEADER.unpack_from(payload)
    first, vrid, _priority, count, word, checksum = fields
    version = first >> 4
    if version not in (2, 3):
        raise PacketRejected(RejectReason.BAD_VERSION, f"version {version}, must be 3 (or 2)")
    if version == 2 and family == _IPV6:
        raise PacketRejected(RejectReason.WRONG_FAMILY, "VRRPv2 over IPv6")
    form = _checksum_form(payload, version, family, src, dst)
    if form is None:
        raise PacketRejected(RejectReason.BAD_CHECKSUM, f"checksum {checksum:#06x} matches no accepted form")
    if first & 0x0F != TYPE_ADVERTISEMENT:
        raise PacketRejected(RejectReason.BAD_TYPE, f"type {first & 0x0F}, must be 1 (advertisement)")
    if count == 0:
        raise PacketRejected(RejectReason.ZERO_ADDRESS_COUNT, "address count 0")
    expected = _expected_size(version, count, family)
    if size != expected:
        detail = f"{size} bytes, but a VRRPv{version} message with {count} addresses has {expected}"
        raise PacketRejected(RejectReason.ADDRESS_COUNT_MISMATCH, detail)
    if vrid == 0:
        raise PacketRejected(RejectReason.BAD_VRID, "VRID 0")
    if (word & 0x0FFF if version == 3 else word & 0xFF) == 0:
        raise PacketRejected(RejectReason.ZERO_INTERVAL, "advertisement interval 0")
    return fields, form


def encode(
    adv: Advertisement,
    *,
    family: Family,
    src: IPAddress,
    dst: IPAddress,
    checksum_form: ChecksumForm = ChecksumForm.PSEUDO_HEADER,
) -> bytes:
    """The VRRP message for `adv`, sent from `src` to `dst` (the IP payload; the IP layer adds TTL 255).

    `checksum_form` matters for VRRPv3 over IPv4 only: VRRPv2 is always summed plain (RFC 3768) and IPv6
    always with its pseudo-header (RFC 8200 §8.1), whatever is asked.
    """
    _check_family(family, src, dst)
    if adv.addresses[0].version != family:
        raise LocalProtocolError(f"IPv{adv.addresses[0].version} addresses in an IPv{int(family)} packet")
    if adv.version == 3:
        word = adv.reserved << 12 | adv.interval_cs
        tail = b"".join([a.packed for a in adv.addresses])
    else:
        word = adv.auth_type << 8 | adv.interval_cs // 100
        tail = b"".join([a.packed for a in adv.addresses]) + adv.auth_data
    fields = ((adv.version << 4) | TYPE_ADVERTISEMENT, adv.vrid, adv.priority, len(adv.addresses), word)
    message = _HEADER.pack(*fields, 0) + tail
    total = _sum(message)
    if adv.version == 3 and (family == _IPV6 or checksum_form is _PSEUDO_HEADER):
        total = (total + _pseudo_sum(src, dst, len(message))) % 0xFFFF
    # RFC 1071: the checksum is the complement of the folded sum; a sum of 0xFFFF (≡ 0) gives 0x0000.
    return _HEADER.pack(*fields, 0xFFFF - total if total else 0) + tail
