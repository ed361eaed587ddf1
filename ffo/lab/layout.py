"""What `ffo lab up` puts on disk, and the record that lets `ffo lab down` (another process) undo it.

Layout, under `LAB_DIR` (``/run/ffo-lab``, on tmpfs: a reboot removes it together with the namespaces)::

    lab.json            the lab's record: nodes, addresses, priorities, daemon PIDs (written by `save_state`)
    <node>/ffo.toml     the node's config; run_dir and state_dir point inside <node>/
    <node>/run/         the daemon's control socket and bus endpoints
    <node>/state/       its event log (`ffo events --dir <node>/state`)
    <node>/ffo.log      the daemon's stderr

Why the daemons' PIDs go in a file: `ffo lab up` returns and leaves them running, so `ffo lab down` is a
different process with no `Popen` to wait on; it must stop exactly the daemons the lab started, by PID. The
process's start time (field 22 of ``/proc/<pid>/stat``) is recorded with the PID so that a PID reused by an
unrelated process after the daemon died is never signalled.

The node plan is fixed data: node *i* is ``n<i>`` at 192.0.2.(10+i) (the `ffo.lab.netns` addresses), the
priorities descend from 200 to 100 so that the election and the order of takeover are known in advance.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

import attrs

from ffo.lab.netns import default_nodes

__all__ = [
    "INSTANCE",
    "LAB_DIR",
    "MAX_NODES",
    "PREFIX",
    "VIP",
    "VRID",
    "DaemonRecord",
    "LabState",
    "NodePlan",
    "config_path",
    "config_text",
    "load_state",
    "log_path",
    "node_dir",
    "plan_nodes",
    "run_dir",
    "save_state",
    "state_dir",
]

PREFIX: Final = "ffo-lab"
"""Every namespace of the lab CLI is ``ffo-lab-<role>`` (CLI.md)."""
LAB_DIR: Final = Path("/run/ffo-lab")
STATE_FILE: Final = "lab.json"
INSTANCE: Final = "web"
VRID: Final = 51
VIP: Final = "192.0.2.100/24"
MAX_NODES: Final = 16
"""More would not teach more, and each node is two Python processes on what may be a 2-core machine."""
_TOP, _BOTTOM = 200, 100


@attrs.frozen(kw_only=True)
class NodePlan:
    """One node of the lab: its name, address on ``eth0`` and VRRP priority."""

    name: str
    address: str
    priority: int


@attrs.frozen(kw_only=True)
class DaemonRecord:
    """A started `ffo run`: its PID and the kernel's start time of that PID (clock ticks since boot)."""

    node: str
    pid: int
    start_ticks: int


@attrs.frozen(kw_only=True)
class LabState:
    """What `lab.json` holds."""

    nodes: tuple[NodePlan, ...]
    client: str
    client_address: str
    advert_interval: str
    daemons: tuple[DaemonRecord, ...] = ()


def plan_nodes(count: int) -> tuple[NodePlan, ...]:
    """Nodes ``n1``..``nN``, priorities spread evenly from 200 down to 100 (one node: 200)."""
    if not 1 <= count <= MAX_NODES:
        raise ValueError(f"{count} nodes: the lab runs 1..{MAX_NODES}")
    specs = default_nodes(count)
    step = (_TOP - _BOTTOM) / (count - 1) if count > 1 else 0
    return tuple(
        NodePlan(name=spec.name, address=spec.ipv4.split("/")[0], priority=round(_TOP - i * step))
        for i, spec in enumerate(specs)
    )


def node_dir(node: str, root: Path = LAB_DIR) -> Path:
    return root / node


def config_path(node: str, root: Path = LAB_DIR) -> Path:
    return node_dir(node, root) / "ffo.toml"


def state_dir(node: str, root: Path = LAB_DIR) -> Path:
    """The node's state_dir: `ffo events --dir` takes it."""
    return node_dir(node, root) / "state"


def run_dir(node: str, root: Path = LAB_DIR) -> Path:
    return node_dir(node, root) / "run"


def log_path(node: str, root: Path = LAB_DIR) -> Path:
    return node_dir(node, root) / "ffo.log"


def config_text(node: NodePlan, advert_interval: str, root: Path = LAB_DIR) -> str:
    """The node's ffo.toml: one instance, the lab's VIP, everything else at its default."""
    return (
        "# Written by `ffo lab up`; removed by `ffo lab down`.\n"
        "[node]\n"
        f'name = "{node.name}"\n'
        f'run_dir = "{run_dir(node.name, root)}"\n'
        f'state_dir = "{state_dir(node.name, root)}"\n'
        "\n"
        "[[instance]]\n"
        f'name = "{INSTANCE}"\n'
        'interface = "eth0"\n'
        f"vrid = {VRID}\n"
        f"priority = {node.priority}\n"
        f'advert_interval = "{advert_interval}"\n'
        f'vips = ["{VIP}"]\n'
    )


def save_state(state: LabState, root: Path = LAB_DIR) -> None:
    """Write `lab.json` atomically (a reader never sees half a file, even after Ctrl-C)."""
    root.mkdir(parents=True, exist_ok=True)
    temporary = root / f".{STATE_FILE}.{os.getpid()}"
    temporary.write_text(json.dumps(attrs.asdict(state), indent=1) + "\n")
    temporary.replace(root / STATE_FILE)


def load_state(root: Path = LAB_DIR) -> LabState | None:
    """The lab's record, or None when there is none or it cannot be read (``down`` then works by name)."""
    try:
        data = json.loads((root / STATE_FILE).read_text())
        return LabState(
            nodes=tuple(NodePlan(**node) for node in data["nodes"]),
            client=data["client"],
            client_address=data["client_address"],
            advert_interval=data["advert_interval"],
            daemons=tuple(DaemonRecord(**daemon) for daemon in data["daemons"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
