"""The client's view of a failover: ICMP echoes to the VIP at a fixed rate, every reply time-stamped.

DESIGN.md §5 measures failover where users feel it: a client pinging the VIP. `ffo.lab.ping` answers one
question ("does it reply?"); this keeps one raw socket open and sends an echo every `period_ns` (10 ms by
default) from a background thread, recording for each sequence number when it was sent and when (if ever) its
reply came. The outage is then read off the record: the last reply before the fault and the first after.

The socket is opened inside the client's namespace (`ffo.lab.nsenter.inside`) and keeps belonging to it, so
the thread itself runs in the caller's namespace. Times are CLOCK_MONOTONIC ns, the clock the daemons' event
logs record as ``mono_ns`` (namespaces share it), so probe times and log times compare directly.

Only IPv4 (the lab's VIP). Replies are matched on our identifier, random per probe, because a raw ICMP socket
sees every ICMP packet arriving in the namespace.
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
import select
import socket
import struct
import threading
import time
from types import TracebackType

import attrs

from ffo.lab.nsenter import inside

__all__ = ["Echo", "Prober", "echo_request", "parse_echo_reply"]

_ECHO_REQUEST, _ECHO_REPLY = 8, 0
_PAYLOAD = b"ffo-lab-probe"


@attrs.frozen(kw_only=True)
class Echo:
    """One echo request and its reply, if one came (monotonic ns)."""

    seq: int
    """The echo's number, from 1 (the wire carries it modulo 2^16)."""
    sent_ns: int
    replied_ns: int | None = None


def _checksum(data: bytes) -> int:
    if len(data) & 1:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes = _PAYLOAD) -> bytes:
    """An ICMPv4 echo request (RFC 792) with its checksum."""
    body = struct.pack("!BBHHH", _ECHO_REQUEST, 0, 0, ident, seq) + payload
    return body[:2] + struct.pack("!H", _checksum(body)) + body[4:]


def parse_echo_reply(packet: bytes, ident: int) -> int | None:
    """The sequence number of an echo reply to `ident` in `packet` (IPv4 header included), else None."""
    if not packet:
        return None
    icmp = packet[(packet[0] & 0x0F) * 4 :]
    if len(icmp) < 8:
        return None
    kind, _code, _sum, got_ident, seq = struct.unpack_from("!BBHHH", icmp)
    return seq if kind == _ECHO_REPLY and got_ident == ident else None


class Prober:
    """Pings `target` from `namespace` every `period_ns` until stopped. A context manager.

    `echoes()` can be read while it runs (the demo waits on `last_reply_ns`); sends that fail (no route, the
    neighbour unresolved) count as unanswered echoes, which is what a client sees too.
    """

    def __init__(self, namespace: str, target: str, period_ns: int = 10_000_000) -> None:
        self.target = str(ipaddress.IPv4Address(target))
        self.period_ns = period_ns
        self._ident = secrets.randbits(16)
        with inside(namespace):
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self._sent: dict[int, int] = {}
        self._replied: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ffo-lab-probe", daemon=True)

    def __enter__(self) -> Prober:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop sending, wait for the thread, close the socket. Idempotent."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self._socket.close()

    def echoes(self) -> tuple[Echo, ...]:
        """Every echo sent so far, in order."""
        with self._lock:
            return tuple(
                Echo(seq=seq, sent_ns=sent, replied_ns=self._replied.get(seq)) for seq, sent in self._sent.items()
            )

    def last_reply_ns(self) -> int | None:
        with self._lock:
            return max(self._replied.values(), default=None)

    def _run(self) -> None:
        count = 0
        next_send = time.monotonic_ns()
        while not self._stop.is_set():
            now = time.monotonic_ns()
            if now >= next_send:
                count += 1
                self._send(count, now)
                next_send += self.period_ns
                if next_send < now:  # fell behind (a stalled machine): do not burst to catch up
                    next_send = now + self.period_ns
            wait_s = max(0, next_send - time.monotonic_ns()) / 1e9
            if select.select([self._socket], [], [], wait_s)[0]:
                self._receive()

    def _send(self, count: int, now: int) -> None:
        with self._lock:
            self._sent[count] = now
        with contextlib.suppress(OSError):  # unanswered, as for a client whose send fails
            self._socket.sendto(echo_request(self._ident, count & 0xFFFF), (self.target, 0))

    def _receive(self) -> None:
        try:
            packet = self._socket.recv(65535)
        except OSError:
            return
        received = time.monotonic_ns()
        seq = parse_echo_reply(packet, self._ident)
        if seq is None:
            return
        with self._lock:
            latest = len(self._sent)
            count = latest - ((latest - seq) & 0xFFFF)  # the latest echo with this 16-bit sequence number
            if count in self._sent and count not in self._replied:
                self._replied[count] = received
