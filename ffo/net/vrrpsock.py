"""The VRRP actor's I/O edge: one raw socket per (interface, family), shared by every instance on it.

DESIGN.md §1/§4: the state machine is pure and the actor owns the sockets; this class is that socket. It sends
advertisements the codec (`ffo.vrrp.packet.encode`) builds, to the VRRP group or to each unicast peer, and
turns whatever arrives into `Received` or `Rejected` values (`ffo.net.receive`) — it never raises into the
caller for anything the network sends, and never for a failed send either (counted, logged at a rate limit).

Built for asyncio without depending on it: the socket is non-blocking, `attach` registers it with
``loop.add_reader``, and each wake-up `drain`s every datagram already queued (up to `max_batch`) so that a
burst costs one trip through the event loop rather than one per packet — the VRRP actor then steps its
machines for the whole batch. A repeat of a valid datagram already judged (the same master's periodic
advertisement) is recognised by a dict lookup instead of a parse and decode (`ffo.net.receive.RepeatCache`).
Sends are plain calls from the loop's thread: a raw datagram send does not block, and the rare
``EAGAIN``/``ENOBUFS`` is counted like any other error, because a missed advertisement is the protocol's own
failure mode (the next one follows one interval later).

Source addresses (RFC 9568 §5.1.1.1, §5.1.2.1): the interface's primary IPv4 address / its IPv6 link-local
address, read with `primary_addresses` when the socket opens and again on `refresh_source` (the actor calls it
on netlink address changes). Packets leave by a second, send-only socket bound to that address (``sendto``;
the receiving socket cannot be bound: binding a raw socket filters what it receives to that destination),
or, while there is none, by the main socket with the source in IP(V6)_PKTINFO (``sendmsg``, 4 µs a packet
dearer here). The IPv4 checksum form is the
sending instance's choice (``checksum_ipv4_pseudo_header``, default the pseudo-header form as keepalived and
FRR send); the codec computes it over the real source and destination, unicast ones included.

Logging: rejected packets go to ``ffo.vrrp.packet`` at INFO, at most one line per reason per 10 s with the
number suppressed since (RFC 9568 §7.1 "SHOULD log … rate limited"); send failures to ``ffo.vrrp.sock`` at
WARNING with the same limit. Every line names the node, interface, family and (when readable) the VRID.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import struct
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from types import TracebackType

import attrs

from ffo.clock import Clock, SystemClock
from ffo.net.addresses import primary_addresses
from ffo.net.ratelimit import RateLimiter
from ffo.net.receive import (
    NetReason,
    Received,
    Rejected,
    RepeatCache,
    classify_ipv4,
    classify_ipv6,
    mask_ipv4_repeat_fields,
    parse_ipv6_ancillary,
)
from ffo.net.sockopts import ANCILLARY_SIZE_V6, GROUPS, kernel_drops, open_raw, pktinfo
from ffo.vrrp.packet import Advertisement, ChecksumForm, Family, IPAddress, encode

__all__ = ["SocketStatistics", "VrrpSocket"]

packet_log = logging.getLogger("ffo.vrrp.packet")
sock_log = logging.getLogger("ffo.vrrp.sock")

_BUFFER_SIZE = 65536  # any IPv4 datagram fits; a VRRP message is at most 4,088 bytes
_ADDRESS_CACHE_LIMIT = 256
_IPV4_HEADER_SIZE = 20
_SEND_ONLY_RCVBUF = 4096  # a send-only socket still gets unicast VRRP addressed to the node: keep little of it
NO_SOURCE = "no_source"
"""The send-failure key when the interface has no address to send from (yet)."""

Datagram = Received | Rejected
BatchHandler = Callable[[Sequence[Datagram]], None]


@attrs.frozen(kw_only=True)
class SocketStatistics:
    """A snapshot of a socket's counters (trio's `statistics()` idea: an immutable record)."""

    received: int
    """Valid advertisements handed to the caller."""
    rejected: Mapping[str, int]
    """Discarded datagrams by reason (`RejectReason` / `NetReason` values)."""
    sent: int
    send_failed: Mapping[str, int]
    """Failed sends by errno name (``ENETDOWN``, ``EAGAIN``, …) or ``no_source``."""
    receive_errors: Mapping[str, int]
    """``recvmsg`` failures other than "nothing queued", by errno name."""
    repeats: int
    """Valid datagrams recognised as repeats of one judged before (the fast path)."""
    batches: int
    """Wake-ups that drained at least one datagram."""
    largest_batch: int
    kernel_drops: int | None
    """Dropped by the kernel before we could read them (full buffer; IPv6: bad checksum). None if unknown."""


def _leave_group(sock: socket.socket, family: Family, ifindex: int) -> None:
    """Undo `open_raw`'s group membership (the same ip_mreqn / ipv6_mreq it joined with)."""
    group = GROUPS[family]
    try:
        if family is Family.IPV4:
            mreqn = struct.pack("=4s4si", group.packed, bytes(4), ifindex)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, mreqn)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_LEAVE_GROUP, struct.pack("=16sI", group.packed, ifindex))
    except BaseException:
        sock.close()
        raise


