"""Run a block of Python inside a named network namespace: `with inside("ffo-t-…-n1"): …`.

Why in-process rather than `ip netns exec python …`: a socket belongs to the network namespace it was created in,
for life, whatever namespace its user later runs in. So a test (or the lab's pinger) can step into node A's
namespace, open ffo's VRRP socket there, step into node B's, open another, and then drive both from one asyncio
loop in the host namespace — fast, debuggable, and exactly the sockets the daemon uses.

`setns(2)` on a network namespace changes the calling *thread* only (a multithreaded process may do it), so
the block must not hand work to other threads and expect them to be inside too; what is looked up by name
in the block (`if_nametoindex`, netlink dumps, routes) sees the entered namespace. What reads `/sys` or
`/proc/self/net` may not: those follow the mount namespace and the main thread, which `ip netns exec` fixes by
remounting and this does not. Python 3.11 has no `os.setns` (3.12 added it), so it goes through ctypes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["NETNS_RUN_DIR", "inside", "namespace_path"]

NETNS_RUN_DIR = "/run/netns"
"""Where `ip netns add NAME` bind-mounts the namespace (iproute2's NETNS_RUN_DIR)."""
CLONE_NEWNET = 0x40000000  # <sched.h>

_setns: Any = None


def namespace_path(name: str) -> str:
    """The file that names namespace `name` (refusing names that would escape the run directory)."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"not a namespace name: {name!r}")
    return os.path.join(NETNS_RUN_DIR, name)


def _enter(fd: int) -> None:
    global _setns  # noqa: PLW0603 - one lazy lookup per process
    native = getattr(os, "setns", None)
    if native is not None:  # Python ≥ 3.12
        native(fd, CLONE_NEWNET)
        return
    if _setns is None:
        libc = ctypes.CDLL(None, use_errno=True)
        _setns = libc.setns
        _setns.argtypes = (ctypes.c_int, ctypes.c_int)
        _setns.restype = ctypes.c_int
    if _setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


@contextlib.contextmanager
def inside(name: str) -> Iterator[None]:
    """Run the block with this thread in network namespace `name`; always come back to where it was.

    Failing to come back would leave the thread silently in the wrong namespace, so that raises (chained to
    whatever the block raised) rather than being swallowed.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(namespace_path(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            _enter(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _enter(own)
    finally:
        os.close(own)
