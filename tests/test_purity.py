"""The pure core stays pure: no sockets, clocks, randomness, event loops or netlink in these modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "ffo"
PURE = [
    "errors.py",
    "config.py",
    "vrrp/packet.py",
    "vrrp/ipheader.py",
    "vrrp/timers.py",
    "vrrp/state.py",
    "vrrp/inputs.py",
    "vrrp/effects.py",
    "vrrp/cause.py",
    "vrrp/machine.py",
    "vrrp/record.py",
    "vrrp/replay.py",
    "vrrp/describe.py",
    "vrrp/node.py",
    "bus/convert.py",
    "bus/messages.py",
    "bus/envelope.py",
    "bus/codec.py",
    "timing/lateness.py",
    "eventlog/frame.py",
    "eventlog/record.py",
    "eventlog/policy.py",
    "eventlog/describe.py",
    "sim/journal.py",
    "net/receive.py",
    "net/ratelimit.py",
    "vip/model.py",
    "vip/plan.py",
    "vip/vmac.py",
    "vip/results.py",
    "vip/events.py",
    "vip/frames.py",
    "vip/schedule.py",
    "vip/rtmsg.py",
    "vrrp/requests.py",
    "vrrp/status.py",
    "vrrp/rehearsal.py",
    "vrrp/actions.py",
    "vrrp/deadlines.py",
    "vrrp/runtime.py",
    "vrrp/steady.py",
    "rpc/wire.py",
    "rpc/clocksync.py",
    "rpc/link.py",
    "rpc/cluster.py",
    "rpc/events.py",
]
FORBIDDEN = {"socket", "asyncio", "zmq", "pyroute2", "time", "random", "logging", "os", "datetime", "select"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_nothing_impure(module: str) -> None:
    assert not imported_roots(ROOT / module) & FORBIDDEN


def test_the_check_sees_imports() -> None:
    """The simulator is allowed randomness; the check must see it, or it proves nothing."""
    assert "random" in imported_roots(ROOT / "sim" / "schedule.py")