def _open_sender(family: Family, ifname: str, ifindex: int, source: IPAddress) -> socket.socket:
    """A raw VRRP socket for sending only: `open_raw`'s options, out of the group, bound to `source`.

    Bound, it would also receive VRRP unicast to `source`; it is never read, so its buffer is kept tiny.
    """
    sock = open_raw(family, ifname, ifindex, rcvbuf=_SEND_ONLY_RCVBUF)
    _leave_group(sock, family, ifindex)
    try:
        if family is Family.IPV4:
            sock.bind((str(source), 0))
        else:
            sock.bind((str(source), 0, 0, ifindex if source.is_link_local else 0))
    except BaseException:
        sock.close()
        raise
    return sock


def _ipv6_source(host: str) -> ipaddress.IPv6Address:
    """`recvmsg`'s source, which Python spells with the scope of a link-local address (``fe80::1%eth0``)."""
    return ipaddress.IPv6Address(host.split("%", 1)[0])


class VrrpSocket:
    """A raw VRRP socket on one interface for one family. Open with `VrrpSocket.open`; a context manager."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        ifname: str,
        ifindex: int,
        family: Family,
        source: IPAddress | None,
        clock: Clock | None = None,
        node: str = "",
        max_batch: int = 256,
    ) -> None:
        self._sock = sock
        self.ifname = ifname
        self.ifindex = ifindex
        self.family = family
        self.group = GROUPS[family]
        self._source: IPAddress | None = None
        self._ancillary: list[tuple[int, int, bytes]] = []
        self._sender: socket.socket | None = None
        self._wants_sender = False
        self._addresses: dict[IPAddress, tuple[str, int] | tuple[str, int, int, int]] = {}
        self._last_destination: tuple[IPAddress, tuple[str, int] | tuple[str, int, int, int]] | None = None
        self.set_source(source)
        self._clock = clock if clock is not None else SystemClock()
        self.max_batch = max_batch
        self._label = f"{node + ' ' if node else ''}{ifname} IPv{int(family)}"
        self._peers: dict[int, frozenset[IPAddress]] = {}
        self._destinations: dict[int, tuple[IPAddress, ...]] = {}
        self._buffer = bytearray(_BUFFER_SIZE)
        self._view = memoryview(self._buffer)
        self._limiter = RateLimiter()
        self._repeats = RepeatCache()
        self._received = self._sent = self._batches = self._largest_batch = 0
        self._rejected: Counter[str] = Counter()
        self._send_failed: Counter[str] = Counter()
        self._receive_errors: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def open(
        cls,
        ifname: str,
        family: Family,
        *,
        exclude: Collection[IPAddress] = (),
        rcvbuf: int = 1 << 20,
        clock: Clock | None = None,
        node: str = "",
        max_batch: int = 256,
        listen: bool = True,
    ) -> VrrpSocket:
        """Open the socket on `ifname` in the calling thread's network namespace, source from the kernel.

        `exclude` are addresses never to send from (the VIPs). ``listen=False`` opens a socket that only
        sends (the VIP actor's goodbyes): it does not join the VRRP group, so the kernel does not copy every
        advertisement on the link into a queue nobody reads (at 20,000 packets a second that copy is paid
        on every packet, and charged to the sender). Raises `OSError` when the interface does not exist or
        raw sockets are not permitted — the actor's start-up problem, not a packet's.
        """
        ifindex = socket.if_nametoindex(ifname)
        sock = open_raw(family, ifname, ifindex, rcvbuf=rcvbuf if listen else _SEND_ONLY_RCVBUF)
        if not listen:
            _leave_group(sock, family, ifindex)
        ipv4, ipv6 = primary_addresses(ifname, exclude=exclude)
        source = ipv4 if family is Family.IPV4 else ipv6
        opened = cls(
            sock, ifname=ifname, ifindex=ifindex, family=family, source=source, clock=clock, node=node,
            max_batch=max_batch,
        )  # fmt: skip
        if listen:  # a send-only socket sends rarely (goodbyes): with IP_PKTINFO, no second socket
            opened.open_sender()
        return opened

    # -- configuration -----------------------------------------------------------------------------------------

    @property
    def source(self) -> IPAddress | None:
        """The address advertisements are sent from; None while the interface has none (sends then fail)."""
        return self._source

    def set_source(self, source: IPAddress | None) -> None:
        """Send from `source` from now on (with IP(V6)_PKTINFO: a sender socket bound to an older source is
        closed; `refresh_source` opens one for the new address)."""
        if source is not None and source.version != self.family:
            raise ValueError(f"source {source} is not IPv{int(self.family)}")
        if source != self._source:
            self._close_sender()
        self._source = source
        self._ancillary = [] if source is None else [pktinfo(self.family, source, self.ifindex)]

    def refresh_source(self, exclude: Collection[IPAddress] = ()) -> IPAddress | None:
        """Re-read the interface's primary / link-local address (after a netlink address change), in the
        socket's network namespace (the calling thread's, as for `open`)."""
        ipv4, ipv6 = primary_addresses(self.ifname, exclude=exclude)
        self.set_source(ipv4 if self.family is Family.IPV4 else ipv6)
        if self._wants_sender and self._sender is None:
            self.open_sender()
        return self._source

    def open_sender(self) -> None:
        """Open the socket advertisements leave by: bound to the source, so that no IP(V6)_PKTINFO has to go
        with each one. `sendmsg` with that ancillary item cost 11 µs a packet here, `sendto` on a bound socket
        7 µs: at 20,000 packets a second, a tenth of a core. Without a source (or if binding fails) packets
        go by the main socket with the ancillary item, as before. In the calling thread's namespace."""
        self._close_sender()
        self._wants_sender = True
        if self._source is None:
            return
        try:
            self._sender = _open_sender(self.family, self.ifname, self.ifindex, self._source)
        except OSError as error:
            sock_log.warning(
                "%s: sending with IP_PKTINFO (no socket bound to %s: %s)", self._label, self._source, error
            )

    def _close_sender(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    def set_peers(self, vrid: int, peers: Iterable[IPAddress]) -> None:
        """Make `vrid` unicast to `peers` (and accept it only from them); no peers: back to multicast."""
        addresses = tuple(peers)
        if any(peer.version != self.family for peer in addresses):
            raise ValueError(f"unicast peers of VRID {vrid} must all be IPv{int(self.family)}: {addresses}")
        if addresses:
            self._peers[vrid] = frozenset(addresses)
            self._destinations[vrid] = addresses
        else:
            self._peers.pop(vrid, None)
            self._destinations.pop(vrid, None)
        self._repeats.clear()  # remembered judgements passed the old source check

    def destinations(self, vrid: int) -> tuple[IPAddress, ...]:
        """Where `vrid`'s advertisements go: its unicast peers, or the group."""
        return self._destinations.get(vrid, (self.group,))

    def fileno(self) -> int:
        return self._sock.fileno()

    # -- sending -----------------------------------------------------------------------------------------------

    def encode(
        self, adv: Advertisement, dst: IPAddress, checksum_form: ChecksumForm = ChecksumForm.PSEUDO_HEADER
    ) -> bytes | None:
        """The bytes `send` would put on the wire to `dst` (None without a source): for callers that cache."""
        if self._source is None:
            return None
        return encode(adv, family=self.family, src=self._source, dst=dst, checksum_form=checksum_form)

    def send(
        self,
        adv: Advertisement,
        *,
        checksum_form: ChecksumForm = ChecksumForm.PSEUDO_HEADER,
        dst: IPAddress | None = None,
    ) -> int:
        """Send `adv` to `dst`, or to its VRID's unicast peers, or to the group; return how many sends worked."""
        sent = 0
        for destination in (dst,) if dst is not None else self.destinations(adv.vrid):
            payload = self.encode(adv, destination, checksum_form)
            if payload is None:
                self._send_failure(NO_SOURCE, destination, adv.vrid, "the interface has no address to send from")
            elif self.send_payload(payload, destination, vrid=adv.vrid):
                sent += 1
        return sent

    def send_payload(self, payload: bytes, dst: IPAddress, *, vrid: int | None = None) -> bool:
        """Send an already encoded VRRP message (it must have been encoded for this source and `dst`)."""
        if self._source is None:
            self._send_failure(NO_SOURCE, dst, vrid, "the interface has no address to send from")
            return False
        last = self._last_destination
        if last is not None and last[0] is dst:  # nearly always: every instance sends to the one group object
            address = last[1]
        else:
            address = self._addresses.get(dst) or self._sockaddr(dst)
            self._addresses[dst] = address
            self._last_destination = (dst, address)
        try:
            sender = self._sender
            if sender is not None:
                sender.sendto(payload, address)
            else:
                self._sock.sendmsg([payload], self._ancillary, 0, address)
        except OSError as error:
            name = errno.errorcode.get(error.errno, str(error.errno)) if error.errno else type(error).__name__
            self._send_failure(name, dst, vrid, error.strerror or str(error))
            return False
        self._sent += 1
        return True

    def _sockaddr(self, dst: IPAddress) -> tuple[str, int] | tuple[str, int, int, int]:
        """`sendmsg`'s address for `dst` (kept per destination: a node sends to the group and a few peers)."""
        if len(self._addresses) >= _ADDRESS_CACHE_LIMIT:
            self._addresses.clear()
        if self.family is Family.IPV4:
            return (str(dst), 0)
        return (str(dst), 0, 0, self.ifindex if dst.is_link_local or dst.is_multicast else 0)

    def _send_failure(self, key: str, dst: IPAddress, vrid: int | None, detail: str) -> None:
        self._send_failed[key] += 1
        suppressed = self._limiter.allow(("send", key), self._clock.monotonic_ns())
        if suppressed is not None:
            more = f" ({suppressed} more since the last report)" if suppressed else ""
            sock_log.warning("%s vrid %s: send to %s failed: %s: %s%s", self._label, vrid, dst, key, detail, more)

    # -- receiving ---------------------------------------------------------------------------------------------

    def receive(self) -> Datagram | None:
        """Read one queued datagram and judge it; None when nothing is queued (or reading failed: counted)."""
        batch = self.drain(1)
        return batch[0] if batch else None

    def _receive_ipv4(self) -> Datagram:
        size = self._sock.recv_into(self._buffer, _BUFFER_SIZE, socket.MSG_TRUNC)
        if size > _BUFFER_SIZE:
            return self._counted(
                Rejected(family=self.family, reason=NetReason.OVERSIZE, detail=f"{size}-byte datagram")
            )
        if size >= _IPV4_HEADER_SIZE:
            mask_ipv4_repeat_fields(self._buffer)  # fields no judgement reads: the datagram is its own key
        key = bytes(self._view[:size])
        judged = self._repeats.get(key)
        if judged is not None:  # a repeat, valid: counted here, the rest of `_counted` is for rejections
            self._received += 1
            return judged
        fresh = classify_ipv4(key, self._peers)
        self._repeats.remember(key, fresh)
        return self._counted(fresh)

    def _receive_ipv6(self) -> Datagram:
        size, ancdata, flags, address = self._sock.recvmsg_into([self._buffer], ANCILLARY_SIZE_V6)
        if flags & socket.MSG_TRUNC:
            src = _ipv6_source(address[0])
            return self._counted(
                Rejected(family=self.family, reason=NetReason.OVERSIZE, detail="datagram cut short", src=src)
            )
        payload = bytes(self._view[:size])
        key = (address[0], tuple(ancdata), payload)  # every input of the judgement
        judged: Datagram | None = self._repeats.get(key)
        if judged is None:
            src = _ipv6_source(address[0])
            dst, hop_limit = parse_ipv6_ancillary(ancdata)
            judged = classify_ipv6(payload, src=src, dst=dst, hop_limit=hop_limit, peers=self._peers)
            self._repeats.remember(key, judged)
        return self._counted(judged)

    def _counted(self, datagram: Datagram) -> Datagram:
        if type(datagram) is Received:
            self._received += 1
            return datagram
        assert isinstance(datagram, Rejected)
        reason = datagram.reason.value
        self._rejected[reason] += 1
        suppressed = self._limiter.allow(("receive", reason), self._clock.monotonic_ns())
        if suppressed is not None:
            more = f" ({suppressed} more since the last report)" if suppressed else ""
            packet_log.info(
                "%s vrid %s: discarded a packet from %s to %s (TTL %s): %s: %s%s",
                self._label, datagram.vrid, datagram.src, datagram.dst, datagram.ttl, reason, datagram.detail, more,
            )  # fmt: skip
        return datagram

    def drain(self, limit: int | None = None) -> list[Datagram]:
        """Every datagram already queued, judged, up to `limit` (default `max_batch`); [] when none.

        Reads until the kernel has nothing more (Python has no ``recvmmsg``: one ``recv`` per datagram, and
        one ``EAGAIN`` per batch); a failed read is counted and ends the batch.
        """
        batch: list[Datagram] = []
        read = self._receive_ipv4 if self.family is Family.IPV4 else self._receive_ipv6
        append = batch.append
        try:
            for _ in range(self.max_batch if limit is None else limit):
                append(read())
        except BlockingIOError:
            pass
        except OSError as error:
            self._receive_errors[errno.errorcode.get(error.errno or 0, str(error.errno))] += 1
        if batch:
            self._batches += 1
            self._largest_batch = max(self._largest_batch, len(batch))
        return batch

    def attach(self, loop: asyncio.AbstractEventLoop, on_batch: BatchHandler) -> None:
        """Call `on_batch` with each non-empty `drain` whenever the socket turns readable in `loop`."""
        if self._loop is not None:
            raise RuntimeError(f"{self._label}: already attached to an event loop")
        loop.add_reader(self._sock.fileno(), self._on_readable, on_batch)
        self._loop = loop

    def detach(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._loop = None

    def _on_readable(self, on_batch: BatchHandler) -> None:
        batch = self.drain()
        if batch:
            on_batch(batch)

    # -- state -------------------------------------------------------------------------------------------------

    def statistics(self) -> SocketStatistics:
        return SocketStatistics(
            received=self._received,
            rejected=dict(self._rejected),
            sent=self._sent,
            send_failed=dict(self._send_failed),
            receive_errors=dict(self._receive_errors),
            repeats=self._repeats.hits,
            batches=self._batches,
            largest_batch=self._largest_batch,
            kernel_drops=kernel_drops(self._sock) if self._sock.fileno() >= 0 else None,
        )

    def close(self) -> None:
        self.detach()
        self._close_sender()
        self._sock.close()

    def __enter__(self) -> VrrpSocket:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<VrrpSocket {self._label} source={self._source} fd={self._sock.fileno()}>"
