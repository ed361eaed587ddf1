"""ICMP echo from Python: the lab's reachability probe (the test machines have no `ping` binary).

`ping(address)` sends echo requests from the calling thread's network namespace (enter one with
`ffo.lab.nsenter.inside`) and returns the round-trip time of the first matching reply, or None. Raw ICMP
sockets need root, which every lab user is. For IPv6 the kernel fills the ICMPv6 checksum (RFC 3542 §3.1), for
IPv4 we do. Replies are matched on identifier and sequence, because a raw ICMP socket sees every ICMP packet
arriving in the namespace, other pingers' included.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import select
import socket
import struct
import time

from ffo.lab.probe import echo_request, parse_echo_reply

__all__ = ["ping"]

_ECHO = {6: (128, 129)}  # ICMPv6 (request type, reply type); IPv4 echoes are built by `ffo.lab.probe`
_sequence = itertools.count(1)


def _request(family: int, ident: int, seq: int, payload: bytes) -> bytes:
    if family == 4:
        return echo_request(ident, seq, payload)
    return struct.pack("!BBHHH", _ECHO[6][0], 0, 0, ident, seq) + payload  # the kernel fills the checksum


def _is_reply(family: int, data: bytes, ident: int, seq: int) -> bool:
    if family == 4:  # an IPv4 raw socket delivers the IP header too
        return parse_echo_reply(data, ident) == seq
    if len(data) < 8:
        return False
    kind, _code, _sum, got_ident, got_seq = struct.unpack_from("!BBHHH", data)
    return bool(kind == _ECHO[6][1] and got_ident == ident and got_seq == seq)


def ping(
    address: str | ipaddress.IPv4Address | ipaddress.IPv6Address,
    *,
    timeout: float = 2.0,
    attempts: int = 3,
    ifindex: int = 0,
) -> float | None:
    """Round-trip seconds of the first answered echo of up to `attempts`, each waited `timeout`/`attempts`.

    `ifindex` scopes an IPv6 link-local destination. Several attempts ride out the first packet's
    neighbour resolution (ARP/ND), which a fresh lab always pays.
    """
    target = ipaddress.ip_address(address)
    family = target.version
    kind = socket.AF_INET if family == 4 else socket.AF_INET6
    proto = socket.IPPROTO_ICMP if family == 4 else socket.IPPROTO_ICMPV6
    destination: tuple[str, int] | tuple[str, int, int, int]
    destination = (str(target), 0) if family == 4 else (str(target), 0, 0, ifindex)
    ident = os.getpid() & 0xFFFF
    with socket.socket(kind, socket.SOCK_RAW, proto) as sock:
        for _ in range(attempts):
            seq = next(_sequence) & 0xFFFF
            sent = time.monotonic()
            deadline = sent + timeout / attempts
            sock.sendto(_request(family, ident, seq, b"ffo-lab-ping"), destination)
            while (left := deadline - time.monotonic()) > 0:
                readable, _, _ = select.select([sock], [], [], left)
                if readable and _is_reply(family, sock.recv(65535), ident, seq):
                    return time.monotonic() - sent
    return None
