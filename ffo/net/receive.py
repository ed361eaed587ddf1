"""What a raw VRRP socket received, judged: a valid `Received` advertisement or a `Rejected` with its reason.

Pure (bytes and addresses in, a value out), so every rule here is tested without a socket; `ffo.net.vrrpsock`
feeds it what the kernel handed over. It never raises for anything a peer can send.

- IPv4: the raw socket delivers the whole datagram, IP header included, so source, destination and TTL come
  from `ffo.vrrp.ipheader.parse_ip`. The kernel has not verified the VRRP checksum; `packet.decode` does, and
  accepts both IPv4 forms (pseudo-header and plain, RFC 9568 §5.2.8), reporting which one matched.
- IPv6: the kernel strips the IPv6 header; the source comes with `recvmsg`, the destination and the hop limit
  as ancillary data (RFC 3542 §6: IPV6_PKTINFO, IPV6_HOPLIMIT), parsed here by `parse_ipv6_ancillary`. The
  checksum has already been verified by the kernel (IPV6_CHECKSUM); `decode` checks it again, which costs
  little and keeps one code path.
- Unicast peers (keepalived's ``unicast_peer`` with its default ``check_unicast_src``): an advertisement for a
  VRID that has configured peers must come from one of them, else it is rejected as ``wrong_source``. The check
  runs after decoding because the VRID is needed; an instance without peers accepts any source, as multicast
  does. RFC 9568 §7.1's TTL rule still applies to unicast (keepalived's default ``min_ttl`` is 255 as well).

Repeats: a backup hears the same advertisement from the same master every interval, byte for byte except the
IPv4 identification and header checksum. `RepeatCache` remembers the judgement of valid datagrams under a key
with exactly those two fields zeroed (`ipv4_repeat_key`; a socket zeroes them in its receive buffer, and the
one copy it makes is both the key and what is judged), so a repeat costs a dict lookup instead of a parse and
a decode (about 1 µs instead of 20 here) — the fast path BENCHMARKS.md's 200 routers at 10 ms need. The key
holds every byte the judgement reads, so a hit is the judgement a full pass would give, and the same `Received`
object (which lets the VRRP core recognise the repeat by identity); the cache is cleared whenever the unicast
peers change, since the source check depends on them.

Reasons the codec cannot see (the socket layer's) are `NetReason` members; counters and logs use the ``value``
of either enum, so ``wrong_source`` sits beside ``bad_checksum`` in one table.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
import sys
from collections.abc import Hashable, Iterable, Mapping

import attrs

from ffo.vrrp.ipheader import IpRejected, parse_ip
from ffo.vrrp.packet import (
    Advertisement,
    ChecksumForm,
    Family,
    HeaderFields,
    IPAddress,
    PacketRejected,
    RejectReason,
    decode,
)

__all__ = [
    "IPPROTO_VRRP",
    "NetReason",
    "Peers",
    "Reason",
    "Received",
    "Rejected",
    "RepeatCache",
    "classify_ipv4",
    "classify_ipv6",
    "ipv4_repeat_key",
    "mask_ipv4_repeat_fields",
    "parse_ipv6_ancillary",
    "peer_table",
]

IPPROTO_VRRP = 112
# Linux values (<netinet/in.h>), written out so that this module stays free of `socket` (STYLE.md rule 1).
_IPPROTO_IPV6, _IPV6_PKTINFO, _IPV6_HOPLIMIT = 41, 50, 52
_TWO_ZEROS = bytes(2)
_IN6_PKTINFO = struct.Struct("=16sI")  # struct in6_pktinfo { struct in6_addr addr; unsigned int ifindex; }


class NetReason(enum.Enum):
    """Rejections decided at the socket layer, beyond the codec's `RejectReason`."""

    WRONG_SOURCE = "wrong_source"
    """A unicast instance's advertisement from an address that is not one of its ``unicast_peers``."""
    WRONG_PROTOCOL = "wrong_protocol"
    """An IP datagram whose protocol is not 112 (a raw protocol-112 socket should never see one)."""
    OVERSIZE = "oversize"
    """A datagram larger than the receive buffer (cut short by the kernel: MSG_TRUNC)."""
    MISSING_ANCILLARY = "missing_ancillary"
    """An IPv6 datagram without its destination or hop limit (IPV6_RECVPKTINFO / IPV6_RECVHOPLIMIT)."""


Reason = RejectReason | NetReason
Peers = Mapping[int, frozenset[IPAddress]]
"""VRID -> the source addresses allowed for it; a VRID not in the map accepts any source."""


@attrs.frozen(kw_only=True)
class Received:
    """A valid advertisement and what the IP layer said about it."""

    family: Family
    src: IPAddress
    dst: IPAddress
    """224.0.0.18 / ff02::12, or this node's own address for unicast."""
    ttl: int
    """The IPv4 TTL or IPv6 hop limit it arrived with (always 255: anything else is rejected)."""
    advertisement: Advertisement
    checksum_form: ChecksumForm
    """Which checksum form the sender used (RFC 9568 §5.2.8); always pseudo-header for IPv6."""


@attrs.frozen(kw_only=True)
class Rejected:
    """A discarded datagram: why, and whatever could be read of it (None where nothing could)."""

    family: Family
    reason: Reason
    detail: str
    src: IPAddress | None = None
    dst: IPAddress | None = None
    ttl: int | None = None
    header: HeaderFields | None = None
    """The VRRP header fields of a packet the codec refused, when they could be read."""
    advertisement: Advertisement | None = None
    """The decoded advertisement of a packet refused after decoding (``wrong_source``)."""

    @property
    def vrid(self) -> int | None:
        """The VRID the packet claimed, for per-instance logs; None when unreadable."""
        if self.advertisement is not None:
            return self.advertisement.vrid
        return self.header.vrid if self.header is not None else None


