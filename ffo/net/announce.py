"""Sends gratuitous ARPs and unsolicited neighbour advertisements through one AF_PACKET socket (the edge).

The frames come ready-made from `ffo.vip.frames` (pure, struct-built) and the timing from
`ffo.vip.schedule` (pure); this module only owns the socket and the waiting. The socket is long-lived and
bound to one interface: opening a packet socket per announcement, or scapy's `sendp` (which does that and
more), costs 24 ms a call here, a `send` on an open socket ~10 µs.

The socket is opened with protocol 0, so the kernel delivers nothing to it: it has no receive queue to fill
and costs nothing on a busy link. It is non-blocking: a full device queue (`ENOBUFS`/`EAGAIN`) or a downed
interface (`ENETDOWN`, `ENXIO`) is reported in the `SendResult`, never waited on, because a failover must
not stall on an announcement. A socket bound to a vmac dies with it (`ENXIO` in every later result, even
once a vmac of the same name is back: measured): open a new one when the vmac is created again. Frames sent
on a vmac carry the virtual MAC; their IPv6 source is the parent's link-local (the vmac has none, see
`ffo.vip.vmac`).
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Iterable, Sequence

import attrs

from ffo.clock import Clock
from ffo.errors import FfoError
from ffo.vip.frames import mac_text
from ffo.vip.schedule import Announcement

__all__ = ["Announcer", "AnnouncerUnavailable", "SendResult", "run_schedule"]


class AnnouncerUnavailable(FfoError):  # noqa: N818 -- reads as a state, like ConfigUnreadable
    """The packet socket could not be opened or bound (no such interface, no CAP_NET_RAW)."""

    def __init__(self, interface: str, code: int, reason: str) -> None:
        super().__init__(f"cannot announce on {interface}: {reason}")
        self.interface = interface
        self.errno = code
        self.reason = reason


@attrs.frozen(kw_only=True)
class SendResult:
    """One pass over the frames: how many went out, the first failure, and the time the sends took."""

    frames: int
    sent: int
    elapsed_ns: int
    errno: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.sent == self.frames


class Announcer:
    """A packet socket bound to one interface, for announcing VIPs from that interface's MAC."""

    def __init__(self, sock: socket.socket, interface: str, clock: Clock) -> None:
        self._sock = sock
        self._clock = clock
        self.interface = interface
        self.mac: bytes = sock.getsockname()[4]
        """The interface's MAC (the vmac on a vmac interface): the source of every frame."""

    @classmethod
    def open(cls, interface: str, *, clock: Clock) -> Announcer:
        """Open and bind the socket; `AnnouncerUnavailable` says why it could not be."""
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, 0)
        except OSError as error:
            code = error.errno or errno.EIO
            raise AnnouncerUnavailable(interface, code, _sentence(code, interface)) from error
        try:
            sock.bind((interface, 0))
        except OSError as error:
            sock.close()
            code = error.errno or errno.EIO
            raise AnnouncerUnavailable(interface, code, _sentence(code, interface)) from error
        return cls(sock, interface, clock)

    @property
    def mac_text(self) -> str:
        return mac_text(self.mac)

    def send(self, frames: Sequence[bytes]) -> SendResult:
        """Send each frame once, in order; keep going past a failed frame (another VIP may still get out)."""
        started = self._clock.monotonic_ns()
        sent = 0
        first_error: int | None = None
        for frame in frames:
            try:
                self._sock.send(frame)
                sent += 1
            except OSError as error:
                if first_error is None:
                    first_error = error.errno or errno.EIO
        elapsed = self._clock.monotonic_ns() - started
        reason = None if first_error is None else _sentence(first_error, self.interface)
        return SendResult(frames=len(frames), sent=sent, elapsed_ns=elapsed, errno=first_error, reason=reason)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Announcer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


async def run_schedule(
    announcer: Announcer,
    frames: Sequence[bytes],
    schedule: Iterable[Announcement],
    *,
    clock: Clock,
    report: Callable[[Announcement, SendResult], None] | None = None,
) -> None:
    """Send `frames` at every announcement of `schedule`, waiting on this loop; cancel the task to stop.

    Deadlines already passed are sent at once (a late loop catches up instead of skipping a burst).
    `report` sees every send, with its deadline, so the VIP actor can time and count them.
    """
    for announcement in schedule:
        delay_ns = announcement.at_ns - clock.monotonic_ns()
        if delay_ns > 0:
            await asyncio.sleep(delay_ns / 1e9)
        result = announcer.send(frames)
        if report is not None:
            report(announcement, result)


_REASONS = {
    errno.ENODEV: "interface {interface} does not exist",
    errno.ENXIO: "interface {interface} is gone",
    errno.ENETDOWN: "interface {interface} is down",
    errno.EPERM: "ffo needs CAP_NET_RAW to send raw frames",
    errno.EACCES: "ffo needs CAP_NET_RAW to send raw frames",
    errno.ENOBUFS: "the transmit queue of {interface} is full",
    errno.EAGAIN: "the transmit queue of {interface} is full",
    errno.EMSGSIZE: "a frame is larger than the MTU of {interface}",
}


def _sentence(code: int, interface: str) -> str:
    name = errno.errorcode.get(code, f"errno {code}")
    return f"{_REASONS.get(code, 'the kernel refused to send on {interface}').format(interface=interface)} ({name})"
