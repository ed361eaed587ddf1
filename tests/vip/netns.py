"""A small, self-contained network namespace helper for the VIP tests (and tools/bench_vip.py).

Namespaces are named `ffo-v-<6 hex>`, hold only documentation addresses (192.0.2.0/24, 2001:db8::/32 and
link-locals), and are always deleted: by the fixture's `finally`, and by an `atexit` hook for anything a
killed test left behind. Nothing here touches the host's own interfaces, addresses or routes.

`Netns.entered()` moves the *calling thread* into the namespace (setns(2) on CLONE_NEWNET affects one
thread) so that a socket opened there stays in it, then moves back; Python 3.11 has no `os.setns`, hence
ctypes.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_live: set[str] = set()
_OWNER = os.getpid()  # pyroute2 forks this process to open sockets in a namespace: a fork never deletes


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


class Netns:
    """One network namespace, created on construction, deleted by `delete` (idempotent)."""

    def __init__(self) -> None:
        self.name = f"ffo-v-{secrets.token_hex(3)}"
        _live.add(self.name)
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True, timeout=10)
        self.ip("link", "set", "lo", "up")
        for key in ("all", "default"):  # every address is unique by construction: no DAD wait
            self.sysctl(f"net.ipv6.conf.{key}.accept_dad", "0")

    def ip(self, *args: str, check: bool = True) -> str:
        """`ip -n <name> ARGS`, its standard output."""
        done = subprocess.run(["ip", "-n", self.name, *args], check=False, capture_output=True, text=True, timeout=10)
        if check and done.returncode != 0:
            raise RuntimeError(f"ip -n {self.name} {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def ip_json(self, *args: str) -> list[dict[str, Any]]:
        output = self.ip("-j", *args)
        return json.loads(output) if output.strip() else []

    def sysctl(self, key: str, value: str) -> None:
        subprocess.run(
            ["ip", "netns", "exec", self.name, "sysctl", "-qw", f"{key}={value}"],
            check=True,
            capture_output=True,
            timeout=10,
        )

    def mac(self, interface: str) -> str:
        return str(self.ip_json("link", "show", "dev", interface)[0]["address"])

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Run the body with this thread in the namespace (to open sockets there), then come back."""
        with open("/proc/thread-self/ns/net", "rb") as home, open(f"/run/netns/{self.name}", "rb") as target:
            _setns(target.fileno())
            try:
                yield
            finally:
                _setns(home.fileno())

    def delete(self) -> None:
        if os.getpid() != _OWNER:
            return
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True, timeout=10)
        _live.discard(self.name)


def veth(left: Netns, left_name: str, right: Netns, right_name: str) -> None:
    """A veth pair from `left` to `right` (the same namespace or two), both ends up."""
    left.ip("link", "add", left_name, "type", "veth", "peer", "name", right_name, "netns", right.name)
    left.ip("link", "set", left_name, "up")
    right.ip("link", "set", right_name, "up")


def wait_until(condition: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `condition` with a generous timeout: no fixed sleeps for correctness."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


@atexit.register
def _delete_leftovers() -> None:
    if os.getpid() != _OWNER:
        return
    for name in list(_live):
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True, timeout=10)
        _live.discard(name)