def _judge(
    payload: bytes, *, family: Family, src: IPAddress, dst: IPAddress, ttl: int, peers: Peers
) -> Received | Rejected:
    try:
        decoded = decode(payload, family=family, src=src, dst=dst, ttl=ttl)
    except PacketRejected as rejected:
        return Rejected(
            family=family, reason=rejected.reason, detail=rejected.detail, src=src, dst=dst, ttl=ttl,
            header=rejected.header,
        )  # fmt: skip
    advertisement = decoded.advertisement
    allowed = peers.get(advertisement.vrid)
    if allowed is not None and src not in allowed:
        detail = f"VRID {advertisement.vrid} from {src}, not one of its unicast peers"
        return Rejected(
            family=family, reason=NetReason.WRONG_SOURCE, detail=detail, src=src, dst=dst, ttl=ttl,
            advertisement=advertisement,
        )  # fmt: skip
    return Received(
        family=family, src=src, dst=dst, ttl=ttl, advertisement=advertisement, checksum_form=decoded.checksum_form
    )


def classify_ipv4(datagram: bytes, peers: Peers) -> Received | Rejected:
    """Judge one datagram from an IPv4 raw socket (IP header included)."""
    try:
        ip = parse_ip(datagram)
    except IpRejected as rejected:
        partial = rejected.partial
        return Rejected(
            family=Family.IPV4, reason=rejected.reason, detail=rejected.detail,
            src=partial.src if partial else None, dst=partial.dst if partial else None,
            ttl=partial.ttl if partial else None,
        )  # fmt: skip
    if ip.family is not Family.IPV4 or ip.protocol != IPPROTO_VRRP:
        return Rejected(
            family=Family.IPV4, reason=NetReason.WRONG_PROTOCOL, src=ip.src, dst=ip.dst, ttl=ip.ttl,
            detail=f"IPv{int(ip.family)} protocol {ip.protocol}, not VRRP over IPv4",
        )  # fmt: skip
    return _judge(ip.payload, family=Family.IPV4, src=ip.src, dst=ip.dst, ttl=ip.ttl, peers=peers)


def classify_ipv6(
    payload: bytes, *, src: IPAddress, dst: IPAddress | None, hop_limit: int | None, peers: Peers
) -> Received | Rejected:
    """Judge one VRRP message from an IPv6 raw socket, with the source and the ancillary data's fields."""
    if dst is None or hop_limit is None:
        missing = "destination" if dst is None else "hop limit"
        return Rejected(
            family=Family.IPV6, reason=NetReason.MISSING_ANCILLARY, src=src, dst=dst, ttl=hop_limit,
            detail=f"no {missing} in the ancillary data",
        )  # fmt: skip
    return _judge(payload, family=Family.IPV6, src=src, dst=dst, ttl=hop_limit, peers=peers)


def parse_ipv6_ancillary(
    ancdata: Iterable[tuple[int, int, bytes]],
) -> tuple[ipaddress.IPv6Address | None, int | None]:
    """The destination address (IPV6_PKTINFO) and hop limit (IPV6_HOPLIMIT) from `recvmsg`'s ancillary data."""
    dst: ipaddress.IPv6Address | None = None
    hop_limit: int | None = None
    for level, kind, data in ancdata:
        if level != _IPPROTO_IPV6:
            continue
        if kind == _IPV6_PKTINFO and len(data) >= _IN6_PKTINFO.size:
            dst = ipaddress.IPv6Address(data[:16])
        elif kind == _IPV6_HOPLIMIT and len(data) >= 4:
            hop_limit = int.from_bytes(data[:4], sys.byteorder, signed=True)
    return dst, hop_limit


def peer_table(peers: Mapping[int, Iterable[IPAddress]]) -> dict[int, frozenset[IPAddress]]:
    """Normalise a VRID -> addresses mapping into `Peers` (empty address lists are dropped: multicast)."""
    return {vrid: frozenset(addresses) for vrid, addresses in peers.items() if addresses}


def ipv4_repeat_key(datagram: bytes) -> bytes:
    """`datagram` with the IPv4 identification (bytes 4-5) and header checksum (10-11) zeroed: the rest is read."""
    key = bytearray(datagram)
    mask_ipv4_repeat_fields(key)
    return bytes(key)


def mask_ipv4_repeat_fields(buffer: bytearray) -> None:
    """Zero, in place, the IPv4 fields a repeat may change and no judgement reads (`ipv4_repeat_key`): a socket
    does it in its receive buffer, so that one copy of the datagram is both the key and what is judged."""
    buffer[4:6] = _TWO_ZEROS
    buffer[10:12] = _TWO_ZEROS


class RepeatCache:
    """The judgements of valid datagrams seen before, by repeat key; bounded (emptied when full).

    Only `Received` values are kept: they are immutable, so handing the same one out again is safe, and a
    flood of distinct invalid packets cannot grow the table.
    """

    __slots__ = ("_entries", "hits", "limit")

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self.hits = 0
        self._entries: dict[Hashable, Received] = {}

    def get(self, key: Hashable) -> Received | None:
        found = self._entries.get(key)
        if found is not None:
            self.hits += 1
        return found

    def remember(self, key: Hashable, judged: Received | Rejected) -> None:
        if type(judged) is Received:
            if len(self._entries) >= self.limit:
                self._entries.clear()
            self._entries[key] = judged

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
