"""The lab of `ffo lab up`: the namespaces, one config and one real `ffo run` per node, and how to undo it all.

`LabCluster.up` builds the `ffo.lab.netns.Lab` under the short names (``ffo-lab-sw``, ``ffo-lab-n1``…,
``ffo-lab-client``), writes the configs (`ffo.lab.layout`), starts the daemons (`ffo.lab.daemons`) and records
their PIDs in ``lab.json`` as it goes, so that whatever happens next — `ffo lab up` returning, a demo
interrupted half-way — `tear_down` can stop exactly those daemons and delete exactly those namespaces.

A node's role is read the way an operator reads it, from its daemon's control socket (`ffo status`). The
`wait_*` functions poll with a deadline: real daemons take a second to start their actors (imports), and a
busy machine makes that longer; nothing here assumes how fast.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ffo.actors.control import ask
from ffo.lab import layout
from ffo.lab.daemons import start_daemon, stop_daemons
from ffo.lab.layout import LAB_DIR, PREFIX, LabState, NodePlan
from ffo.lab.namespaces import LabError, cleanup_stale, list_namespaces
from ffo.lab.netns import Lab, default_nodes

__all__ = ["LabCluster", "existing_lab", "single_master", "tear_down"]

STATUS_TIMEOUT_MS = 1000
POLL_S = 0.02

Roles = dict[str, str | None]
"""Node name -> its instance's state (``MASTER``, ``BACKUP``, …), None when its daemon does not answer yet."""


def existing_lab(root: Path = LAB_DIR) -> str | None:
    """What shows that a lab is up (its namespaces or its directory), or None when there is none."""
    names = [name for name in list_namespaces() if name.startswith(PREFIX + "-")]
    if names:
        return f"namespaces {', '.join(sorted(names))}"
    if root.exists():
        return f"the lab directory {root}"
    return None


def tear_down(root: Path = LAB_DIR) -> list[str]:
    """Stop the recorded daemons by PID, delete every ``ffo-lab-*`` namespace, remove `root`. Idempotent.

    Deleting the namespaces also ends any process left inside them (`cleanup_stale`): a daemon whose PID was
    never recorded (interrupted between its start and the record) or an actor whose kernel was killed.
    """
    done: list[str] = []
    state = layout.load_state(root)
    if state is not None:
        done += stop_daemons(state.daemons)
    removed = cleanup_stale(PREFIX, include_live=True)
    if removed:
        done.append(f"deleted namespaces {', '.join(sorted(removed))}")
    if root.exists():
        shutil.rmtree(root, ignore_errors=True)
        done.append(f"removed {root}")
    return done


def single_master(roles: Roles, among: Sequence[str], expected: str | None = None) -> str | None:
    """The one MASTER among `among` when every other one there is BACKUP (and it is `expected`, if given)."""
    states = [roles.get(node) for node in among]
    masters = [node for node in among if roles.get(node) == "MASTER"]
    if len(masters) != 1 or states.count("BACKUP") != len(among) - 1:
        return None
    if expected is not None and masters[0] != expected:
        return None
    return masters[0]


