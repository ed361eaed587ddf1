"""Fixtures for the keepalived interop tests: a fresh two-node lab per test and a short scratch directory.

A test gets its own lab (keepalived on n1, ffo on n2) so that no daemon, VIP or learnt master of one scenario
can leak into the next; building one costs well under a second. Tests are skipped, with the reason, where
namespaces cannot be made or keepalived is not installed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ffo.lab import Lab, netns_unavailable
from ffo.lab.keepalived import Keepalived, KeepalivedInstance, keepalived_unavailable
from tests.lab.support import PREFIX, no_leftover_namespaces

__all__ = ["keepalived", "lab", "no_leftover_namespaces", "root"]

StartKeepalived = Callable[..., Keepalived]


@pytest.fixture
def lab() -> Iterator[Lab]:
    """n1 (keepalived) and n2 (ffo) on one bridge, IPv4 and IPv6 (link-local addresses ready)."""
    for reason in (netns_unavailable(), keepalived_unavailable()):
        if reason is not None:
            pytest.skip(reason)
    with Lab(PREFIX, nodes=2, ipv6=True) as built:
        built.wait_ipv6_ready()
        yield built


@pytest.fixture
def root() -> Iterator[Path]:
    """A scratch directory with a short path: ffo's ipc:// socket paths must fit in ~107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ffo-i-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def keepalived(lab: Lab, root: Path) -> Iterator[StartKeepalived]:
    """`keepalived(instance, node="n1")`: start keepalived in a node; stopped (by PID) when the test ends."""
    started: list[Keepalived] = []

    def start(instance: KeepalivedInstance, node: str = "n1") -> Keepalived:
        started.append(Keepalived.start(lab, node, root / f"keepalived-{node}", [instance]))
        return started[-1]

    yield start
    for daemon in started:
        daemon.stop()
