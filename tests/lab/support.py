"""Shared by the namespace tests (tests/lab, tests/net): the skip, the leftover check, polling helpers.

Every namespace a test creates is named ``ffo-t-<this pid>-…`` (the `Lab` default), so the session-end check
can tell this run's leftovers from those of a concurrent run on the same machine.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from ffo.lab import cleanup_stale, list_namespaces, netns_unavailable
from ffo.lab.namespaces import run_command
from ffo.net import Received, Rejected, VrrpSocket

T = TypeVar("T")
PREFIX = "ffo-t"


def own_namespaces() -> list[str]:
    """Namespaces this test process created and has not deleted."""
    return [name for name in list_namespaces() if name.startswith(f"{PREFIX}-{os.getpid()}-")]


@pytest.fixture
def require_netns() -> None:
    """Skip (with the reason) where namespaces cannot be made: not root, no iproute2, a locked-down container."""
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def no_leftover_namespaces() -> Iterator[None]:
    """Before the session: remove crashed runs' namespaces. After: fail if this run left any (and remove them)."""
    if netns_unavailable() is None:
        cleanup_stale(PREFIX)
    yield
    if netns_unavailable() is not None:
        return
    leftovers = own_namespaces()
    for name in leftovers:
        run_command(["ip", "netns", "del", name])
    assert not leftovers, f"namespaces left behind: {leftovers}"


def wait_until(condition: Callable[[], T], *, timeout: float = 10.0, what: str = "condition") -> T:
    """Poll `condition` until it returns something truthy and return that; fail after a generous timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def receive(
    sock: VrrpSocket,
    done: Callable[[list[Received | Rejected]], bool],
    *,
    timeout: float = 5.0,
    what: str = "datagrams",
) -> list[Received | Rejected]:
    """Drain `sock` as datagrams arrive until `done(everything so far)`; fail after `timeout` seconds."""
    got: list[Received | Rejected] = []
    deadline = time.monotonic() + timeout
    while not done(got):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; got {got}")
        select.select([sock], [], [], left)
        got.extend(sock.drain())
    return got


def quiet(sock: VrrpSocket, *, seconds: float = 0.2) -> list[Received | Rejected]:
    """What `sock` receives within `seconds` (for asserting that nothing arrives: use after a positive check)."""
    got: list[Received | Rejected] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if select.select([sock], [], [], left)[0]:
            got.extend(sock.drain())
    return got