class LabCluster:
    """N nodes running ffo and a client, on one bridge; `up` builds it, `tear_down(root)` removes it."""

    def __init__(self, nodes: int, advert_interval: str, root: Path = LAB_DIR) -> None:
        self.plan: tuple[NodePlan, ...] = layout.plan_nodes(nodes)
        self.advert_interval = advert_interval
        self.root = root
        self.lab = Lab(PREFIX, nodes=default_nodes(nodes), with_client=True, suffix="")
        self.client = self.lab.nodes[-1]
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.state = LabState(
            nodes=self.plan,
            client=self.client,
            client_address=str(self.lab.ipv4(self.client)),
            advert_interval=advert_interval,
        )

    @property
    def nodes(self) -> tuple[str, ...]:
        """The ffo nodes, highest priority first (the client is not one)."""
        return tuple(node.name for node in self.plan)

    def node(self, name: str) -> NodePlan:
        return next(node for node in self.plan if node.name == name)

    def config(self, node: str) -> Path:
        return layout.config_path(node, self.root)

    def state_dir(self, node: str) -> Path:
        return layout.state_dir(node, self.root)

    def up(self) -> None:
        """Build the namespaces, write the configs and start one daemon per node (not waiting for them).

        On failure everything built so far is torn down. The caller decides whether the lab outlives this
        process (`release`, for `ffo lab up`) or not (the demo tears it down itself).
        """
        try:
            layout.save_state(self.state, self.root)
            self.lab.up()
            for node in self.plan:
                directory = layout.node_dir(node.name, self.root)
                directory.mkdir(parents=True, exist_ok=True)
                self.config(node.name).write_text(layout.config_text(node, self.advert_interval, self.root))
            for node in self.plan:
                process, record = start_daemon(
                    node.name,
                    self.lab.namespace(node.name),
                    self.config(node.name),
                    layout.log_path(node.name, self.root),
                )
                self.processes[node.name] = process
                self.state = LabState(
                    nodes=self.state.nodes,
                    client=self.state.client,
                    client_address=self.state.client_address,
                    advert_interval=self.state.advert_interval,
                    daemons=(*self.state.daemons, record),
                )
                layout.save_state(self.state, self.root)
        except BaseException:
            with contextlib.suppress(Exception):  # the original error is the one to report
                self.down()
            raise

    def release(self) -> None:
        """Leave the lab running when this process exits (`ffo lab up`)."""
        self.lab.release()

    def down(self) -> list[str]:
        """Tear the lab down (`tear_down`) and reap our own daemon processes."""
        done = tear_down(self.root)
        self.lab.down()
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1.0)
        return done

    # -- observing ---------------------------------------------------------------------------------------------

    def status(self, node: str) -> dict[str, Any] | None:
        """The node's `ffo status --json` document, or None while its daemon does not answer."""
        try:
            reply = ask(layout.run_dir(node, self.root) / "control.sock", "status", timeout_ms=STATUS_TIMEOUT_MS)
        except ConnectionError:
            return None
        status: dict[str, Any] | None = reply.get("status") if reply.get("ok") else None
        return status

    def roles(self, nodes: Sequence[str] | None = None) -> Roles:
        roles: Roles = {}
        for node in nodes if nodes is not None else self.nodes:
            status = self.status(node)
            instances = status.get("instances") if status else None
            roles[node] = str(instances[0]["state"]) if instances else None
        return roles

    def daemon_exited(self) -> str | None:
        """A node whose daemon has exited (with its status), or None: waiting for it would be in vain."""
        for node, process in self.processes.items():
            code = process.poll()
            if code is not None:
                return f"{node}'s ffo run exited with status {code} (see {layout.log_path(node, self.root)})"
        return None

    def wait_for(self, condition: Callable[[Roles], str | None], among: Sequence[str], timeout: float) -> str:
        """Poll the roles of `among` until `condition` names a node; `LabError` (with the roles) at `timeout`."""
        deadline = time.monotonic() + timeout
        roles: Roles = {}
        while time.monotonic() < deadline:
            roles = self.roles(among)
            found = condition(roles)
            if found is not None:
                return found
            exited = self.daemon_exited()
            if exited is not None:
                raise LabError(exited)
            time.sleep(POLL_S)
        shown = ", ".join(f"{node} {state or 'not answering'}" for node, state in roles.items())
        raise LabError(f"no single master after {timeout:.0f} s: {shown}")

    def wait_for_election(self, timeout: float) -> str:
        """Wait until the highest-priority node is MASTER and every other node BACKUP; return its name."""
        top = self.nodes[0]
        return self.wait_for(lambda roles: single_master(roles, self.nodes, top), self.nodes, timeout)
