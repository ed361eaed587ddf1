"""What a VIP operation did, for the VIP actor to publish and log (pure).

Netlink operations never raise into the caller for what the kernel refuses: a missing interface, a missing
permission, an address the kernel rejects come back as `VipError`s with the errno and a sentence, next to
what did succeed. A failover must add every VIP it can even when one of them fails, and the event log must
say which failed and why. Every result carries how long the kernel took (`netlink_ns`, monotonic), which
`VipsAcquired` / `VipsReleased` publish.
"""

from __future__ import annotations

import enum
import errno
from collections.abc import Mapping
from typing import Final

import attrs

from ffo.vip.model import Vip

__all__ = ["LinkResult", "Operation", "VipError", "VipResult", "errno_sentence"]


class Operation(enum.Enum):
    ACQUIRE = "acquire"
    RELEASE = "release"
    RECONCILE = "reconcile"


@attrs.frozen(kw_only=True)
class VipError:
    """One address (or interface) the kernel refused: `errno` for programs, `reason` for people."""

    vip: str
    """The address with its prefix (`192.0.2.10/32`), or empty when the error is about an interface."""
    interface: str
    errno: int
    reason: str


@attrs.frozen(kw_only=True)
class VipResult:
    """The outcome of one acquire, release or reconcile.

    `unchanged` holds the VIPs that already were as asked: present for an add, absent for a remove.
    `netlink_ns` is the monotonic time from the first request to the last answer (dumps included).
    """

    operation: Operation
    added: tuple[Vip, ...] = ()
    removed: tuple[Vip, ...] = ()
    unchanged: tuple[Vip, ...] = ()
    errors: tuple[VipError, ...] = ()
    started_ns: int = 0
    netlink_ns: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def held(self) -> tuple[Vip, ...]:
        """After an acquire: the VIPs now configured (added now or already there)."""
        return self.added + self.unchanged if self.operation is Operation.ACQUIRE else self.added


@attrs.frozen(kw_only=True)
class LinkResult:
    """The outcome of creating, checking or deleting one virtual MAC interface."""

    name: str
    created: bool = False
    removed: bool = False
    index: int | None = None
    errors: tuple[VipError, ...] = ()
    netlink_ns: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


_SENTENCES: Final[Mapping[int, str]] = {
    errno.ENODEV: "interface {interface} does not exist",
    errno.EPERM: "the kernel refused: ffo needs CAP_NET_ADMIN to change addresses and links",
    errno.EACCES: "the kernel refused: ffo needs CAP_NET_ADMIN to change addresses and links",
    errno.EADDRNOTAVAIL: "{vip} is not configured on {interface}",
    errno.EEXIST: "{vip} already exists on {interface} in a form the kernel will not replace",
    errno.EINVAL: "the kernel rejected the request for {vip} on {interface} as invalid",
    errno.EAFNOSUPPORT: "{interface} does not support this address family (is IPv6 disabled on it?)",
    errno.ENOBUFS: "the kernel ran out of buffer space (netlink)",
    errno.EBUSY: "{interface} is busy",
    errno.EOPNOTSUPP: "the kernel does not support this operation (is the macvlan module available?)",
}


def errno_sentence(code: int, *, vip: str = "", interface: str = "") -> str:
    """A sentence for an errno from netlink, naming the VIP and interface, ending with the errno's name."""
    name = errno.errorcode.get(code, f"errno {code}")
    template = _SENTENCES.get(code, "the kernel refused the request for {vip} on {interface}")
    subject = vip or "the link"
    return f"{template.format(vip=subject, interface=interface or 'the interface')} ({name})"
